package foreign

import (
	"fmt"
	"slices"
	"strings"
)

// Family is a column family that a shape opens, with its options as a
// RocksDB options string (grocksdb.GetOptionsFromString over defaults).
type Family struct {
	Name    string
	Options string
}

// Shape is how one kind of application opens and writes its database.
type Shape struct {
	Name string
	// DBOptions is the database options string, over defaults.
	DBOptions string
	// Families are the column families at creation, "default" first.
	Families []Family
	// Txn opens a TransactionDB (write-committed) instead of a DB.
	Txn bool
	// Dynamic gives the options of a family created while writing (cfchurn).
	Dynamic func(name string) string
	// ManualFlush: the shape sets manual_wal_flush and calls FlushWAL.
	ManualFlush bool
	// WALDir: the WAL goes to the folder DIR.wal beside the database DIR
	// (wal_dir).
	WALDir bool
	// Timestamps: the families use user-defined timestamps (the built-in
	// leveldb.BytewiseComparator.u64ts); writes carry one, reads give the
	// newest.
	Timestamps bool
	// Serial: the shape's writes share state (transactions, families
	// created and dropped, write options) and run from one thread only.
	Serial bool
	// DropSlack says whether a family that the shape drops while it writes
	// may still be in a restore to a mark taken after its drop (cfchurn):
	// the sidecar places a drop where it noticed it in the MANIFEST, up to
	// a poll of the MANIFEST (~250 ms of writes) after the drop.
	DropSlack func(family string) bool
	// FlushAtMarks: the application flushes every family before each mark,
	// as a program that writes without the WAL must to make those writes
	// durable (unlogged).
	FlushAtMarks bool
	// ReadOnlyShape: the program never writes this shape (db_bench does).
	ReadOnlyShape bool
	step          func(a *App, w *workload, i int) error
	finish        func(a *App, w *workload) error
}

// Names returns the names of every shape, sorted.
func Names() []string {
	var n []string
	for _, s := range shapes() {
		n = append(n, s.Name)
	}
	slices.Sort(n)
	return n
}

// Lookup returns the shape called name.
func Lookup(name string) (*Shape, error) {
	for _, s := range shapes() {
		if s.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("foreign: no shape %q (shapes: %s)", name, strings.Join(Names(), ", "))
}

// familyOptions returns the options string of the family called name.
func (s *Shape) familyOptions(name string) string {
	for _, f := range s.Families {
		if f.Name == name {
			return f.Options
		}
	}
	if s.Dynamic != nil {
		return s.Dynamic(name)
	}
	return ""
}

const keepWAL = "WAL_ttl_seconds=3600"

func shapes() []*Shape {
	return []*Shape{
		{Name: "plain", DBOptions: keepWAL, Families: []Family{{Name: "default"}}, step: writePlain},
		{Name: "homeserver", DBOptions: homeserverDB, Families: homeserverFamilies(), ManualFlush: true, step: writeHomeserver},
		{Name: "merge", DBOptions: keepWAL, Families: mergeFamilies, step: writeMerge},
		{Name: "txn", DBOptions: keepWAL, Families: txnFamilies, Txn: true, Serial: true, step: writeTxn, finish: leavePrepared},
		{Name: "cfchurn", DBOptions: keepWAL, Families: []Family{{Name: "default", Options: "write_buffer_size=262144"}},
			Dynamic: churnOptions, Serial: true, step: writeChurn, DropSlack: isChurnFamily},
		{Name: "walzstd", DBOptions: keepWAL + ";wal_compression=kZSTD", Families: []Family{{Name: "default", Options: "write_buffer_size=262144"}},
			step: writePlain},
		{Name: "smallmem", DBOptions: keepWAL, Families: smallmemFamilies, step: writePlain},
		{Name: "waldir", DBOptions: keepWAL, Families: small, WALDir: true, step: writePlain},
		{Name: "unordered", DBOptions: keepWAL + ";unordered_write=true", Families: small, step: writePlain},
		{Name: "avoidflush", DBOptions: keepWAL + ";avoid_flush_during_recovery=true", Families: small, step: writePlain},
		{Name: "blobdb", DBOptions: keepWAL, Families: []Family{{Name: "default",
			Options: "write_buffer_size=65536;enable_blob_files=true;min_blob_size=64;blob_file_size=1048576"}}, step: writePlain},
		{Name: "comparator", DBOptions: keepWAL, Families: []Family{{Name: "default",
			Options: "write_buffer_size=262144;comparator=rocksdb.ReverseBytewiseComparator"}}, step: writePlain},
		// unlogged keeps the default 64 MiB write buffer, so nothing is
		// flushed but at its marks, where it flushes as a program that writes
		// without the WAL must: until then a base would miss the unlogged
		// writes (the archiver waits for the flush), and the marks'
		// checkpoints hold them.
		{Name: "unlogged", DBOptions: keepWAL, Families: []Family{{Name: "default"}}, Serial: true, FlushAtMarks: true, step: writeUnlogged},
		{Name: "udt", DBOptions: keepWAL, Families: []Family{{Name: "default",
			Options: "write_buffer_size=262144;comparator=leveldb.BytewiseComparator.u64ts"}}, Timestamps: true, step: writeTimestamped},
		{Name: "dbbench", Families: []Family{{Name: "default", Options: "merge_operator=uint64add"}}, ReadOnlyShape: true},
	}
}

var small = []Family{{Name: "default", Options: "write_buffer_size=262144"}}

var mergeFamilies = []Family{
	{Name: "default", Options: "write_buffer_size=131072"},
	{Name: "counters", Options: "merge_operator=uint64add;write_buffer_size=65536"},
	{Name: "log", Options: "merge_operator=stringappend;write_buffer_size=65536"},
}

var txnFamilies = []Family{
	{Name: "default", Options: "write_buffer_size=262144"},
	{Name: "events", Options: "write_buffer_size=131072;compression=kZSTD"},
	{Name: "state", Options: "write_buffer_size=131072"},
}

var smallmemFamilies = []Family{
	{Name: "default", Options: "write_buffer_size=65536;max_write_buffer_number=2"},
	{Name: "a", Options: "write_buffer_size=131072;max_write_buffer_number=2"},
	{Name: "b", Options: "write_buffer_size=196608;max_write_buffer_number=2"},
	{Name: "c", Options: "write_buffer_size=262144;max_write_buffer_number=2"},
}

// churnOptions gives each reused name of a cfchurn family options of its own.
func churnOptions(name string) string {
	switch name {
	case "churn-0":
		return "compaction_style=kCompactionStyleUniversal;write_buffer_size=131072"
	case "churn-1":
		return "write_buffer_size=65536"
	case "churn-2":
		return "compression=kZSTD;block_based_table_factory={block_size=1024}"
	default:
		return fmt.Sprintf("compaction_style=kCompactionStyleFIFO;ttl=%d;write_buffer_size=131072", fifoTTL)
	}
}
