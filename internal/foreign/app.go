package foreign

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/linxGnu/grocksdb"
)

// Mode is how Open opens a folder.
type Mode int

const (
	// Create opens read-write and creates the database and its families
	// when missing: the writer.
	Create Mode = iota
	// ReadWrite opens an existing database read-write, as the application
	// does when it starts on a restored or promoted folder.
	ReadWrite
	// ReadOnly opens an existing database read-only (a TransactionDB shape
	// as a plain DB with allow_2pc, since RocksDB has no read-only
	// TransactionDB).
	ReadOnly
)

// App is a database opened with a shape's options.
type App struct {
	shape *Shape
	dir   string
	mode  Mode
	db    *grocksdb.DB
	tdb   *grocksdb.TransactionDB
	cfs   map[string]*grocksdb.ColumnFamilyHandle
	opts  []*grocksdb.Options // kept alive with the handle
	wo    *grocksdb.WriteOptions
	txn   txnState
}

// Open opens dir with shape's options.
func Open(shape *Shape, dir string, mode Mode) (*App, error) {
	dbStr := shape.DBOptions
	if shape.Txn && mode == ReadOnly {
		// TransactionDB sets allow_2pc itself
		// (utilities/transactions/pessimistic_transaction_db.cc:293); a plain
		// DB needs it to read a WAL with prepared sections.
		dbStr = join(dbStr, "allow_2pc=true")
	}
	if shape.WALDir {
		// the application keeps its WAL folder beside each database folder
		// and makes it when missing (a restored folder has none)
		wal := filepath.Clean(dir) + ".wal"
		if err := os.MkdirAll(wal, 0o755); err != nil {
			return nil, fmt.Errorf("foreign: %s: %w", shape.Name, err)
		}
		dbStr = join(dbStr, "wal_dir="+wal)
	}
	dbOpts, err := parseOptions(dbStr)
	if err != nil {
		return nil, fmt.Errorf("foreign: %s database options: %w", shape.Name, err)
	}
	a := &App{shape: shape, dir: dir, mode: mode, cfs: map[string]*grocksdb.ColumnFamilyHandle{},
		opts: []*grocksdb.Options{dbOpts}, wo: grocksdb.NewDefaultWriteOptions()}
	names, err := a.familyNames(dbOpts)
	if err != nil {
		a.Close()
		return nil, err
	}
	var cfOpts []*grocksdb.Options
	for _, n := range names {
		o, err := parseOptions(shape.familyOptions(n))
		if err != nil {
			a.Close()
			return nil, fmt.Errorf("foreign: %s family %q options: %w", shape.Name, n, err)
		}
		a.opts = append(a.opts, o)
		cfOpts = append(cfOpts, o)
	}
	if err := a.open(dbOpts, names, cfOpts); err != nil {
		a.Close()
		return nil, fmt.Errorf("foreign: open %s as %s (mode %d): %w", dir, shape.Name, mode, err)
	}
	return a, nil
}

// familyNames returns the families to open: the shape's when creating a
// new database, else the ones the database has.
func (a *App) familyNames(dbOpts *grocksdb.Options) ([]string, error) {
	if _, err := os.Stat(filepath.Join(a.dir, "CURRENT")); errors.Is(err, os.ErrNotExist) && a.mode == Create {
		var names []string
		for _, f := range a.shape.Families {
			names = append(names, f.Name)
		}
		return names, nil
	}
	names, err := grocksdb.ListColumnFamilies(dbOpts, a.dir)
	if err != nil {
		return nil, fmt.Errorf("foreign: list the column families of %s: %w", a.dir, err)
	}
	return names, nil
}

func (a *App) open(dbOpts *grocksdb.Options, names []string, cfOpts []*grocksdb.Options) error {
	var hs []*grocksdb.ColumnFamilyHandle
	var err error
	switch {
	case a.mode == ReadOnly:
		a.db, hs, err = grocksdb.OpenDbForReadOnlyColumnFamilies(dbOpts, a.dir, names, cfOpts, false)
	case a.shape.Txn:
		dbOpts.SetCreateIfMissing(a.mode == Create)
		dbOpts.SetCreateIfMissingColumnFamilies(a.mode == Create)
		topts := grocksdb.NewDefaultTransactionDBOptions()
		defer topts.Destroy()
		a.tdb, hs, err = grocksdb.OpenTransactionDbColumnFamilies(dbOpts, topts, a.dir, names, cfOpts)
	default:
		dbOpts.SetCreateIfMissing(a.mode == Create)
		dbOpts.SetCreateIfMissingColumnFamilies(a.mode == Create)
		a.db, hs, err = grocksdb.OpenDbColumnFamilies(dbOpts, a.dir, names, cfOpts)
	}
	if err != nil {
		return err
	}
	for i, h := range hs {
		a.cfs[names[i]] = h
	}
	return nil
}

// parseOptions turns an options string into Options over defaults.
func parseOptions(s string) (*grocksdb.Options, error) {
	base := grocksdb.NewDefaultOptions()
	if s == "" {
		return base, nil
	}
	defer base.Destroy()
	return grocksdb.GetOptionsFromString(base, s)
}

// Families returns the names of the open column families, sorted.
func (a *App) Families() []string {
	var n []string
	for name := range a.cfs {
		n = append(n, name)
	}
	slices.Sort(n)
	return n
}

// Sequence returns the database's latest sequence. A TransactionDB has no
// such call in grocksdb v1.7.15: it reads it from a checkpoint, opened
// read-only as a plain DB (see Mark).
func (a *App) Sequence() (uint64, bool) {
	if a.db == nil {
		return 0, false
	}
	return a.db.GetLatestSequenceNumber(), true
}

// FlushWAL writes the WAL buffer of a manual_wal_flush shape to its file.
func (a *App) FlushWAL() error {
	if !a.shape.ManualFlush || a.mode == ReadOnly {
		return nil
	}
	if a.tdb != nil {
		return a.tdb.FlushWAL(false)
	}
	return a.db.FlushWAL(false)
}

// Checkpoint writes a RocksDB checkpoint of the database into dir, without
// a flush (RocksDB flushes anyway when allow_2pc is set): it leaves out
// writes made without the WAL that are still in a memtable.
func (a *App) Checkpoint(dir string) error {
	var cp *grocksdb.Checkpoint
	var err error
	if a.tdb != nil {
		cp, err = a.tdb.NewCheckpoint()
	} else {
		cp, err = a.db.NewCheckpoint()
	}
	if err != nil {
		return fmt.Errorf("foreign: checkpoint of %s: %w", a.dir, err)
	}
	defer cp.Destroy()
	if err := cp.CreateCheckpoint(dir, math.MaxUint64); err != nil {
		return fmt.Errorf("foreign: checkpoint of %s into %s: %w", a.dir, dir, err)
	}
	return nil
}

// Close releases the database; a transaction left prepared stays prepared
// in the WAL.
func (a *App) Close() {
	for _, h := range a.cfs {
		h.Destroy()
	}
	a.cfs = nil
	if a.db != nil {
		a.db.Close()
		a.db = nil
	}
	if a.tdb != nil {
		a.tdb.Close()
		a.tdb = nil
	}
	for _, o := range a.opts {
		o.Destroy()
	}
	a.opts = nil
	if a.wo != nil {
		a.wo.Destroy()
		a.wo = nil
	}
}

// write applies a batch with the shape's handle.
func (a *App) write(wb *grocksdb.WriteBatch) error {
	if a.tdb != nil {
		return a.tdb.Write(a.wo, wb)
	}
	return a.db.Write(a.wo, wb)
}

func (a *App) iterator(ro *grocksdb.ReadOptions, cf *grocksdb.ColumnFamilyHandle) *grocksdb.Iterator {
	if a.tdb != nil {
		return a.tdb.NewIteratorCF(ro, cf)
	}
	return a.db.NewIteratorCF(ro, cf)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + ";" + b
}
