package rocks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/linxGnu/grocksdb"
)

// ReplayOptions tune a Replayer.
type ReplayOptions struct {
	// Operators are the application's own merge operators and comparators
	// (library mode); see Operators.
	Operators *Operators
	// ChunkBytes is how much WAL is written before it is recovered (and
	// then deleted): it bounds the disk that a replay uses beyond the
	// database itself. Default 256 MiB.
	ChunkBytes int64
	// HandOff writes the batches as WAL files and never opens the
	// database: the application's own RocksDB replays them at its first
	// open. For what rockstream cannot replay itself (a custom merge
	// operator or comparator). Base is then the base's sequence, taken as
	// given, since the database is not opened to read it.
	HandOff bool
	Base    uint64
	// Recovery replays every batch by RocksDB's recovery (WAL files, in
	// chunks), also those that the Replayer would write directly; for
	// tests of that path, and for a user who wants recovery's exact path.
	Recovery bool
	// StopAtTxn refuses, with ErrTxnMarkers, a batch with two-phase-commit
	// markers (and every batch when the database's own WAL files hold
	// some), so that the replay stays on the direct path: a standby's
	// catch-up, which leaves transactions to the standby's own apply.
	StopAtTxn bool
	// InPlace replays into a database that lives on after a crash (a
	// standby's catch-up), not into a folder to throw away: the column
	// families flush together while the direct path writes (RocksDB's
	// atomic_flush: a memtable that fills flushes every family's, and the
	// close flushes them all as one), so that a crash half-way leaves every
	// family at one sequence, the last atomic flush's, to go on from; and the
	// database's own OPTIONS file is kept aside (keepOwnOptions) while the
	// bulk-load options are the newest, so that every open after such a
	// crash takes the application's options, not the bulk load's.
	InPlace bool
}

// defaultChunkBytes is ReplayOptions.ChunkBytes' default.
const defaultChunkBytes = 256 << 20

// Replayer replays batches read from the archive into the database in a
// folder, opened with its own options (its OPTIONS file: merge operators,
// compaction, compression, table and blob options), by one of two paths:
//
//   - Directly (the default, for batches without two-phase-commit
//     markers): each batch is written to the open database as it comes,
//     with the WAL disabled, at the sequence it had in the source, by
//     RocksDB's write path (the one the application's writes took, and
//     the one recovery's inserter shares); memtables are flushed in
//     RocksDB's background threads while the next batches are written,
//     and every column family is flushed when the replay ends or the
//     column families change. The families have vector memtables while
//     it writes (ownOptions.bulkLoad), and the database is opened with its
//     own options again at the end (restoreOptions). A crash half-way
//     leaves a database to throw away, which restore does (its folder is
//     a temporary one).
//   - By RocksDB's own recovery (from the first batch with two-phase-commit
//     markers on, or from the start when the base's own WAL copies hold
//     some, since recovery is what rebuilds a transaction prepared and not
//     yet committed; when the database opens behind the batches, since the
//     write path numbers a batch from the database's sequence; for every
//     batch with ReplayOptions.Recovery; in hand-off): the batches are written as a WAL file (WALWriter)
//     numbered above every file of the database, and the database is
//     opened so that recovery replays that file, flushing memtables as
//     they fill, in its own thread. The WAL is written and recovered in
//     chunks of ChunkBytes, so disk and memory stay bounded.
//
// Either way the sequence the database reaches is checked against the
// batches'.
//
// Each batch is decoded before it is written: a malformed batch
// (ErrCorrupt), a column family the database does not have, a merge in a
// column family without a merge operator, a blob index or wide-column
// record (ErrUnsupported) is refused, and a batch must start where the one
// before ended (*GapError). Batches with two-phase-commit markers are
// recovered with allow_2pc.
//
// Restore, verify's drill and (for a first build) the standby use it. A
// Replayer is used by one goroutine.
type Replayer struct {
	dir     string
	opts    ReplayOptions
	ids     map[uint32]bool // nil in hand-off: not known
	merges  map[uint32]bool
	seq     uint64 // where the database is: recovered, or the base's (hand-off)
	next    uint64 // where the next batch must start
	w       *WALWriter
	num     uint64   // the log number of w
	nextNum uint64   // the log number of the next WAL file
	chunks  []uint64 // the log numbers written
	twoPC   bool     // a batch had two-phase-commit markers
	merged  bool     // a batch had merges
	// txns are the transactions prepared and not yet committed: those of
	// the base's own WAL copies, then of the batches added (txn.go).
	txns  Txns
	empty bool // the last batch ends with an empty range deletion
	files []string
	// direct is the database open for the direct path (nil: not open),
	// wo its write options (WAL disabled), group the batches not yet
	// written (written together: batchGroup).
	direct *handle
	wo     *grocksdb.WriteOptions
	group  batchGroup
	// own are the database's own options while the direct path has it
	// open for a bulk load: restoreOptions opens it with them at the end.
	own *ownOptions
	// behind: the database opened before the sequence the batches go on
	// from (a flush dropped its newest entries, as a Put and its
	// SingleDelete cancel out: see restore's finish), and the write path
	// numbers a batch from the database's sequence, not the batch's. The
	// rest goes by recovery, which takes each batch's own.
	behind bool
}

// NewReplayer prepares a replay into the database in dir. Unless in
// hand-off, it opens the database once with its own options (recovering
// whatever its own WAL files hold, and flushing it), reads its column
// families and its last sequence (Sequence), and closes it; options that
// name an operator that rockstream lacks fail with an *OptionsError
// (ErrForeignOptions) before anything is written.
func NewReplayer(dir string, opts ReplayOptions) (*Replayer, error) {
	if opts.ChunkBytes <= 0 {
		opts.ChunkBytes = defaultChunkBytes
	}
	r := &Replayer{dir: dir, opts: opts}
	if opts.HandOff {
		if err := checkDatabase(dir); err != nil {
			return nil, err
		}
		r.seq = opts.Base
	} else {
		// A base whose WAL copies hold transaction markers (a prepare not
		// yet committed when it was taken) opens only with allow_2pc.
		var err error
		if r.twoPC, err = walHasTxnMarkers(dir); err != nil {
			return nil, err
		}
		if err := r.openBase(); err != nil {
			return nil, err
		}
	}
	if err := r.seedTxns(); err != nil {
		return nil, err
	}
	r.next = r.seq + 1
	num, err := nextFileNumber(dir)
	if err != nil {
		return nil, err
	}
	r.nextNum = num
	return r, nil
}

// seedTxns reads the transactions that the base's WAL copies hold prepared
// up to its sequence, whose commits may come in the batches added.
func (r *Replayer) seedTxns() error {
	t, err := PreparedIn(r.dir, r.seq)
	if err != nil {
		return fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	r.txns.merge(t)
	r.twoPC = r.twoPC || len(t.Pending()) > 0
	return nil
}

// walHasTxnMarkers says whether a WAL file of dir holds a batch with
// two-phase-commit markers.
func walHasTxnMarkers(dir string) (bool, error) {
	found := false
	err := readWALFiles(dir, func(_ string, _ int64, payload []byte) error {
		b, walked := walBatch(payload)
		found = found || walked && b.twoPC
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("rocks: replay into %s: %w", dir, err)
	}
	return found, nil
}

// openBase opens the database once with its own options.
func (r *Replayer) openBase() error {
	h, err := r.open()
	if err != nil {
		return err
	}
	defer h.close()
	r.ids, r.merges, r.seq = h.ids, h.merges, h.latestSequence()
	return nil
}

// open opens the database with its own options, which recovers its WAL
// files.
func (r *Replayer) open() (*handle, error) {
	o, err := r.load()
	if err != nil {
		return nil, err
	}
	return r.openWith(o)
}

// load loads the database's own options, with allow_2pc once a batch had
// two-phase-commit markers.
func (r *Replayer) load() (*ownOptions, error) {
	o, err := loadOwnOptions(r.dir, r.opts.Operators)
	if err != nil {
		return nil, err
	}
	if r.twoPC {
		if err := o.setDB("allow_2pc=true"); err != nil {
			o.destroy()
			return nil, fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
		}
	}
	return o, nil
}

// openWith opens the database with o, which the handle then owns.
func (r *Replayer) openWith(o *ownOptions) (*handle, error) {
	return openOwn(r.dir, o, func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbColumnFamilies(o, r.dir, n, co)
	})
}

// Sequence is the database's last sequence: recovered so far, or the
// base's in hand-off.
func (r *Replayer) Sequence() uint64 { return r.seq }

// Next is the sequence that the next batch must start at.
func (r *Replayer) Next() uint64 { return r.next }

// HadMerges says whether a batch added so far held merges.
func (r *Replayer) HadMerges() bool { return r.merged }

// Files are the WAL files written in hand-off.
func (r *Replayer) Files() []string { return r.files }

// Add decodes one batch (its WriteBatch representation) and takes it by
// the direct path (gathered, then written to the open database) or by
// recovery (written to the WAL file being built, which is recovered first
// when it holds ChunkBytes). A refused batch writes nothing.
func (r *Replayer) Add(data []byte) error {
	s, err := scanBatch(data, r.hasCF, r.hasMerge)
	if err != nil {
		return fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	if s.seq != r.next {
		return &GapError{Dir: r.dir, Expected: r.next, Got: s.seq, Latest: r.seq}
	}
	if r.opts.StopAtTxn && (s.twoPC || r.twoPC) {
		return fmt.Errorf("rocks: replay into %s the batch at sequence %d: %w", r.dir, s.seq, ErrTxnMarkers)
	}
	next, ch, err := r.after(s, data) // refused before it is written
	if err != nil {
		return err
	}
	r.twoPC = r.twoPC || s.twoPC
	direct := !r.opts.HandOff && !r.opts.Recovery && !r.twoPC && !r.behind
	if direct && r.direct == nil {
		if direct, err = r.openDirect(); err != nil {
			return err
		}
	}
	if direct {
		if err := r.write(data, next, s.emptyRanges > 0); err != nil {
			return err
		}
		r.next = next
		r.txns.apply(ch)
		r.merged = r.merged || s.merge
		return nil
	}
	if err := r.closeDirect(); err != nil { // recovery from here on
		return err
	}
	if r.w != nil && r.w.Size() >= r.opts.ChunkBytes {
		if err := r.endChunk(s.seq - 1); err != nil {
			return err
		}
	}
	if r.w == nil {
		if err := r.startChunk(); err != nil {
			return err
		}
	}
	if err := r.w.Add(data); err != nil {
		return err
	}
	r.next = next
	r.txns.apply(ch)
	r.merged = r.merged || s.merge
	r.empty = s.emptyRangeAt
	return nil
}

// openDirect opens the database for the direct path. It is false, and the
// database closed again, when the database is behind the batches.
//
// The database is opened for a bulk load (ownOptions.bulkLoad: vector
// memtables, which take a batch's records in the order they come and are
// sorted in the flush's thread); RocksDB writes those options into a new
// OPTIONS file at the open, so the database is opened again with its own
// options, as they were, when the direct path ends (restoreOptions).
func (r *Replayer) openDirect() (bool, error) {
	own, err := r.load()
	if err != nil {
		return false, fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	bulk, err := r.load()
	if err == nil {
		err = bulk.bulkLoad(r.opts.InPlace)
		if err != nil {
			bulk.destroy()
		}
	}
	if err != nil {
		own.destroy()
		return false, fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	if r.opts.InPlace {
		if err := keepOwnOptions(r.dir); err != nil {
			own.destroy()
			bulk.destroy()
			return false, err
		}
	}
	h, err := r.openWith(bulk)
	if err != nil {
		own.destroy()
		return false, fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	r.own = own
	if got := h.latestSequence(); got != r.next-1 {
		h.close()
		r.behind = true
		return false, r.restoreOptions()
	}
	r.direct, r.wo = h, grocksdb.NewDefaultWriteOptions()
	r.wo.DisableWAL(true)
	return true, nil
}

// restoreOptions opens the database with its own options as they were
// before the direct path opened it for a bulk load, and closes it: its
// newest OPTIONS file is then the database's own again.
func (r *Replayer) restoreOptions() error {
	own := r.own
	r.own = nil
	h, err := r.openWith(own)
	if err != nil {
		return fmt.Errorf("rocks: replay into %s: reopen with its own options: %w", r.dir, err)
	}
	h.close()
	if r.opts.InPlace {
		return dropKeptOptions(r.dir)
	}
	return nil
}

// write takes one batch by the direct path: it joins the group of batches
// written together (batchGroup), which is written first when full, and
// at once after a batch with an empty range deletion (RocksDB's inserter
// takes no sequence for it: later records in the same write would get
// sequences one lower than in the source). A batch that uses no sequence
// (only log data) has nothing to write.
func (r *Replayer) write(data []byte, next uint64, emptyRange bool) error {
	if next == r.next {
		return nil
	}
	if !r.group.fits(len(data), uint32(next-r.next)) {
		if err := r.writeGroup(); err != nil {
			return err
		}
	}
	r.group.add(data)
	if emptyRange {
		return r.writeGroup()
	}
	return nil
}

// writeGroup writes the batches gathered by the direct path.
func (r *Replayer) writeGroup() error {
	if r.group.n == 0 {
		return nil
	}
	last := r.group.first + r.group.count - 1
	if err := r.group.write(r.direct.db, r.wo, r.dir); err != nil {
		return fmt.Errorf("rocks: replay: %w", err)
	}
	r.seq = last
	return nil
}

// closeDirect ends the direct path: it flushes every column family (the
// batches written are in memtables only), waits, and closes the database.
// InPlace, the close flushes them, all as one (RocksDB's flush at
// the close of a database with atomic_flush, which FlushCF per family is
// not); RocksDB does not report how that flush went, so the caller checks
// the sequence that the database opens at next.
func (r *Replayer) closeDirect() error {
	if r.direct == nil {
		return nil
	}
	err := r.writeGroup()
	if err == nil && !r.opts.InPlace {
		if err = r.direct.flush(); err != nil {
			err = fmt.Errorf("rocks: replay: %w", err)
		}
	}
	r.direct.close()
	r.wo.Destroy()
	r.direct, r.wo = nil, nil
	if err != nil {
		return err
	}
	return r.restoreOptions()
}

// startChunk creates the next WAL file, numbered above every file of the
// folder: a recovery makes files (SSTs, a new WAL, a MANIFEST) with
// numbers above the previous chunk's.
func (r *Replayer) startChunk() error {
	num, err := nextFileNumber(r.dir)
	if err != nil {
		return err
	}
	r.num = max(r.nextNum, num)
	if r.w, err = CreateWAL(r.dir, r.num); err != nil {
		return err
	}
	r.nextNum = r.num + 1
	r.chunks = append(r.chunks, r.num)
	return nil
}

// after is the sequence that the batch after the one scanned as s (its
// bytes data) starts at, with the change it makes to the transactions held
// (Txns: a prepared section takes no sequence, its commit as many as were
// prepared; RocksDB's WriteCommitted transactions).
func (r *Replayer) after(s batchScan, data []byte) (uint64, change, error) {
	span, _, ch, err := r.txns.step(data, false)
	if errors.Is(err, ErrNoPrepare) {
		return 0, nil, fmt.Errorf("rocks: replay into %s: %w: the batch at sequence %d commits a transaction whose prepared batch is neither in the base's WAL nor in the replay",
			r.dir, ErrCorrupt, s.seq)
	}
	if err != nil {
		return 0, nil, fmt.Errorf("rocks: replay into %s the batch at sequence %d: %w", r.dir, s.seq, err)
	}
	return s.seq + uint64(span), ch, nil
}

func (r *Replayer) hasCF(id uint32) bool { return r.ids == nil || r.ids[id] }

func (r *Replayer) hasMerge(id uint32) bool { return r.ids == nil || r.merges[id] }

// endChunk closes the WAL file being built and, unless in hand-off,
// recovers it: the database must then be at sequence want.
func (r *Replayer) endChunk(want uint64) error {
	w := r.w
	r.w = nil
	if err := w.Close(); err != nil {
		return err
	}
	if r.opts.HandOff {
		r.files = append(r.files, WALPath(r.dir, r.num))
		r.seq = want
		return nil
	}
	return r.recover(want)
}

// recover opens the database so that RocksDB recovers the WAL file just
// written, and checks where it ends.
func (r *Replayer) recover(want uint64) error {
	name := filepath.Base(WALPath(r.dir, r.num))
	h, err := r.open()
	if err != nil {
		return fmt.Errorf("rocks: replay into %s: recover %s: %w", r.dir, name, err)
	}
	got := h.latestSequence()
	h.close()
	if got != want {
		why := ""
		if r.empty && got+1 == want {
			why = " (its last batch ends with an empty range deletion, whose sequence RocksDB's recovery does not count)"
		}
		return fmt.Errorf("rocks: replay into %s: recovering %s ends at sequence %d, its batches end at %d%s", r.dir, name, got, want, why)
	}
	r.seq = got
	// With WAL_ttl_seconds or WAL_size_limit_MB, RocksDB moved the
	// recovered file to archive/: it is not the database's history.
	if err := os.Remove(filepath.Join(r.dir, "archive", name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	return nil
}

// Finish recovers what is left to recover and checks that the database
// ends at sequence want, the one the caller's plan says; in hand-off it
// closes the last WAL file. With nothing added, the database must be at
// want already.
func (r *Replayer) Finish(want uint64) error {
	if err := r.closeDirect(); err != nil {
		return err
	}
	if r.w != nil {
		return r.endChunk(want)
	}
	if r.seq != want {
		return fmt.Errorf("rocks: replay into %s: the database is at sequence %d, want %d", r.dir, r.seq, want)
	}
	return nil
}

// Close removes a WAL file that was written but not recovered (a replay
// that stopped half-way), and closes a database open for the direct path
// (RocksDB flushes at its close what was written without the WAL, so this
// can take a flush's time): a replay that stopped half-way leaves a
// database to throw away.
func (r *Replayer) Close() error {
	if r.direct != nil {
		r.direct.close()
		r.wo.Destroy()
		r.direct, r.wo = nil, nil
		r.group = batchGroup{}
	}
	if r.own != nil {
		r.own.destroy()
		r.own = nil
	}
	if r.w == nil {
		return nil
	}
	r.w.Close()
	r.w = nil
	if err := os.Remove(WALPath(r.dir, r.num)); err != nil {
		return fmt.Errorf("rocks: replay into %s: %w", r.dir, err)
	}
	return nil
}

// nextFileNumber is the number for a new file of the database in dir:
// the MANIFEST's next file number (numbers RocksDB gave to files it has
// since deleted are below it), or one more than the highest number the
// folder's file names use (<n>.log, <n>.sst, <n>.blob, MANIFEST-<n>,
// OPTIONS-<n>, archive/<n>.log) if that is higher.
func nextFileNumber(dir string) (uint64, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return 0, fmt.Errorf("rocks: replay into %s: %w", dir, err)
	}
	high := m.NextFileNumber
	for _, d := range []string{dir, filepath.Join(dir, "archive")} {
		entries, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) && d != dir {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("rocks: read %s: %w", d, err)
		}
		for _, e := range entries {
			if n, ok := fileNumber(e.Name()); ok {
				high = max(high, n+1)
			}
		}
	}
	return high, nil
}

// fileNumber is the number in a RocksDB file name (file/filename.cc
// ParseFileName), for the kinds that carry one.
func fileNumber(name string) (uint64, bool) {
	for _, p := range []string{"MANIFEST-", "OPTIONS-"} {
		if rest, ok := strings.CutPrefix(name, p); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(rest, ".dbtmp"), 10, 64)
			return n, err == nil
		}
	}
	num, ext, ok := strings.Cut(name, ".")
	if !ok || (ext != "log" && ext != "sst" && ext != "blob") {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil
}
