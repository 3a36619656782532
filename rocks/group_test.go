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
