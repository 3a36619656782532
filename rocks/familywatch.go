package rocks

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// familyCheckInterval is how often the watch looks whether the MANIFEST
// changed (CURRENT's target and the MANIFEST's size): a drop, or a create
// whose family no batch has named yet.
const familyCheckInterval = 250 * time.Millisecond

// familyWatch notices the column families that the writer creates and
// drops, and places each change in the sequence so that a replay stays
// whole and keeps every write: a create before the first batch that writes
// to the family, a drop after the last one.
//
// RocksDB writes neither to the WAL (DBImpl::CreateColumnFamilyImpl,
// DropColumnFamilyImpl: a VersionEdit in the MANIFEST only), and the edit
// carries the MANIFEST's last sequence, which can be behind the database's
// (VersionSet::LogAndApplyCFHelper, db/version_set.cc). So:
//
//   - a batch that names a family the watch does not know makes it read
//     the MANIFEST at once: a create, after max(the edit's sequence, the
//     sequence before that batch);
//   - every familyCheckInterval, the MANIFEST is read again when it
//     changed: a new family is a create after max(the edit's sequence, the
//     batches read so far), since no batch read so far named it; a family
//     gone is a drop after the WAL's head at that moment (every batch that
//     wrote to it is at or before that head; a drop placed later than it
//     happened only keeps the family longer in restores in between).
type familyWatch struct {
	dir, walDir string
	log         *slog.Logger
	now         func() time.Time

	known   map[uint32]string // the families the archive holds: id → name; nil until started
	gone    map[uint32]uint64 // the families dropped since the start: id → the drop's After
	pos     uint64            // the last sequence of the batches read
	changes []manifest.ColumnFamilyChange
	looked  time.Time // the last look at the MANIFEST's size
	current string    // CURRENT's content at the last read
	size    int64     // the MANIFEST's size at the last read
}

// start watches from the families known, after sequence at. The next poll
// reads the MANIFEST: what differs from known happened while nobody
// watched.
func (w *familyWatch) start(known map[uint32]string, at uint64) {
	w.known, w.pos, w.changes, w.gone = maps.Clone(known), at, nil, map[uint32]uint64{}
	w.looked, w.current, w.size = time.Time{}, "", -1
}

func (w *familyWatch) started() bool { return w.known != nil }

// batch looks at a batch that the source returns.
func (w *familyWatch) batch(b Batch) error {
	if !w.started() {
		return nil
	}
	ids, err := BatchFamilies(b.Data)
	if err != nil {
		return fmt.Errorf("rocks: the column families of the batch at sequence %d: %w", b.Seq, err)
	}
	w.pos = max(w.pos, b.Seq-1)
	for _, id := range ids {
		if _, ok := w.known[id]; ok {
			continue
		}
		if after, ok := w.gone[id]; ok && b.Next()-1 <= after {
			continue // written before the drop noticed, which comes after it
		}
		if err := w.read(); err != nil {
			return err
		}
		after, gone := w.gone[id]
		if _, ok := w.known[id]; !ok && !(gone && b.Next()-1 <= after) {
			return fmt.Errorf("rocks: the batch at sequence %d writes to column family id %d, which %s never created (its MANIFEST was rewritten since?): the archive cannot place its creation; take a new base",
				b.Seq, id, w.dir)
		}
	}
	w.pos = max(w.pos, b.Next()-1)
	return nil
}

// poll reads the MANIFEST again when it changed, at most every
// familyCheckInterval. A MANIFEST that cannot be read now (being switched)
// is tried again at the next poll.
func (w *familyWatch) poll() {
	now := w.now()
	if !w.started() || now.Sub(w.looked) < familyCheckInterval {
		return
	}
	w.looked = now
	cur, err := os.ReadFile(filepath.Join(w.dir, "CURRENT"))
	if err != nil {
		w.log.Warn("cannot read CURRENT to look for column family changes; trying again", "error", err)
		return
	}
	fi, err := os.Stat(filepath.Join(w.dir, string(trimNewline(cur))))
	if err != nil {
		return // a MANIFEST switch under way
	}
	if string(cur) == w.current && fi.Size() == w.size {
		return
	}
	if err := w.read(); err != nil {
		w.log.Warn("cannot read the MANIFEST to look for column family changes; trying again", "error", err)
	}
}

func trimNewline(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		return b[:n-1]
	}
	return b
}

// read reads the MANIFEST and turns what differs from the known families
// into changes.
func (w *familyWatch) read() error {
	cur, err := os.ReadFile(filepath.Join(w.dir, "CURRENT"))
	if err != nil {
		return fmt.Errorf("rocks: look for column family changes: %w", err)
	}
	m, err := ReadManifest(w.dir)
	if err != nil {
		return fmt.Errorf("rocks: look for column family changes: %w", err)
	}
	w.current, w.size = string(cur), m.Size
	live := map[uint32]string{}
	for _, f := range m.Families {
		live[f.ID] = f.Name
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if _, ok := w.known[id]; !ok && id != 0 {
			w.create(m, id, live[id])
		}
	}
	// Families created and dropped before this read, known to the
	// MANIFEST's edits only: created here, and dropped below after the
	// WAL's head, so that the batches that wrote to them (read or not yet)
	// sit between.
	for _, e := range m.FamilyEdits {
		_, isLive := live[e.ID]
		_, known := w.known[e.ID]
		_, wasGone := w.gone[e.ID]
		if !e.Drop && !isLive && !known && !wasGone {
			w.create(m, e.ID, e.Name)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(w.known)) {
		if _, ok := live[id]; !ok {
			if err := w.drop(m, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// create records the creation of family id, found in m.
func (w *familyWatch) create(m *Manifest, id uint32, name string) {
	var editSeq uint64
	for _, e := range m.FamilyEdits {
		if e.ID == id && !e.Drop {
			editSeq = e.LastSequence
		}
	}
	opts, dropped, found, err := FamilyOptions(w.dir, name)
	switch {
	case err != nil || !found:
		w.log.Warn("a new column family has no section in the newest OPTIONS file (dropped since?): it is recorded with RocksDB's default options",
			"family", name, "id", id, "error", err)
	case len(dropped) > 0:
		w.log.Warn("options of a new column family that RocksDB cannot take back from their text are left out: a restore creates it without them",
			"family", name, "id", id, "left_out", dropped)
	}
	c := manifest.ColumnFamilyChange{After: max(editSeq, w.pos), Op: manifest.CFCreate, ID: id, Name: name, Options: opts, Detected: w.now().UTC()}
	w.changes = append(w.changes, c)
	w.known[id] = name
}

// drop records the drop of family id, after the WAL's head.
func (w *familyWatch) drop(m *Manifest, id uint32) error {
	head, err := walHead(w.walDir)
	if err != nil {
		return err
	}
	c := manifest.ColumnFamilyChange{After: max(head, m.LastSequence, w.pos), Op: manifest.CFDrop, ID: id, Name: w.known[id], Detected: w.now().UTC()}
	w.changes = append(w.changes, c)
	delete(w.known, id)
	w.gone[id] = c.After
	return nil
}

// take returns the changes noticed since the last call.
func (w *familyWatch) take() []manifest.ColumnFamilyChange {
	c := w.changes
	w.changes = nil
	return c
}

// walHead is the last sequence of the newest WAL file of dir that holds a
// complete batch; 0 when none does. (WALTail.Head, when it comes, says the
// same.)
func walHead(dir string) (uint64, error) {
	paths, err := walFiles(dir)
	if err != nil {
		return 0, err
	}
	for i := len(paths) - 1; i >= 0; i-- {
		num, _ := walNumber(filepath.Base(paths[i]))
		s, err := scanWAL(paths[i], num)
		if os.IsNotExist(err) {
			continue // archived meanwhile: the newer one was looked at
		}
		if err != nil {
			return 0, fmt.Errorf("rocks: the WAL's head: %w", err)
		}
		if s.lastSeq > 0 {
			return s.lastSeq, nil
		}
	}
	return 0, nil
}
