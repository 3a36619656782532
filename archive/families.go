package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// FamilyWatcher is a Source that notices the column families that the
// database creates and drops (RocksDB writes neither to the WAL). The
// archiver records each change in the manifest at its place in the
// sequence (manifest.ColumnFamilyChange), so that a restore or a standby
// creates or drops the family between the same batches.
type FamilyWatcher interface {
	// ResumeFamilies starts the watch of an archive that continues after
	// sequence at: the archive holds the families of the database whose
	// CURRENT and MANIFEST files are in baseDir (a base's), changed by
	// changes in order. Without it, the watch starts at the first
	// Checkpoint, with the checkpoint's families.
	ResumeFamilies(baseDir string, changes []manifest.ColumnFamilyChange, at uint64) error
	// FamilyChanges returns the changes noticed since the last call, in
	// order, Timeline unset. The archiver calls it after each Next.
	FamilyChanges() ([]manifest.ColumnFamilyChange, error)
}

// resumeFamilies starts the source's family watch from what the archive
// holds at a.next-1: the newest base at or before it on the lineage, and
// the changes recorded since.
func (a *Archiver) resumeFamilies(ctx context.Context) error {
	fw, ok := a.src.(FamilyWatcher)
	if !ok || a.next == 0 {
		return nil
	}
	at := a.next - 1
	line := a.m.Lineage(a.writer.Timeline)
	base, found := baseAtOrBefore(a.m, line, at)
	if !found {
		a.log.Warn("no base at or before the archive's end: column family changes are watched from the next base on", "sequence", at)
		return nil
	}
	dir := filepath.Join(a.opts.WorkDir, "families")
	if err := a.fetchManifestFiles(ctx, base, dir); err != nil {
		return fmt.Errorf("read the column families of the base at %d: %w", base.Sequence, err)
	}
	defer os.RemoveAll(dir)
	if err := fw.ResumeFamilies(dir, a.m.CFChangesBetween(line, base.Sequence, at), at); err != nil {
		return fmt.Errorf("resume the column family watch at %d: %w", at, err)
	}
	return nil
}

// baseAtOrBefore is the newest base of the lineage at or before seq.
func baseAtOrBefore(m *manifest.Manifest, line []manifest.Piece, seq uint64) (manifest.Base, bool) {
	var best manifest.Base
	found := false
	for _, p := range line {
		for _, b := range m.Bases {
			if b.Timeline == p.Timeline && b.Sequence <= p.To && b.Sequence <= seq && (!found || b.Sequence > best.Sequence) {
				best, found = b, true
			}
		}
	}
	return best, found
}

// fetchManifestFiles downloads the CURRENT file of base b and the MANIFEST
// it names into dir (emptied first).
func (a *Archiver) fetchManifestFiles(ctx context.Context, b manifest.Base, dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	fl, err := manifest.LoadFileList(ctx, a.store, a.m, b)
	if err != nil {
		return err
	}
	files := map[string]manifest.File{}
	for _, f := range fl.Files {
		files[f.Name] = f
	}
	cur, ok := files["CURRENT"]
	if !ok {
		return fmt.Errorf("the base %s has no CURRENT file", b.FileList)
	}
	if err := fetchOne(ctx, a.store, cur, dir); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, "CURRENT"))
	if err != nil {
		return err
	}
	name := strings.TrimSuffix(string(data), "\n")
	mf, ok := files[name]
	if !ok || !strings.HasPrefix(name, "MANIFEST-") {
		return fmt.Errorf("the base %s: its CURRENT names %q, which is not among its files", b.FileList, name)
	}
	return fetchOne(ctx, a.store, mf, dir)
}

// fetchOne downloads one base file into dir and checks its size.
func fetchOne(ctx context.Context, s objstore.Store, f manifest.File, dir string) error {
	if err := manifest.ValidateName(f.Name); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(dir, f.Name))
	if err != nil {
		return err
	}
	n, err := objstore.Download(ctx, s, f.Key, out, objstore.DownloadOptions{})
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != f.Size {
		err = fmt.Errorf("%s: %d bytes, the file list says %d", f.Key, n, f.Size)
	}
	return err
}

// familyChanges records the column family changes that the source
// noticed: the open segment is sealed first (its batches are all at or
// before the changes), and the changes are in the manifest before any
// batch after them is added. stop is true when a stop came meanwhile: the
// changes not recorded are noticed again at the next start, which compares
// the archive with the database.
func (a *Archiver) familyChanges(ctx context.Context, cur *building, up *uploader) (_ *building, stop bool, err error) {
	fw, ok := a.src.(FamilyWatcher)
	if !ok {
		return cur, false, nil
	}
	changes, err := fw.FamilyChanges()
	if err != nil || len(changes) == 0 {
		return cur, false, err
	}
	if cur != nil && cur.batches > 0 && cur.w.NextSeq() != cur.w.Header().FirstSeq {
		if err := a.seal(ctx, cur, up, false); err != nil {
			return cur, false, err
		}
		cur = nil
	}
	for i := range changes {
		changes[i].Timeline = a.writer.Timeline
	}
	if err := a.recordChanges(ctx, changes); err != nil {
		if ctx.Err() != nil {
			return cur, true, nil
		}
		return cur, false, err
	}
	for _, c := range changes {
		a.log.Info("column family change recorded", "op", c.Op, "family", c.Name, "id", c.ID, "after", c.After, "timeline", c.Timeline)
	}
	return cur, false, nil
}

// recordChanges adds changes to the manifest, skipping those recorded
// already (an earlier try whose outcome was unknown), trying again after a
// store failure until ctx ends.
func (a *Archiver) recordChanges(ctx context.Context, changes []manifest.ColumnFamilyChange) error {
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, a.opts.RetryMax) {
		m, etag, err := manifest.Update(ctx, a.store, &a.writer, func(m *manifest.Manifest) error {
			for _, c := range changes {
				if !hasChange(m, c) {
					m.AddCFChange(c)
				}
			}
			return nil
		})
		if err == nil {
			a.m, a.etag = m, etag
			return nil
		}
		if errors.Is(err, manifest.ErrFenced) || errors.Is(err, manifest.ErrInvalid) || ctx.Err() != nil {
			return fmt.Errorf("record column family changes: %w", err)
		}
		a.log.Warn("cannot record column family changes; trying again", "in", wait, "error", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// hasChange: a family id is created once and dropped once per timeline.
func hasChange(m *manifest.Manifest, c manifest.ColumnFamilyChange) bool {
	for _, x := range m.ColumnFamilyChanges {
		if x.Timeline == c.Timeline && x.Op == c.Op && x.ID == c.ID {
			return true
		}
	}
	return false
}
