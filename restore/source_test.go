package restore

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/testenv"
)

// Kinds of model operation.
const (
	opPut = iota
	opDelete
	opDeleteRange
	opSingleDelete
)

// op is one operation of a batch, as the model sees it.
type op struct {
	cf       string
	kind     int
	key, val string // val is the end of a range deletion
}

// modelBatch is one write batch: its sequence, count and operations.
type modelBatch struct {
	seq   uint64
	count uint32
	ops   []op
}

func (b modelBatch) last() uint64 { return b.seq + uint64(b.count) - 1 }

// source is a primary RocksDB that a test writes in this process, with a
// model of every batch it wrote: the oracle of the restore tests.
type source struct {
	t     testing.TB
	dir   string
	db    *grocksdb.DB
	opts  *grocksdb.Options
	wo    *grocksdb.WriteOptions
	cfs   map[string]*grocksdb.ColumnFamilyHandle
	list  []*grocksdb.ColumnFamilyHandle
	names []string
	log   []modelBatch
}

// newSource creates a database in dir with column families names (besides
// "default"), keeping old WAL files for an hour (WAL_ttl_seconds). log is
// the model of what the directory holds already (a restored database).
func newSource(t testing.TB, dir string, log []modelBatch, names ...string) *source {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	o.SetWALTtlSeconds(3600)
	all := append([]string{"default"}, names...)
	cfOpts := make([]*grocksdb.Options, len(all))
	for i := range cfOpts {
		cfOpts[i] = o
	}
	db, hs, err := grocksdb.OpenDbColumnFamilies(o, dir, all, cfOpts)
	if err != nil {
		t.Fatalf("open source %s: %v", dir, err)
	}
	s := &source{t: t, dir: dir, db: db, opts: o, wo: grocksdb.NewDefaultWriteOptions(),
		cfs: map[string]*grocksdb.ColumnFamilyHandle{}, list: hs, names: all, log: slices.Clone(log)}
	for i, n := range all {
		s.cfs[n] = hs[i]
	}
	t.Cleanup(s.close)
	return s
}

// write writes one batch of ops and records it.
func (s *source) write(ops []op) modelBatch {
	s.t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	var count uint32
	for _, o := range ops {
		cf := s.cfs[o.cf]
		switch o.kind {
		case opPut:
			wb.PutCF(cf, []byte(o.key), []byte(o.val))
		case opDelete:
			wb.DeleteCF(cf, []byte(o.key))
		case opDeleteRange:
			wb.DeleteRangeCF(cf, []byte(o.key), []byte(o.val))
		case opSingleDelete:
			wb.SingleDeleteCF(cf, []byte(o.key))
		}
		count++
	}
	before := s.db.GetLatestSequenceNumber()
	if err := s.db.Write(s.wo, wb); err != nil {
		s.t.Fatalf("write: %v", err)
	}
	b := modelBatch{seq: before + 1, count: count, ops: ops}
	if got := s.db.GetLatestSequenceNumber(); got != b.last() {
		s.t.Fatalf("source at %d after a batch of %d from %d", got, count, b.seq)
	}
	s.log = append(s.log, b)
	return b
}

// writeRandom writes n batches of 1 to 5 operations over every column
// family: puts (most), deletes and range deletes (never empty).
func (s *source) writeRandom(rng *rand.Rand, n int) {
	s.t.Helper()
	for range n {
		ops := make([]op, 1+rng.IntN(5))
		for i := range ops {
			ops[i] = randomOp(rng, s.names[rng.IntN(len(s.names))])
		}
		s.write(ops)
	}
}

func randomOp(rng *rand.Rand, cf string) op {
	k := rng.IntN(400)
	key := fmt.Sprintf("key%04d", k)
	switch r := rng.IntN(20); {
	case r < 14:
		return op{cf: cf, kind: opPut, key: key, val: fmt.Sprintf("v%d-%s", rng.Int64(), strings.Repeat("x", rng.IntN(80)))}
	case r < 19:
		return op{cf: cf, kind: opDelete, key: key}
	default:
		return op{cf: cf, kind: opDeleteRange, key: key, val: fmt.Sprintf("key%04d", k+1+rng.IntN(8))}
	}
}

// flush flushes every column family.
func (s *source) flush() {
	s.t.Helper()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, cf := range s.list {
		if err := s.db.FlushCF(cf, fo); err != nil {
			s.t.Fatalf("flush: %v", err)
		}
	}
}

func (s *source) latest() uint64 { return s.db.GetLatestSequenceNumber() }

func (s *source) close() {
	if s.db == nil {
		return
	}
	for _, h := range s.list {
		h.Destroy()
	}
	s.db.Close()
	s.wo.Destroy()
	s.opts.Destroy()
	s.db = nil
}

// content is a database's keys and values per column family.
type content map[string]map[string]string

// state is the model's content after the last batch that ends at or
// before seq.
func state(log []modelBatch, names []string, seq uint64) content {
	c := content{}
	for _, n := range names {
		c[n] = map[string]string{}
	}
	for _, b := range log {
		if b.last() > seq {
			break
		}
		for _, o := range b.ops {
			apply(c[o.cf], o)
		}
	}
	return c
}

func apply(m map[string]string, o op) {
	switch o.kind {
	case opPut:
		m[o.key] = o.val
	case opDelete, opSingleDelete:
		delete(m, o.key)
	case opDeleteRange:
		for k := range m {
			if k >= o.key && k < o.val {
				delete(m, k)
			}
		}
	}
}

// batchEndingAtOrBefore is the last sequence of the last batch of log that
// ends at or before seq (the sequence a restore to seq reaches).
func batchEndingAtOrBefore(log []modelBatch, seq uint64) uint64 {
	var last uint64
	for _, b := range log {
		if b.last() > seq {
			break
		}
		last = b.last()
	}
	return last
}

// readContent reads every key of every column family of the database in
// dir, opened read-only with grocksdb.
func readContent(t testing.TB, dir string) content {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	names, err := grocksdb.ListColumnFamilies(o, dir)
	if err != nil {
		t.Fatalf("list column families of %s: %v", dir, err)
	}
	cfOpts := make([]*grocksdb.Options, len(names))
	for i := range cfOpts {
		cfOpts[i] = o
	}
	db, hs, err := grocksdb.OpenDbForReadOnlyColumnFamilies(o, dir, names, cfOpts, false)
	if err != nil {
		t.Fatalf("open %s read-only: %v", dir, err)
	}
	defer db.Close()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	c := content{}
	for i, h := range hs {
		c[names[i]] = readCF(db, ro, h)
		h.Destroy()
	}
	return c
}

func readCF(db *grocksdb.DB, ro *grocksdb.ReadOptions, h *grocksdb.ColumnFamilyHandle) map[string]string {
	m := map[string]string{}
	it := db.NewIteratorCF(ro, h)
	defer it.Close()
	for it.SeekToFirst(); it.Valid(); it.Next() {
		m[string(it.Key().Data())] = string(it.Value().Data())
	}
	return m
}

// diff describes the first difference between two contents, or "".
func diff(got, want content) string {
	for _, cf := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[cf]
		if !ok {
			return fmt.Sprintf("column family %q is missing", cf)
		}
		w := want[cf]
		for _, k := range slices.Sorted(maps.Keys(w)) {
			if gv, ok := g[k]; !ok || gv != w[k] {
				return fmt.Sprintf("column family %q key %q: got %q (present %v), want %q", cf, k, gv, ok, w[k])
			}
		}
		if len(g) != len(w) {
			for _, k := range slices.Sorted(maps.Keys(g)) {
				if _, ok := w[k]; !ok {
					return fmt.Sprintf("column family %q: unexpected key %q", cf, k)
				}
			}
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("%d column families, want %d", len(got), len(want))
	}
	return ""
}

// ldbScan is what `ldb --hex scan` prints for the model's column family.
func ldbScan(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "0x%X : 0x%X\n", k, m[k])
	}
	return b.String()
}

func runTool(t testing.TB, tool string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", tool, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// checkConsistency runs `ldb checkconsistency` on dir.
func checkConsistency(t testing.TB, dir string) {
	t.Helper()
	ldb := testenv.RequireTool(t, "ldb")
	if out := runTool(t, ldb, "--db="+dir, "checkconsistency"); !strings.Contains(out, "OK") {
		t.Fatalf("ldb checkconsistency %s: %s", dir, out)
	}
}
