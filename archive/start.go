package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// start opens or creates the archive, claims its writer record and finds
// the sequence to continue from. It returns true when a base must be taken
// before reading (a new archive, or one with no base on this timeline's
// history).
func (a *Archiver) start(ctx context.Context) (needBase bool, err error) {
	identity, err := a.src.Identity()
	if err != nil {
		return false, fmt.Errorf("read the database identity: %w", err)
	}
	if _, err := objstore.Check(ctx, a.store, manifest.NewProbeKey()); err != nil {
		return false, fmt.Errorf("the store cannot hold an archive safely: %w", err)
	}
	// The claim reads the manifest itself: read it once more only to
	// create a new archive.
	err = a.claim(ctx, identity)
	if errors.Is(err, manifest.ErrNoArchive) {
		if err = a.openManifest(ctx, identity); err == nil {
			err = a.claim(ctx, identity)
		}
	}
	if err != nil {
		return false, err
	}
	return a.position(ctx)
}

// openManifest loads the manifest, creating a new archive when there is
// none.
func (a *Archiver) openManifest(ctx context.Context, identity string) error {
	m, etag, err := manifest.Load(ctx, a.store)
	if errors.Is(err, manifest.ErrNoArchive) {
		m = manifest.New(identity, a.opts.Now())
		if err = a.markEncrypted(ctx, m); err != nil {
			return fmt.Errorf("open the archive at %s: %w", a.store, err)
		}
		etag, err = manifest.Create(ctx, a.store, m)
		if errors.Is(err, manifest.ErrExists) {
			m, etag, err = manifest.Load(ctx, a.store) // another archiver created it first
		}
		if err == nil {
			a.log.Info("created a new archive", "location", a.store.String(), "identity", identity)
		}
	}
	if err == nil {
		err = bindStore(a.store, m)
	}
	if err != nil {
		return fmt.Errorf("open the archive at %s: %w", a.store, err)
	}
	a.m, a.etag = m, etag
	return nil
}

// markEncrypted marks a new archive encrypted when the store encrypts
// (objstore.Encrypting): with its first key and the archive id its keys
// are bound to.
func (a *Archiver) markEncrypted(ctx context.Context, m *manifest.Manifest) error {
	es, ok := a.store.(objstore.Encrypting)
	if !ok {
		return nil
	}
	id, err := es.ArchiveID(ctx)
	if err != nil {
		return err
	}
	m.AddKeyID(es.KeyIDs()[0])
	m.Encryption.ArchiveID = id
	return nil
}

// bindStore binds an encrypting store's keys to the archive id that m
// records (another archiver may have created the archive first).
func bindStore(s objstore.Store, m *manifest.Manifest) error {
	es, ok := s.(objstore.Encrypting)
	if !ok || !m.Encrypted() {
		return nil
	}
	return es.Bind(m.Encryption.ArchiveID)
}

// claim makes this archiver the manifest's writer, with a new epoch, on
// the newest timeline.
func (a *Archiver) claim(ctx context.Context, identity string) error {
	host, _ := os.Hostname()
	m, etag, err := manifest.Update(ctx, a.store, nil, func(m *manifest.Manifest) error {
		if m.Identity != identity && !a.opts.AllowOtherDatabase {
			return fmt.Errorf("%w: the archive at %s is of database %s, this one is %s; archive to another location, or pass --allow-other-database if this database replaced that one",
				ErrOtherDatabase, a.store, m.Identity, identity)
		}
		if err := a.recordKey(m); err != nil {
			return err
		}
		tl, epoch, err := a.claimable(m)
		if err != nil {
			return err
		}
		m.Writer = &manifest.Writer{Timeline: tl, Epoch: epoch, ID: a.opts.WriterID, Host: host, Since: a.opts.Now().UTC()}
		return nil
	})
	if err != nil {
		return fmt.Errorf("claim the archive at %s: %w", a.store, err)
	}
	a.m, a.etag, a.writer, a.claimed = m, etag, *m.Writer, true
	a.count(func(s *Stats) {
		s.Timeline = m.Writer.Timeline
		s.LastBase = newestBaseTime(m)
	})
	a.log.Info("writing the archive", "location", a.store.String(), "timeline", a.writer.Timeline,
		"epoch", a.writer.Epoch, "writer", a.writer.ID)
	return nil
}

// claimable returns the timeline and epoch this archiver may take.
func (a *Archiver) claimable(m *manifest.Manifest) (uint32, uint64, error) {
	newest := newestTimeline(m)
	w := m.Writer
	switch {
	case w == nil:
		return newest, 1, nil
	case w.ID == a.opts.WriterID && w.Timeline == newest && a.opts.ClaimEpoch != 0 && w.Epoch == a.opts.ClaimEpoch:
		return newest, w.Epoch, nil // the promotion's writer, in the promoting process
	case w.ID == a.opts.WriterID && w.Timeline == newest:
		return newest, w.Epoch + 1, nil // a restart
	case w.ID == a.opts.WriterID:
		return 0, 0, fenced("this archiver wrote timeline %d, but timeline %d (writer %s on %s since %s) replaced it; this database is no longer the primary",
			w.Timeline, newest, w.ID, w.Host, w.Since.Format("2006-01-02 15:04:05Z07:00"))
	case a.opts.Takeover && w.Timeline == newest:
		return newest, w.Epoch + 1, nil
	}
	if t, _ := m.Timeline(newest); t.Parent != 0 {
		return 0, 0, fmt.Errorf("%w: %w: timeline %d (promoted from timeline %d after sequence %d) is written by %s on %s since %s. If this database is the old primary, it is fenced: restore it from the archive to rejoin. Only if it is the promoted database, moved to another machine, start with --takeover",
			ErrWriterActive, manifest.ErrFenced, newest, t.Parent, t.Branch, w.ID, w.Host, w.Since.Format("2006-01-02 15:04:05Z07:00"))
	}
	return 0, 0, fmt.Errorf("%w: timeline %d is written by %s on %s since %s; stop that archiver, or if it is gone for good start this one with --takeover",
		ErrWriterActive, w.Timeline, w.ID, w.Host, w.Since.Format("2006-01-02 15:04:05Z07:00"))
}

// position finds where the archive of this timeline ends: after its last
// segment. It jumps past a newer base only when a hole recorded in the
// manifest starts exactly where the segments end (a gap recovery that
// stopped before its first segment); a base taken while segments were
// still queued does not move the position, so those batches are read
// again from the WAL, or recorded as a hole if the WAL lost them.
func (a *Archiver) position(ctx context.Context) (needBase bool, err error) {
	tl := a.writer.Timeline
	base, hasBase := a.newestBase()
	var after uint64
	if hasBase && base.Timeline == tl {
		after = base.Sequence
	}
	last, n, err := catalog.LastSegment(ctx, a.store, a.m, tl, after)
	if err != nil {
		return false, fmt.Errorf("read the segments of timeline %d: %w", tl, err)
	}
	if last != nil && last.End {
		return false, fenced("timeline %d was ended by a promotion at sequence %d", tl, last.First-1)
	}
	t, _ := a.m.Timeline(tl)
	oldest, hasOwn := a.oldestBase(tl)
	switch {
	case last != nil:
		a.next = last.Next
	case hasOwn: // no segment yet: the chain starts at the timeline's first base
		a.next = max(oldest.Sequence, t.Branch) + 1
	case hasBase:
		a.next = max(base.Sequence, t.Branch) + 1
	case t.Parent != 0:
		a.next = t.Branch + 1 // a promoted timeline continues its parent
	}
	for h, ok := a.holeAt(tl, a.next); ok && h.To != manifest.MaxSequence; h, ok = a.holeAt(tl, a.next) {
		a.next = h.To + 1 // the base that ends the hole holds h.To
	}
	if hasBase {
		a.lastBase = base.Time
	}
	if a.next > 0 {
		a.count(func(s *Stats) { s.LastSequence = a.next - 1 })
		a.archived(a.next - 1)
	}
	a.log.Info("continuing the archive", "timeline", tl, "next_sequence", a.next, "segments_listed", n)
	return !hasBase, nil
}

// oldestBase is the first base of timeline tl itself.
func (a *Archiver) oldestBase(tl uint32) (manifest.Base, bool) {
	var first manifest.Base
	found := false
	for _, b := range a.m.Bases {
		if b.Timeline == tl && (!found || b.Sequence < first.Sequence) {
			first, found = b, true
		}
	}
	return first, found
}

// holeAt returns the recorded hole of timeline tl that starts at seq.
func (a *Archiver) holeAt(tl uint32, seq uint64) (manifest.Hole, bool) {
	for _, h := range a.m.Holes {
		if h.Timeline == tl && h.From == seq {
			return h, true
		}
	}
	return manifest.Hole{}, false
}

// openHoleAt returns the open hole (no base ends it yet) of the writer's
// timeline that starts at seq or after it (at 0: any). After where the
// archive ends: the archiver stopped with segments sealed before the hole
// not uploaded (they are read from the WAL again, if it still holds them);
// openHole then makes the hole start there. Before it: the archiver
// stopped while the base that ends it was uploaded in the background,
// after segments that followed its checkpoint were uploaded.
func (a *Archiver) openHoleAt(seq uint64) (manifest.Hole, bool) {
	for _, h := range a.m.Holes {
		if h.Timeline == a.writer.Timeline && h.To == manifest.MaxSequence && h.From >= seq {
			return h, true
		}
	}
	return manifest.Hole{}, false
}

// newestBase is the newest base of the writer's timeline's history: its
// own bases, and its ancestors' up to each branch point.
func (a *Archiver) newestBase() (manifest.Base, bool) {
	var best manifest.Base
	found := false
	for _, p := range a.m.Lineage(a.writer.Timeline) {
		for _, b := range a.m.Bases {
			if b.Timeline == p.Timeline && b.Sequence <= p.To && (!found || b.Sequence > best.Sequence) {
				best, found = b, true
			}
		}
	}
	return best, found
}

// TakeBase takes one base of src now, for `rockstream base`, without
// becoming the archive's writer: a running archiver goes on undisturbed.
// It creates the archive if there is none. The base goes on the writer's
// timeline (the newest one when there is no writer).
func TakeBase(ctx context.Context, src Source, store objstore.Store, opts Options) (manifest.Base, error) {
	a, err := New(src, store, opts)
	if err != nil {
		return manifest.Base{}, err
	}
	identity, err := src.Identity()
	if err != nil {
		return manifest.Base{}, fmt.Errorf("read the database identity: %w", err)
	}
	if err := a.openManifest(ctx, identity); err != nil {
		return manifest.Base{}, err
	}
	if a.m.Identity != identity && !opts.AllowOtherDatabase {
		return manifest.Base{}, fmt.Errorf("%w: the archive at %s is of database %s, this one is %s",
			ErrOtherDatabase, store, a.m.Identity, identity)
	}
	if err := a.checkKeys(a.m); err != nil {
		return manifest.Base{}, err
	}
	if ids := objstore.KeyIDs(store); len(ids) > 0 && !slices.Contains(a.m.Encryption.KeyIDs, ids[0]) {
		if a.m, a.etag, err = manifest.Update(ctx, store, nil, a.recordKey); err != nil {
			return manifest.Base{}, fmt.Errorf("record the key %s in the archive at %s: %w", ids[0], store, err)
		}
	}
	a.writer = manifest.Writer{Timeline: newestTimeline(a.m)}
	if w := a.m.Writer; w != nil {
		a.writer.Timeline = w.Timeline
	}
	return a.takeBase(ctx, nil)
}

// newestBaseTime is when the newest base of the manifest was taken (zero
// when it has none). A promotion's timeline continues its parent's, so a
// base of any timeline of the archive counts.
func newestBaseTime(m *manifest.Manifest) time.Time {
	var t time.Time
	for _, b := range m.Bases {
		if b.Time.After(t) {
			t = b.Time
		}
	}
	return t
}

func newestTimeline(m *manifest.Manifest) uint32 {
	newest := m.Timelines[0].ID
	for _, t := range m.Timelines {
		newest = max(newest, t.ID)
	}
	return newest
}

// checkKeys checks that the keyring of the archiver's store (none when it
// does not encrypt: objstore.KeyIDs) fits the archive's encryption. It
// does not change m.
func (a *Archiver) checkKeys(m *manifest.Manifest) error {
	ids := objstore.KeyIDs(a.store)
	if err := m.CheckKeys(ids, first(ids)); err != nil {
		return fmt.Errorf("the archive at %s: %w", a.store, err)
	}
	return nil
}

// recordKey is checkKeys that also records, in m (a manifest being
// updated), the key the archiver writes with when it is new (a rotation).
func (a *Archiver) recordKey(m *manifest.Manifest) error {
	if err := a.checkKeys(m); err != nil {
		return err
	}
	if ids := objstore.KeyIDs(a.store); len(ids) > 0 && m.AddKeyID(ids[0]) {
		a.log.Info("a new encryption key writes the archive from now on; the older ones still read what they wrote", "key", ids[0])
	}
	return nil
}

func first(ids []string) string {
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}
