package rocks

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/testenv"
)

// writer is a primary database that a test writes to, in this process.
type writer struct {
	t    testing.TB
	dir  string
	db   *grocksdb.DB
	opts *grocksdb.Options
	wo   *grocksdb.WriteOptions
	cfs  map[string]*grocksdb.ColumnFamilyHandle
	list []*grocksdb.ColumnFamilyHandle
}

// newWriter creates a database in dir with the given column families
// (besides "default") and WAL_ttl_seconds; a ttl of 0 keeps no old WAL.
func newWriter(t testing.TB, dir string, ttl uint64, cfNames ...string) *writer {
	t.Helper()
	return newWriterWith(t, dir, func(o *grocksdb.Options) { o.SetWALTtlSeconds(ttl) }, cfNames...)
}

// newWriterWith is newWriter with options set by set.
func newWriterWith(t testing.TB, dir string, set func(*grocksdb.Options), cfNames ...string) *writer {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	set(o)
	return openWriter(t, dir, o, cfNames...)
}

// openWriter opens (or creates) the database in dir with options o, which
// it owns, for every column family.
func openWriter(t testing.TB, dir string, o *grocksdb.Options, cfNames ...string) *writer {
	t.Helper()
	names := append([]string{"default"}, cfNames...)
	cfOpts := make([]*grocksdb.Options, len(names))
	for i := range cfOpts {
		cfOpts[i] = o
	}
	db, hs, err := grocksdb.OpenDbColumnFamilies(o, dir, names, cfOpts)
	if err != nil {
		t.Fatalf("open writer %s: %v", dir, err)
	}
	w := &writer{t: t, dir: dir, db: db, opts: o, wo: grocksdb.NewDefaultWriteOptions(),
		cfs: map[string]*grocksdb.ColumnFamilyHandle{}, list: hs}
	for i, n := range names {
		w.cfs[n] = hs[i]
	}
	t.Cleanup(w.close)
	return w
}

// write writes one batch built by fill and returns the database's latest
// sequence after it.
func (w *writer) write(fill func(wb *grocksdb.WriteBatch)) uint64 {
	w.t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	fill(wb)
	if err := w.db.Write(w.wo, wb); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	return w.db.GetLatestSequenceNumber()
}

// writeRandom writes n batches of 1 to 4 operations over every column
// family: puts, deletes, single deletes and range deletes.
func (w *writer) writeRandom(rng *rand.Rand, n int) {
	w.t.Helper()
	for range n {
		w.write(func(wb *grocksdb.WriteBatch) {
			for range 1 + rng.IntN(4) {
				addRandomOp(wb, rng, w.list[rng.IntN(len(w.list))])
			}
		})
	}
}

func addRandomOp(wb *grocksdb.WriteBatch, rng *rand.Rand, cf *grocksdb.ColumnFamilyHandle) {
	k := rng.IntN(500)
	key := fmt.Appendf(nil, "key%04d", k)
	switch r := rng.IntN(20); {
	case r < 14:
		wb.PutCF(cf, key, fmt.Appendf(nil, "value-%d-%x", rng.Int64(), make([]byte, rng.IntN(64))))
	case r < 18:
		wb.DeleteCF(cf, key)
	case r < 19: // SingleDelete only after a single Put of the key; the pair
		// cancels out in a flush (see TestSequenceAfterFlushAndReopen)
		once := fmt.Appendf(nil, "once%016x", rng.Uint64())
		wb.PutCF(cf, once, key)
		if rng.IntN(2) == 0 {
			wb.SingleDeleteCF(cf, once)
		}
	default: // never empty: see TestEmptyDeleteRange
		wb.DeleteRangeCF(cf, key, fmt.Appendf(nil, "key%04d", k+1+rng.IntN(10)))
	}
}

// flush flushes every column family, which starts a new WAL file.
func (w *writer) flush() {
	w.t.Helper()
	flushFamilies(w.t, w.db, w.list)
}

// flushFamilies flushes the column families cfs of db (a DB or a
// TransactionDB) and waits.
func flushFamilies(t testing.TB, db interface {
	FlushCF(*grocksdb.ColumnFamilyHandle, *grocksdb.FlushOptions) error
}, cfs []*grocksdb.ColumnFamilyHandle) {
	t.Helper()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	for _, cf := range cfs {
		if err := db.FlushCF(cf, fo); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
}

func (w *writer) latest() uint64 { return w.db.GetLatestSequenceNumber() }

func (w *writer) close() {
	if w.db == nil {
		return
	}
	for _, h := range w.list {
		h.Destroy()
	}
	w.db.Close()
	w.wo.Destroy()
	w.opts.Destroy()
	w.db = nil
}

// follow opens a follower of dir with a scratch directory of its own.
func follow(t testing.TB, dir string) *Follower {
	t.Helper()
	f, err := OpenFollower(dir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatalf("open follower: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// drain reads every batch that the follower has caught up to, checking
// continuity itself as well: each batch starts at the previous Next().
func drain(t testing.TB, u *Updates, got []Batch) []Batch {
	t.Helper()
	for {
		b, ok, err := u.Next()
		if err != nil {
			t.Fatalf("next after %d batches: %v", len(got), err)
		}
		if !ok {
			return got
		}
		if n := len(got); n > 0 && b.Seq != got[n-1].Next() {
			t.Fatalf("batch %d starts at seq %d, want %d", n, b.Seq, got[n-1].Next())
		}
		got = append(got, b)
	}
}

// requireTool is testenv.RequireTool: a missing tool fails the test under
// CI=true and skips it (not a pass) otherwise.
func requireTool(t testing.TB, name string) string { return testenv.RequireTool(t, name) }
