package rocks

import (
	"fmt"

	"github.com/linxGnu/grocksdb"
)

// ColumnFamily names a column family and its id, the number that write
// batches use to refer to it.
type ColumnFamily struct {
	Name string
	ID   uint32
}

// handle is an open database with all its column families. It owns every
// grocksdb object that it holds; close releases them in order.
type handle struct {
	dir     string
	db      *grocksdb.DB
	release func() // destroys the options, after the database is closed
	cfs     []*grocksdb.ColumnFamilyHandle
	ids     map[uint32]bool
	merges  map[uint32]bool // column families with a merge operator
}

// opener opens a database with the named column families, all with the
// same options.
type opener func(opts *grocksdb.Options, names []string, cfOpts []*grocksdb.Options) (
	*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error)

// newOptions returns the options that this package opens databases with:
// RocksDB's defaults (bytewise comparator, no merge operator), with a
// bounded info log.
func newOptions() *grocksdb.Options {
	o := grocksdb.NewDefaultOptions()
	o.SetKeepLogFileNum(4)
	o.SetMaxLogFileSize(16 << 20)
	return o
}

// openHandle opens dir with open. It takes ownership of opts: they are
// destroyed when the open fails or when the handle is closed.
func openHandle(dir string, names []string, opts *grocksdb.Options, open opener) (*handle, error) {
	cfOpts := make([]*grocksdb.Options, len(names))
	for i := range cfOpts {
		cfOpts[i] = opts
	}
	return openWith(dir, names, opts, cfOpts, opts.Destroy, open)
}

// openOwn opens dir with its own options (loadOwnOptions). It takes
// ownership of o.
func openOwn(dir string, o *ownOptions, open opener) (*handle, error) {
	h, err := openWith(dir, o.names, o.db, o.cfs, o.destroy, open)
	if err != nil {
		return nil, err
	}
	for _, cf := range h.cfs {
		if o.hasMerge(cf.Name()) {
			h.merges[cf.ID()] = true
		}
	}
	return h, nil
}

// openWith opens dir with open; release destroys the options, and is
// called when the open fails or when the handle is closed.
func openWith(dir string, names []string, opts *grocksdb.Options, cfOpts []*grocksdb.Options, release func(), open opener) (*handle, error) {
	db, cfs, err := open(opts, names, cfOpts)
	if err != nil {
		release()
		return nil, fmt.Errorf("rocks: open %s: %w", dir, err)
	}
	h := &handle{dir: dir, db: db, release: release, cfs: cfs, ids: map[uint32]bool{}, merges: map[uint32]bool{}}
	for _, cf := range cfs {
		h.ids[cf.ID()] = true
	}
	return h, nil
}

// listColumnFamilies returns the column families of the database in dir.
func listColumnFamilies(dir string) ([]string, error) {
	if err := checkDatabase(dir); err != nil {
		return nil, err
	}
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	names, err := grocksdb.ListColumnFamilies(opts, dir)
	if err != nil {
		return nil, fmt.Errorf("rocks: list column families of %s: %w", dir, err)
	}
	return names, nil
}

func (h *handle) hasCF(id uint32) bool { return h.ids[id] }

func (h *handle) hasMerge(id uint32) bool { return h.merges[id] }

func (h *handle) latestSequence() uint64 { return h.db.GetLatestSequenceNumber() }

func (h *handle) columnFamilies() []ColumnFamily {
	out := make([]ColumnFamily, len(h.cfs))
	for i, cf := range h.cfs {
		out[i] = ColumnFamily{Name: cf.Name(), ID: cf.ID()}
	}
	return out
}

// flush writes the memtables of every column family to SST files and
// waits.
func (h *handle) flush() error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, cf := range h.cfs {
		if err := h.db.FlushCF(cf, fo); err != nil {
			return fmt.Errorf("rocks: flush %s column family %q: %w", h.dir, cf.Name(), err)
		}
	}
	return nil
}

// close releases the column family handles before the database (RocksDB
// asserts that no handle outlives its database), then the options.
func (h *handle) close() {
	for _, cf := range h.cfs {
		cf.Destroy()
	}
	h.db.Close()
	h.release()
	h.cfs, h.db, h.release = nil, nil, nil
}
