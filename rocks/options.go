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
// operator that is not built in comes from ops; one that ops lacks, and a
// comparator that is not built in, fail with an *OptionsError
// (ErrForeignOptions) naming them.
// Built-in merge operators are set by name (GetOptionsFromString), whether
// or not LoadLatestOptions resolved them.
func loadOwnOptions(dir string, ops *Operators) (*ownOptions, error) {
	return loadOptions(dir, ops, loadMode{})
}

// loadFollowerOptions loads the options of the database in dir for a
// secondary instance (Follower), which inserts merge records into its
// memtables but never merges them (it takes checkpoints and reads the
// WAL): a merge operator that rockstream lacks gets a placeholder that
// fails if it is ever called. The WAL folder stays the writer's (the
// database is on this machine).
func loadFollowerOptions(dir string) (*ownOptions, error) {
	return loadOptions(dir, nil, loadMode{placeholders: true, keepWALDir: true})
}

// loadMode says how loadOptions treats what it finds.
type loadMode struct {
	placeholders bool // a merge operator rockstream lacks gets a placeholder
	keepWALDir   bool // the database's wal_dir is on this machine
}

func loadOptions(dir string, ops *Operators, mode loadMode) (*ownOptions, error) {
	fams, file, err := readFamilyOptions(dir)
	if err != nil {
		return nil, err
	}
	findings := findingsOf(fams, ops)
	if mode.placeholders {
		ops = placeholders(findings, ops)
		findings = findingsOf(fams, ops)
	}
	if len(findings) > 0 {
		return nil, &OptionsError{File: file, Findings: findings}
	}
	o := &ownOptions{cache: grocksdb.NewLRUCache(replayCacheBytes), fams: fams, file: file}
	// Unknown options are ignored only in a file that a newer RocksDB
	// wrote (options/options_parser.cc RocksDBOptionsParser::Parse).
	o.latest, err = loadOptionsFile(dir, file, o.cache)
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
	if err := o.localize(mode.keepWALDir); err != nil {
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
// operators by name.
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
func (o *ownOptions) localize(keepWALDir bool) error {
	if err := o.setDB("avoid_flush_during_recovery=false"); err != nil {
		return err
	}
	if !keepWALDir {
		o.db.SetWalDir("")
	}
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

// placeholders adds to ops a placeholder for each merge operator of
// findings.
func placeholders(findings []Finding, ops *Operators) *Operators {
	out := &Operators{Merge: map[string]grocksdb.MergeOperator{}}
	if ops != nil {
		for k, v := range ops.Merge {
			out.Merge[k] = v
		}
	}
	for _, f := range findings {
		if f.Kind == "merge operator" {
			out.Merge[f.Name] = unavailableMerge(f.Name)
		}
	}
	return out
}

// unavailableMerge stands for a merge operator of the application's that
// rockstream does not have; merging with it fails.
type unavailableMerge string

func (u unavailableMerge) Name() string { return string(u) }

func (u unavailableMerge) FullMerge(key, existing []byte, ops [][]byte) ([]byte, bool) {
	return nil, false
}

// bulkLoad tunes o for the Replayer's direct path, which writes batches
// from one goroutine and reads nothing until it has flushed: every column
// family gets a vector memtable (records appended as they come, sorted
// once, in the flush's thread, instead of a skiplist insert per record),
// which RocksDB only allows without concurrent memtable writes (and so
// without unordered_write). A column family that reads its memtable while
// it writes keeps its own memtable: in-place updates
// (inplace_update_support) and merges combined at write time
// (max_successive_merges). What the database holds is the same either
// way; the memtable is only the order in which the records wait for their
// flush. With atomic, the families flush together (ReplayOptions.InPlace),
// also at the close (avoid_flush_during_shutdown off; pipelined writes,
// which RocksDB refuses with atomic_flush, off: nothing goes to the WAL).
func (o *ownOptions) bulkLoad(atomic bool) error {
	if atomic {
		if err := o.setDB("atomic_flush=true;avoid_flush_during_shutdown=false;enable_pipelined_write=false"); err != nil {
			return err
		}
	}
	any := false
	for _, cf := range o.cfs {
		if cf.InplaceUpdateSupport() || cf.GetMaxSuccessiveMerges() > 0 {
			continue
		}
		cf.SetMemtableVectorRep()
		any = true
	}
	if !any {
		return nil
	}
	return o.setDB("allow_concurrent_memtable_write=false;unordered_write=false")
}
