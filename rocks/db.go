package rocks

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"

	"github.com/linxGnu/grocksdb"
)

// Options are the options of OpenWritable.
type Options struct {
	// CreateIfMissing creates the database when dir holds none.
	CreateIfMissing bool
	// ColumnFamilies are created when the database lacks them. RocksDB gives
	// a new column family the next free id; batches refer to column families
	// by id, so create them in the order the source did (check with
	// ColumnFamilies).
	ColumnFamilies []string
	// DisableWAL makes Apply write without the WAL, for a bulk replay: what
	// is not flushed is lost on a crash. Flush and Close flush every column
	// family; atomic flush is on, so that a crash leaves the column families
	// at one sequence.
	DisableWAL bool
	// Own opens the database with its own options, read from its OPTIONS
	// file (merge operators, compaction, compression, table and blob
	// options, WAL settings), as the application would: merges then
	// replay in the column families that have a merge operator. A merge
	// operator or comparator that is not built into RocksDB must be in
	// Operators, else the open fails with an *OptionsError
	// (ErrForeignOptions). CreateIfMissing, ColumnFamilies and DisableWAL
	// do not apply.
	Own       bool
	Operators *Operators
}

// DB is a local database that batches are applied to (restore, standby),
// or one opened read-only. A DB is safe for concurrent use.
type DB struct {
	mu    sync.Mutex
	h     *handle                // nil once closed
	wo    *grocksdb.WriteOptions // nil when read-only
	flush bool                   // flush on Close (the WAL is disabled)
	err   error                  // sticky: a write failed half-way
	txns  Txns                   // prepared sections not yet committed (txn.go)
	group batchGroup             // ApplyBatches' group, kept for its buffer
	// manualFlush: the database's own options set manual_wal_flush, so
	// ApplyBatches writes the WAL's buffer out itself (writeOutWAL).
	manualFlush bool
	// foreign: opened read-only with placeholders for merge operators
	// that rockstream lacks (an *OptionsError): Digest fails with it.
	foreign error
}

// OpenWritable opens (or creates) the database in dir with all its column
// families, plus opts.ColumnFamilies.
func OpenWritable(dir string, opts Options) (*DB, error) {
	if opts.Own {
		return openOwnWritable(dir, opts.Operators)
	}
	names, err := writableColumnFamilies(dir, opts)
	if err != nil {
		return nil, err
	}
	o := newOptions()
	o.SetCreateIfMissing(opts.CreateIfMissing)
	o.SetCreateIfMissingColumnFamilies(true)
	o.SetAtomicFlush(opts.DisableWAL)
	h, err := openHandle(dir, names, o, func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (
		*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbColumnFamilies(o, dir, n, co)
	})
	if err != nil {
		return nil, err
	}
	wo := grocksdb.NewDefaultWriteOptions()
	wo.DisableWAL(opts.DisableWAL)
	return &DB{h: h, wo: wo, flush: opts.DisableWAL}, nil
}

func openOwnWritable(dir string, ops *Operators) (*DB, error) {
	if err := checkDatabase(dir); err != nil {
		return nil, err
	}
	o, err := loadOwnOptions(dir, ops)
	if err != nil {
		return nil, err
	}
	manual := o.db.IsManualWALFlush() // o is the handle's from here
	h, err := openOwn(dir, o, func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (
		*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbColumnFamilies(o, dir, n, co)
	})
	if err != nil {
		return nil, err
	}
	// Opened with the database's own options: RocksDB wrote them as its
	// newest OPTIONS file, and a copy kept by a replay cut short is done.
	if err := dropKeptOptions(dir); err != nil {
		h.close()
		return nil, err
	}
	return &DB{h: h, wo: grocksdb.NewDefaultWriteOptions(), manualFlush: manual}, nil
}

// writableColumnFamilies lists the column families that dir has, plus the
// missing ones of opts; "default" when dir is to be created.
func writableColumnFamilies(dir string, opts Options) ([]string, error) {
	names := []string{"default"}
	if err := checkDatabase(dir); err == nil {
		if names, err = listColumnFamilies(dir); err != nil {
			return nil, err
		}
	} else if !opts.CreateIfMissing {
		return nil, err
	}
	for _, n := range opts.ColumnFamilies {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return names, nil
}

// OpenReadOnly opens the database in dir read-only, with all its column
// families and its own options (Options.Own; RocksDB's defaults when the
// folder has no OPTIONS file). RocksDB replays its WAL in memory and
// changes no file. Apply fails on it. A merge operator that rockstream
// lacks gets a placeholder, so that the sequence can be read; Digest then
// fails with the *OptionsError.
func OpenReadOnly(dir string) (*DB, error) { return OpenReadOnlyWith(dir, nil) }

// OpenReadOnlyWith is OpenReadOnly with the application's own operators.
func OpenReadOnlyWith(dir string, ops *Operators) (*DB, error) {
	if err := checkDatabase(dir); err != nil {
		return nil, err
	}
	o, err := loadOwnOptions(dir, ops)
	var foreign error
	if errors.Is(err, ErrForeignOptions) {
		// Recovery inserts merge records without merging them: the
		// sequence can be read, the values cannot.
		foreign = err
		o, err = loadOptions(dir, ops, loadMode{placeholders: true})
	}
	if errors.Is(err, fs.ErrNotExist) {
		return openDefaultReadOnly(dir)
	}
	if err != nil {
		return nil, err
	}
	h, err := openOwn(dir, o, func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (
		*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbForReadOnlyColumnFamilies(o, dir, n, co, false)
	})
	if err != nil {
		return nil, err
	}
	return &DB{h: h, foreign: foreign}, nil
}

func openDefaultReadOnly(dir string) (*DB, error) {
	names, err := listColumnFamilies(dir)
	if err != nil {
		return nil, err
	}
	h, err := openHandle(dir, names, newOptions(), func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (
		*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbForReadOnlyColumnFamilies(o, dir, n, co, false)
	})
	if err != nil {
		return nil, err
	}
	return &DB{h: h}, nil
}

// Apply writes one batch read from the WAL (Batch.Data): its header holds
// the sequence it had in the source, which must be LatestSequence()+1, or
// Apply returns a *GapError (ErrGap) and writes nothing. RocksDB then gives
// the batch the same sequence numbers as in the source: afterwards
// LatestSequence() is Seq plus the number of sequences the batch used in
// the source (its Batch.Count), as it is in the source.
//
// Two-phase-commit transactions (TransactionDB, WriteCommitted) are
// applied as RocksDB's recovery applies them: a prepare is held (in
// memory) and writes nothing, its commit writes the held records at the
// commit's sequences, a rollback drops them. What Apply writes is a plain
// batch with the records that become visible, never a transaction marker.
// A commit whose prepare Apply did not see (it is before the batches
// applied: see Prepared) is a *NoPrepareError (ErrNoPrepare), and writes
// nothing.
//
// The batch is decoded first; a malformed batch (ErrCorrupt) or one that
// cannot be replayed here (ErrUnsupported) is refused, since RocksDB would
// log it before finding it bad, and a database with a bad batch in its WAL
// does not open again.
func (d *DB) Apply(data []byte) error {
	_, err := d.ApplyBatches([][]byte{data})
	return err
}

// ApplyBatches applies batches in order, each as Apply would, but writes
// each run of consecutive plain batches (no transaction markers) as one
// write (batchGroup: the same sequences, one write instead of one per
// batch). It returns how many batches were applied: after an error,
// batches[n] is the one at fault (or the first of a group whose write
// failed), and nothing of it or after it is written.
func (d *DB) ApplyBatches(batches [][]byte) (n int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writable(); err != nil {
		return 0, err
	}
	latest := d.h.latestSequence()
	g := &d.group
	flush := func() error {
		k := g.n
		if err := g.write(d.h.db, d.wo, d.h.dir); err != nil {
			d.err = err
			return err
		}
		n += k
		return nil
	}
	for _, data := range batches {
		grouped, err := d.applyOne(g, data, &latest, flush)
		if err != nil {
			if ferr := flush(); ferr != nil {
				return n, ferr
			}
			return n, err
		}
		if !grouped {
			n++ // applied alone, or nothing to write; flush counts a group's
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, d.writeOutWAL()
}

// writeOutWAL hands the WAL's buffered records to the file system when the
// database's own options set manual_wal_flush: what was applied is then
// in its WAL file for other processes (a secondary instance reading the
// standby, a read-only open) and survives a crash of this process, as
// without that option. No fsync: SyncWAL does that.
func (d *DB) writeOutWAL() error {
	if !d.manualFlush {
		return nil
	}
	if err := d.h.db.FlushWAL(false); err != nil {
		return fmt.Errorf("rocks: write out the WAL of %s: %w", d.h.dir, err)
	}
	return nil
}

// applyOne takes one batch of ApplyBatches: a plain batch joins the group
// (written first when it is full), any other is applied alone once the
// group is written. latest is where the database ends once the group is
// written.
func (d *DB) applyOne(g *batchGroup, data []byte, latest *uint64, flush func() error) (grouped bool, err error) {
	seq, count, err := batchHeader(data)
	if err != nil {
		return false, fmt.Errorf("rocks: apply to %s: %w", d.h.dir, err)
	}
	if seq != *latest+1 {
		return false, &GapError{Dir: d.h.dir, Expected: *latest + 1, Got: seq, Latest: *latest}
	}
	span, plain, ch, err := d.txns.step(data, true)
	if err != nil {
		return false, fmt.Errorf("rocks: apply to %s the batch at seq %d: %w", d.h.dir, seq, err)
	}
	if ch == nil && span > 0 { // a plain batch
		_, _, empty, err := d.check(data)
		if err != nil {
			return false, fmt.Errorf("rocks: apply to %s the batch at seq %d: %w", d.h.dir, seq, err)
		}
		if !g.fits(len(data), count) {
			if err := flush(); err != nil {
				return false, err
			}
		}
		g.add(data)
		*latest = seq + uint64(span) - 1
		if empty { // the group ends with it (see check)
			return true, flush()
		}
		return true, nil
	}
	if err := flush(); err != nil {
		return false, err
	}
	if span == 0 {
		d.txns.apply(ch) // a prepare, a rollback, log data: nothing to write
		return false, nil
	}
	if _, _, _, err := d.check(plain); err != nil {
		return false, fmt.Errorf("rocks: apply to %s the batch at seq %d: %w", d.h.dir, seq, err)
	}
	d.txns.apply(ch)
	g.add(plain) // a group of its own: what the commit makes visible
	*latest = seq + uint64(span) - 1
	return true, flush()
}

// Prepared adds to what Apply knows the transactions that txns holds
// prepared (PreparedIn): those prepared before the first batch applied by
// this DB, whose commits may come. A database restored from a base at
// sequence S needs PreparedIn of the base's WAL copies up to S, and the
// archive's batches up to its latest sequence.
func (d *DB) Prepared(txns *Txns) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.txns.merge(txns)
}

// PendingTransactions lists the transactions that Apply holds prepared.
func (d *DB) PendingTransactions() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.txns.Pending()
}

// check decodes a plain batch before Apply writes it. A database with
// merge operators takes merges in their column families; two-phase-commit
// markers are refused (Apply has turned a transaction into the plain
// batch of what its commit makes visible).
//
// emptyRange says that the batch holds an empty range deletion (begin ==
// end): RocksDB's inserter applies it without taking a sequence, so the
// records after it in the same write would get sequences one lower than
// in the source; a batchGroup ends with such a batch.
func (d *DB) check(data []byte) (seq uint64, count uint32, emptyRange bool, err error) {
	if len(d.h.merges) == 0 {
		return checkBatchRanges(data, d.h.hasCF)
	}
	s, err := scanBatch(data, d.h.hasCF, d.h.hasMerge)
	switch {
	case err != nil:
		return 0, 0, false, err
	case s.twoPC:
		return 0, 0, false, fmt.Errorf("%w: two-phase-commit markers", ErrUnsupported)
	case s.badRange:
		return 0, 0, false, fmt.Errorf("%w: a range deletion ends before it begins", ErrCorrupt)
	}
	return s.seq, s.count, s.emptyRanges > 0, nil
}

func (d *DB) writable() error {
	switch {
	case d.h == nil:
		return fmt.Errorf("rocks: apply: %w", ErrClosed)
	case d.err != nil:
		return d.err
	case d.wo == nil:
		return fmt.Errorf("rocks: apply to %s: opened read-only", d.h.dir)
	}
	return nil
}

// Flush writes the memtables of every column family to SST files and waits.
func (d *DB) Flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return fmt.Errorf("rocks: flush: %w", ErrClosed)
	}
	return d.flushLocked()
}

// SyncWAL makes every batch applied so far durable on disk (an fsync of the
// WAL), for a caller that records its position next to the database.
func (d *DB) SyncWAL() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return fmt.Errorf("rocks: sync WAL: %w", ErrClosed)
	}
	if err := d.h.db.FlushWAL(true); err != nil {
		return fmt.Errorf("rocks: sync the WAL of %s: %w", d.h.dir, err)
	}
	return nil
}

func (d *DB) flushLocked() error { return d.h.flush() }

// LatestSequence is the database's last sequence number; 0 once closed.
func (d *DB) LatestSequence() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return 0
	}
	return d.h.latestSequence()
}

// ColumnFamilies lists the database's column families.
func (d *DB) ColumnFamilies() []ColumnFamily {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return nil
	}
	return d.h.columnFamilies()
}

// Digest digests the database.
func (d *DB) Digest() (Digest, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return nil, fmt.Errorf("rocks: digest: %w", ErrClosed)
	}
	if d.foreign != nil {
		return nil, fmt.Errorf("rocks: digest %s: %w", d.h.dir, d.foreign)
	}
	return d.h.digest()
}

// Close flushes first when the WAL is disabled, then closes the database.
// The database is closed even when the flush fails.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.h == nil {
		return nil
	}
	var err error
	if d.flush && d.err == nil {
		err = d.flushLocked()
	}
	if d.wo != nil {
		d.wo.Destroy()
	}
	d.h.close()
	d.h, d.wo = nil, nil
	return err
}
