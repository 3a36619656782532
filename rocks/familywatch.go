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
// carries the MANIFEST's last sequence, which can be far behind the
// database's (VersionSet::LogAndApplyCFHelper, db/version_set.cc): the
// sequence at which a change happened is not recorded anywhere. The watch
// places a change at the earliest point it can prove is after it:
//
//   - a batch that names a family the watch does not know makes it read
//     the MANIFEST at once: a create, right before that batch;
//   - every familyCheckInterval, the MANIFEST is read again when it
//     changed. A new family is a create after the WAL's head at that moment
//     (it exists by then), or right before the first batch that writes to
//     it if one comes before that head; it is pending until the batches
//     read reach one or the other. A family gone is a drop after the WAL's
//     head at that moment: every batch that wrote to it is at or before it.
//
// So a restore between the change and where it is placed lacks a family
// that was created (and empty), or still holds one that was dropped:
// nothing written is lost, and an application that opens the restored
// database with create_missing_column_families gets the same result.
type familyWatch struct {
	dir, walDir string
	log         *slog.Logger
	now         func() time.Time

	known   map[uint32]string // the families that exist after pos: id → name; nil until started
	gone    map[uint32]uint64 // the families dropped since the start: id → the drop's After
	maxID   uint32            // the largest family id the archive knows of, dropped or not
	pending map[uint32]*pendingCreate
	// drops are the drops noticed and not yet given out, in the order
	// noticed: each is given out once the reader passes its place, or
	// before a create of the same name, moved to that create's place
	// (dropDue).
	drops   []manifest.ColumnFamilyChange
	pos     uint64 // the last sequence of the batches read
	changes []manifest.ColumnFamilyChange
	looked  time.Time // the last look at the MANIFEST's size
	current string    // CURRENT's content at the last read
	size    int64     // the MANIFEST's size at the last read
	flushed uint64    // the MANIFEST's last sequence at the last read
	// heads is what the WAL files were read to so far (walHeads).
	heads walHeads
}

// pendingCreate is a create noticed by a look at the MANIFEST, placed at
// the WAL's head then (c.After) unless a batch before it writes to the
// family; and the family's drop, if noticed meanwhile.
type pendingCreate struct {
	c    manifest.ColumnFamilyChange
	drop *manifest.ColumnFamilyChange
}

// start watches from the families known, after sequence at. The next poll
// reads the MANIFEST: what differs from known happened while nobody
// watched.
func (w *familyWatch) start(known map[uint32]string, maxID uint32, at uint64) {
	w.known, w.maxID, w.pos, w.changes = maps.Clone(known), maxID, at, nil
	w.gone, w.pending, w.drops = map[uint32]uint64{}, map[uint32]*pendingCreate{}, nil
	w.looked, w.current, w.size = time.Time{}, "", -1
}

func (w *familyWatch) started() bool { return w.known != nil }

// batch looks at a batch that the source is about to return.
func (w *familyWatch) batch(b Batch) error {
	if !w.started() {
		return nil
	}
	ids, err := BatchFamilies(b.Data)
	if err != nil {
		return fmt.Errorf("rocks: the column families of the batch at sequence %d: %w", b.Seq, err)
	}
	w.pos = max(w.pos, b.Seq-1)
	w.settleUpTo(w.pos)
	for _, id := range ids {
		if err := w.named(b, id); err != nil {
			return err
		}
	}
	w.pos = max(w.pos, b.Next()-1)
	w.settleUpTo(w.pos) // the archiver records it before it adds b
	return nil
}

// named handles a batch b that writes to family id.
func (w *familyWatch) named(b Batch, id uint32) error {
	if w.pending[id] != nil {
		w.settle(id, b.Seq-1)
		return nil
	}
	if _, ok := w.known[id]; ok {
		return nil
	}
	if after, ok := w.gone[id]; ok {
		if b.Next()-1 > after {
			// A write through a handle of the dropped family: RocksDB logs
			// it, then refuses it (or skips it with
			// ignore_missing_column_families), db/write_batch.cc
			// MemTableInserter::SeekToColumnFamily. A replay refuses it too.
			w.log.Warn("a batch writes to a column family dropped before it: a restore or standby that reaches it stops there",
				"sequence", b.Seq, "id", id, "dropped_after", after)
		}
		return nil
	}
	if err := w.readRetrying(); err != nil {
		return err
	}
	if w.pending[id] != nil {
		w.settle(id, b.Seq-1)
		return nil
	}
	return fmt.Errorf("rocks: the batch at sequence %d writes to column family id %d, which %s never created (its MANIFEST was rewritten since?): the archive cannot place its creation; take a new base",
		b.Seq, id, w.dir)
}

// readRetrying reads the MANIFEST, again for a while when it cannot be read
// yet (RocksDB switched to a new one whose first edit is not complete).
func (w *familyWatch) readRetrying() error {
	var err error
	for range 50 {
		if err = w.read(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// settleUpTo settles the pending drops and creates placed at or before
// seq.
func (w *familyWatch) settleUpTo(seq uint64) {
	w.dropDue(func(c manifest.ColumnFamilyChange) bool { return c.After <= seq }, seq)
	for _, id := range slices.Sorted(maps.Keys(w.pending)) {
		if p := w.pending[id]; p.c.After <= seq {
			w.settle(id, p.c.After)
		}
	}
}

// settle records the pending create of id after sequence after, then its
// drop if noticed. The pending creates of smaller ids come first, at the
// same place if theirs is later: RocksDB gives ids in the order it creates
// families (max_column_family+1), so a replay must create them in that
// order too; a family with a smaller id was created before, and no batch
// read so far wrote to it.
func (w *familyWatch) settle(id uint32, after uint64) {
	for _, x := range slices.Sorted(maps.Keys(w.pending)) {
		if x < id {
			w.settle(x, after)
		}
	}
	p := w.pending[id]
	delete(w.pending, id)
	p.c.After = min(p.c.After, after)
	// A family dropped and created again under the same name (new id):
	// the drop came first, and a replay must drop the old one before it
	// creates the new one. Every write to the old one came before the
	// drop, so before the new one's first write: its place is safe.
	w.dropDue(func(c manifest.ColumnFamilyChange) bool { return c.Name == p.c.Name }, p.c.After)
	w.changes = append(w.changes, p.c)
	if p.drop != nil {
		// Given out like any drop (dropDue): when the reader passes it, or
		// before a create of the same name; never before its own create.
		d := *p.drop
		d.After = max(d.After, p.c.After)
		w.drops = append(w.drops, d)
	}
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
	defer w.settleUpTo(w.pos)
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
	w.current, w.size, w.flushed = string(cur), m.Size, m.LastSequence
	head, err := w.heads.head(w.walDir)
	if err != nil {
		return err
	}
	head = max(head, m.LastSequence, w.pos)
	maxID := w.maxID // as before this read: create raises it
	live := map[uint32]string{}
	for _, f := range m.Families {
		live[f.ID] = f.Name
	}
	for _, id := range slices.Sorted(maps.Keys(live)) {
		if _, ok := w.known[id]; !ok && id != 0 {
			w.create(id, live[id], head, true)
		}
	}
	// Families created and dropped before this read, known to the
	// MANIFEST's edits only: created, then dropped below after the WAL's
	// head, so that the batches that wrote to them sit between. Ids up to
	// maxID are the archive's already.
	for _, e := range m.FamilyEdits {
		_, isLive := live[e.ID]
		if !e.Drop && !isLive && e.ID > maxID {
			w.create(e.ID, e.Name, head, false)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(w.known)) {
		if _, ok := live[id]; !ok {
			w.drop(id, head)
		}
	}
	return nil
}

// optionsWait bounds the wait for the OPTIONS file that RocksDB writes
// right after it created a family (DBImpl::CreateColumnFamilies writes it
// once the MANIFEST edit is in).
const optionsWait = 2 * time.Second

// create notices the creation of family id, pending at head.
func (w *familyWatch) create(id uint32, name string, head uint64, live bool) {
	opts, dropped, found, err := FamilyOptions(w.dir, name)
	for deadline := time.Now().Add(optionsWait); live && err == nil && !found && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		if opts, dropped, found, err = FamilyOptions(w.dir, name); err == nil && !found {
			live = w.isLive(id)
		}
	}
	switch {
	case err != nil || !found:
		w.log.Warn("a new column family has no section in the newest OPTIONS file (dropped since?): it is recorded with RocksDB's default options",
			"family", name, "id", id, "error", err)
	case len(dropped) > 0:
		w.log.Warn("options of a new column family that RocksDB cannot take back from their text are left out: a restore creates it without them",
			"family", name, "id", id, "left_out", dropped)
	}
	w.maxID = max(w.maxID, id)
	w.pending[id] = &pendingCreate{c: manifest.ColumnFamilyChange{After: head, Op: manifest.CFCreate, ID: id, Name: name, Options: opts, Detected: w.now().UTC()}}
	w.known[id] = name
}

// isLive reports whether the MANIFEST still has family id; true when it
// cannot be read now.
func (w *familyWatch) isLive(id uint32) bool {
	m, err := ReadManifest(w.dir)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(m.Families, func(f Family) bool { return f.ID == id })
}

// drop notices the drop of family id, placed after head.
func (w *familyWatch) drop(id uint32, head uint64) {
	c := manifest.ColumnFamilyChange{After: head, Op: manifest.CFDrop, ID: id, Name: w.known[id], Detected: w.now().UTC()}
	if p := w.pending[id]; p != nil {
		p.drop = &c
	} else {
		w.drops = append(w.drops, c)
	}
	delete(w.known, id)
	w.gone[id] = c.After
}

// dropDue gives out, in the order noticed, the pending drops that due
// says are due, each placed no later than at.
func (w *familyWatch) dropDue(due func(manifest.ColumnFamilyChange) bool, at uint64) {
	kept := w.drops[:0]
	for _, c := range w.drops {
		if !due(c) {
			kept = append(kept, c)
			continue
		}
		c.After = min(c.After, at)
		w.gone[c.ID] = c.After
		w.changes = append(w.changes, c)
	}
	w.drops = kept
}

// take returns the changes noticed since the last call.
func (w *familyWatch) take() []manifest.ColumnFamilyChange {
	c := w.changes
	w.changes = nil
	return c
}

// walHeads reads WAL files for their last sequence from where an
// earlier look at each left off: a WAL file only grows, so each look reads
// only the records added since. Reading the newest files whole at every
// MANIFEST change (every flush) took up to 160 ms of the archiver's reading
// loop with 64 MiB WAL files, and often with small memtables in many
// column families.
type walHeads struct {
	seen map[string]walScan // how far each file was read
}

// head returns the last sequence of the newest WAL file of dir that holds
// a complete batch; 0 when none does. It reads the files now: a drop is
// placed at this head, which must be at or after every batch written
// before the drop. WALTail.Head is not enough here: between its listings
// it gives the head it found last, which can be older (tried: restores
// then lost the last writes to dropped families).
func (h *walHeads) head(dir string) (uint64, error) {
	paths, err := walFiles(dir)
	if err != nil {
		return 0, err
	}
	seen := make(map[string]walScan, len(paths))
	defer func() { h.seen = seen }() // files gone are forgotten
	var head uint64
	for i := len(paths) - 1; i >= 0; i-- {
		st, err := h.scan(paths[i])
		if os.IsNotExist(err) {
			continue // archived meanwhile: the newer one was looked at
		}
		if err != nil {
			return 0, fmt.Errorf("rocks: the WAL's head: %w", err)
		}
		seen[paths[i]] = st
		if st.lastSeq > 0 && head == 0 {
			head = st.lastSeq
			for _, p := range paths[:i] { // keep what is known of the older ones
				if old, ok := h.seen[p]; ok {
					seen[p] = old
				}
			}
			break
		}
	}
	return head, nil
}

// scan reads path on from where the last look left off (from its start
// when it is new, or shorter than that: replaced).
func (h *walHeads) scan(path string) (walScan, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return walScan{}, err
	}
	st := h.seen[path]
	switch {
	case st.end > fi.Size():
		st = walScan{}
	case st.end == fi.Size() && st.end > 0:
		return st, nil // nothing added
	}
	num, _ := walNumber(filepath.Base(path))
	return scanWALFrom(path, num, st)
}

func newFamilyWatch(dir, walDir string) familyWatch {
	return familyWatch{dir: dir, walDir: walDir, log: slog.Default(), now: time.Now}
}
