package rocks

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// ownOptions are a database's own options, loaded from its newest OPTIONS
// file (grocksdb.LoadLatestOptions, utilities/options/options_util.cc):
// its DBOptions and each column family's options (compaction style, TTL,
// compression, table and blob options, merge operator, comparator), so
// that a restored database is opened, recovered and flushed as the
// application would.
type ownOptions struct {
	latest *grocksdb.LatestOptions
	cache  *grocksdb.Cache
	db     *grocksdb.Options   // the DBOptions; owned by latest
	names  []string            // the column families, as the OPTIONS file lists them
	cfs    []*grocksdb.Options // owned by latest, or in extra
	extra  []*grocksdb.Options // made here; destroyed with the rest
	fams   []familyOptions
	file   string
}

// replayCacheBytes bounds the block cache of a database opened with its
// own options (LoadLatestOptions gives every block-based table the cache
// it is passed).
const replayCacheBytes = 32 << 20

// loadOwnOptions loads the options of the database in dir. A merge
// operator or a comparator that is not built in comes from ops; one that
// ops lacks fails with an *OptionsError (ErrForeignOptions) naming it.
// Built-in merge operators are set by name (GetOptionsFromString), whether
// or not LoadLatestOptions resolved them.
func loadOwnOptions(dir string, ops *Operators) (*ownOptions, error) {
	fams, file, err := readFamilyOptions(dir)
	if err != nil {
		return nil, err
	}
	if f := findingsOf(fams, ops); len(f) > 0 {
		return nil, &OptionsError{File: file, Findings: f}
	}
	o := &ownOptions{cache: grocksdb.NewLRUCache(replayCacheBytes), fams: fams, file: file}
	o.latest, err = grocksdb.LoadLatestOptions(dir, grocksdb.NewDefaultEnv(), false, o.cache)
	if err != nil {
		o.destroy()
		return nil, fmt.Errorf("rocks: load the options of %s (%s): %w", dir, file, err)
	}
	if o.db, err = latestDBOptions(o.latest); err != nil {
		o.destroy()
		return nil, err
	}
	if err := o.families(ops); err != nil {
		o.destroy()
		return nil, fmt.Errorf("rocks: load the options of %s (%s): %w", dir, file, err)
	}
	if err := o.localize(); err != nil {
		o.destroy()
		return nil, fmt.Errorf("rocks: load the options of %s (%s): %w", dir, file, err)
	}
	return o, nil
}

// latestDBOptions returns the DBOptions of l. grocksdb v1.7.15 loads them
// but has no accessor: they are LatestOptions' first field, an Options
// value. The layout is checked, so that another grocksdb fails here
// rather than reading the wrong memory.
func latestDBOptions(l *grocksdb.LatestOptions) (*grocksdb.Options, error) {
	f := reflect.TypeOf(*l).Field(0)
	if f.Name != "opts" || f.Type != reflect.TypeOf(grocksdb.Options{}) || f.Offset != 0 {
		return nil, fmt.Errorf("rocks: this grocksdb's LatestOptions does not start with its DBOptions (field %q, %v): update latestDBOptions", f.Name, f.Type)
	}
	return (*grocksdb.Options)(unsafe.Pointer(l)), nil
}

// families takes each column family's options and sets the merge
// operators and comparators by name.
func (o *ownOptions) families(ops *Operators) error {
	o.names = o.latest.ColumnFamilyNames()
	all := o.latest.ColumnFamilyOpts()
	byName := map[string]familyOptions{}
	for _, f := range o.fams {
		byName[f.name] = f
	}
	for i, name := range o.names {
		cf := &all[i]
		f := byName[name]
		if op := ops.comparator(f.comparator); op != nil {
			cf.SetComparator(op)
		}
		switch op := ops.merge(f.merge); {
		case op != nil:
			// Only on options that latest owns: its Destroy frees the
			// operator once (Options.Destroy of grocksdb v1.7.15 would
			// free it twice).
			cf.SetMergeOperator(op)
		case f.merge != "":
			named, err := grocksdb.GetOptionsFromString(cf, "merge_operator="+f.merge)
			if err != nil {
				return fmt.Errorf("column family %q: merge operator %q: %w", name, f.merge, err)
			}
			o.extra = append(o.extra, named)
			cf = named
		}
		o.cfs = append(o.cfs, cf)
	}
	return nil
}

// localize makes the options fit a folder of this machine: the WAL and the
// info log in the database's folder (a wal_dir or db_log_dir of the source
// machine names a folder that is not here), the memtables flushed at the
// end of a recovery (replay depends on it), nothing created.
func (o *ownOptions) localize() error {
	if err := o.setDB("avoid_flush_during_recovery=false"); err != nil {
		return err
	}
	o.db.SetWalDir("")
	o.db.SetDbLogDir("")
	o.db.SetCreateIfMissing(false)
	o.db.SetCreateIfMissingColumnFamilies(false)
	return nil
}

// setDB changes DBOptions that grocksdb has no setter for (an option
// string, options/options_helper.cc GetOptionsFromString).
func (o *ownOptions) setDB(opts string) error {
	n, err := grocksdb.GetOptionsFromString(o.db, opts)
	if err != nil {
		return fmt.Errorf("set %q: %w", opts, err)
	}
	o.extra = append(o.extra, n)
	o.db = n
	return nil
}

// hasMerge says whether the column family name has a merge operator.
func (o *ownOptions) hasMerge(name string) bool {
	for _, f := range o.fams {
		if f.name == name {
			return f.merge != ""
		}
	}
	return false
}

func (o *ownOptions) destroy() {
	for _, e := range o.extra {
		e.Destroy()
	}
	if o.latest != nil {
		o.latest.Destroy()
	}
	o.cache.Destroy()
	o.extra, o.latest, o.db, o.cfs = nil, nil, nil, nil
}
