package rocks

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// groupSource writes a database whose WAL holds plain batches of one to
// many records (deletes and range deletions among them), then
// two-phase-commit transactions (TransactionDB: prepares, commits out of
// order, rollbacks, plain writes between them), and returns its batches and
// its digest and last sequence.
func groupSource(t *testing.T) ([][]byte, Digest, uint64) {
	t.Helper()
	src := filepath.Join(t.TempDir(), "src")
	w := newWriter(t, src, 3600)
	plain := func() {
		for n := range 300 {
			w.write(func(wb *grocksdb.WriteBatch) {
				for j := range 1 + n%5 {
					wb.Put(fmt.Appendf(nil, "k%04d", (n*7+j)%500), fmt.Appendf(nil, "v%d", n))
				}
				if n%11 == 0 {
					wb.Delete(fmt.Appendf(nil, "k%04d", n%500))
				}
				if n%37 == 0 {
					wb.DeleteRange(fmt.Appendf(nil, "k%04d", n%500), fmt.Appendf(nil, "k%04d", n%500+3))
				}
			})
		}
	}
	plain()
	w.flush() // a TransactionDB's recovery refuses range deletions
	w.close()
	writeTransactions(t, src)
	want, seq := dirDigest(t, src)
	return rawBatches(t, src), want, seq
}

// TestApplyBatches: batches applied by ApplyBatches in slices of any size
// (plain runs written as one write, transaction batches alone) give the
// database that Apply gives one batch at a time, which is the source's.
func TestApplyBatches(t *testing.T) {
	batches, want, wantSeq := groupSource(t)
	for _, size := range []int{1, 7, 64, len(batches)} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			db, err := OpenWritable(dir, Options{CreateIfMissing: true})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(batches); i += size {
				part := batches[i:min(i+size, len(batches))]
				if n, err := db.ApplyBatches(part); err != nil || n != len(part) {
					t.Fatalf("batches %d..%d: %d applied: %v", i, i+len(part)-1, n, err)
				}
			}
			db.Close()
			got, seq := dirDigest(t, dir)
			if d := got.Diff(want); d != "" || seq != wantSeq {
				t.Fatalf("at %d (want %d): %s", seq, wantSeq, d)
			}
		})
	}
}

// TestApplyBatchesStopsAtFault: a gap or a malformed batch in the middle
// of a slice: the batches before it are applied (those gathered in a group
// too), n names it, and nothing of it or after it is written.
func TestApplyBatchesStopsAtFault(t *testing.T) {
	batches, _, _ := groupSource(t)
	plain := batches[:200] // plain batches only: one group
	for name, c := range map[string]struct {
		bad func([]byte) []byte
		is  error
	}{
		"gap":       {func(b []byte) []byte { return withSeq(b, 1<<40) }, ErrGap},
		"malformed": {func(b []byte) []byte { return append(b[:len(b):len(b)], 0x7f) }, ErrCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			db, err := OpenWritable(dir, Options{CreateIfMissing: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			in := append([][]byte(nil), plain...)
			in[150] = c.bad(in[150])
			n, err := db.ApplyBatches(in)
			if n != 150 || !errors.Is(err, c.is) {
				t.Fatalf("%d applied, %v; want 150 and %v", n, err, c.is)
			}
			end, _, _ := batchHeader(plain[150])
			if got := db.LatestSequence(); got != end-1 {
				t.Fatalf("the database ends at %d, want %d (right before the bad batch)", got, end-1)
			}
			if n, err := db.ApplyBatches(plain[150:]); err != nil || n != 50 {
				t.Fatalf("the rest after the fault: %d applied: %v", n, err)
			}
		})
	}
}

// emptyRangeSource writes a database whose second batch holds an empty
// range deletion (begin == end) between two puts, with batches after it,
// and returns its folder and its batches.
func emptyRangeSource(t *testing.T, dir string) [][]byte {
	t.Helper()
	w := newWriter(t, dir, 3600)
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	w.write(func(wb *grocksdb.WriteBatch) {
		wb.Put([]byte("b"), []byte("1"))
		wb.DeleteRange([]byte("k"), []byte("k"))
		wb.Put([]byte("c"), []byte("1"))
	})
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("d"), []byte("1")) })
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("e"), []byte("1")) })
	w.close()
	return rawBatches(t, dir)
}

// TestApplyBatchesEmptyRange: RocksDB's inserter takes no sequence for an
// empty range deletion, so a group that went on after one would give the
// records after it sequences one lower than in the source, and the
// database would reopen behind the batches applied. ApplyBatches ends a
// group with such a batch: grouped or one by one, the database reopens at
// the same sequence and takes the next batch.
func TestApplyBatchesEmptyRange(t *testing.T) {
	tmp := t.TempDir()
	batches := emptyRangeSource(t, filepath.Join(tmp, "src"))
	var reopened []uint64
	for _, grouped := range []bool{false, true} {
		dir := filepath.Join(tmp, fmt.Sprint(grouped))
		db, err := OpenWritable(dir, Options{CreateIfMissing: true})
		if err != nil {
			t.Fatal(err)
		}
		if grouped {
			if n, err := db.ApplyBatches(batches[:3]); err != nil || n != 3 {
				t.Fatalf("%d applied: %v", n, err)
			}
		} else {
			for _, b := range batches[:3] {
				if err := db.Apply(b); err != nil {
					t.Fatal(err)
				}
			}
		}
		db.Close()
		if db, err = OpenWritable(dir, Options{}); err != nil {
			t.Fatal(err)
		}
		reopened = append(reopened, db.LatestSequence())
		if err := db.Apply(batches[3]); err != nil {
			t.Fatalf("grouped %v: the next batch after a reopen at %d: %v", grouped, reopened[len(reopened)-1], err)
		}
		db.Close()
	}
	if reopened[0] != reopened[1] {
		t.Fatalf("reopened at %d one by one, %d grouped", reopened[0], reopened[1])
	}
}

// TestReplayerEmptyRange: the direct path ends a group with a batch that
// holds an empty range deletion, and gives what recovery gives.
func TestReplayerEmptyRange(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	batches := emptyRangeSource(t, src)
	want, _ := dirDigest(t, src)
	var ends []uint64
	for _, rec := range []bool{false, true} {
		dir := filepath.Join(tmp, fmt.Sprint(rec))
		db, err := OpenWritable(dir, Options{CreateIfMissing: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Apply(batches[0]); err != nil {
			t.Fatal(err)
		}
		db.Close()
		r, err := NewReplayer(dir, ReplayOptions{Recovery: rec})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range batches[1:] {
			if err := r.Add(b); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Finish(r.Next() - 1); err != nil {
			failReplay(t, dir, err)
		}
		got, seq := dirDigest(t, dir)
		if d := got.Diff(want); d != "" || seq != r.Next()-1 {
			t.Fatalf("recovery %v: reopened at %d (the batches end at %d): %s", rec, seq, r.Next()-1, d)
		}
		ends = append(ends, seq)
	}
	if ends[0] != ends[1] {
		t.Fatalf("direct ends at %d, recovery at %d", ends[0], ends[1])
	}
}

// TestReplayerBaseBehind: a base whose WAL ends with a Put and its
// SingleDelete reopens, once flushed, before the sequence it was taken at
// (the flush drops both). The write path would number the next batches
// from there; the direct path sees it and leaves the rest to recovery,
// which takes each batch's own sequence.
func TestReplayerBaseBehind(t *testing.T) {
	base := filepath.Join(t.TempDir(), "base")
	w := newWriter(t, base, 3600)
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	w.flush()
	w.write(func(wb *grocksdb.WriteBatch) {
		wb.Put([]byte("once"), []byte("1"))
		wb.SingleDelete([]byte("once"))
	})
	w.close()
	r, err := NewReplayer(base, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	at := r.Sequence()
	if err := r.Add(cfPutAt(0, r.Next())); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(at + 1); err != nil {
		failReplay(t, base, err)
	}
	if !r.behind {
		t.Fatal("the database did not open behind: the test shows nothing")
	}
	got, seq := dirDigest(t, base)
	if seq != at+1 || got["default"].Keys != 2 {
		t.Fatalf("reopened at %d with %+v, want %d and the keys a and k", seq, got, at+1)
	}
}
