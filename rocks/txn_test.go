package rocks

import (
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// readTail reads every batch that a WALTail over dir has from seq on, up to
// the live end, checking continuity.
func readTail(t *testing.T, dir string, seq uint64) (*WALTail, []Batch) {
	t.Helper()
	tail, err := NewWALTail(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tail.Close() })
	tail.now = jumpingClock(walFinishedEvery) // every wait lists
	if err := tail.Seek(seq); err != nil {
		t.Fatal(err)
	}
	var got []Batch
	for {
		b, ok, err := tail.Next()
		if err != nil {
			t.Fatalf("next after %d batches: %v", len(got), err)
		}
		if !ok {
			return tail, got
		}
		if n := len(got); n > 0 && b.Seq != got[n-1].Next() {
			t.Fatalf("batch %d starts at seq %d, want %d", n, b.Seq, got[n-1].Next())
		}
		got = append(got, b)
	}
}

// sameSpans compares the sequences and spans of batches with the writer's.
func sameSpans(t *testing.T, got, want []Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d batches, the writer wrote %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Count != want[i].Count {
			t.Fatalf("batch %d: seq %d count %d, the writer's: seq %d count %d", i, got[i].Seq, got[i].Count, want[i].Seq, want[i].Count)
		}
	}
}

// TestTxnsMatchTransactionDB checks the sequence accounting of Txns
// against a real TransactionDB: after each prepare, commit, rollback and
// plain write, the database's latest sequence is what Txns says the batch
// used, read back from the WAL by WALTail across WAL switches.
func TestTxnsMatchTransactionDB(t *testing.T) {
	w := newTxnWriter(t, t.TempDir(), 3600)
	w.workload(rand.New(rand.NewPCG(13, 1)), 300)
	_, got := readTail(t, w.dir, 1)
	sameSpans(t, got, w.want)
	t.Run("ldb", func(t *testing.T) { sameSpans(t, ldbSpans(t, w.dir), w.want) })
	var header, zero int
	for _, b := range got {
		if _, count, _ := batchHeader(b.Data); count != b.Count {
			header++
		}
		if b.Count == 0 {
			zero++
		}
	}
	// The test means something only if the header counts are wrong.
	if header < 50 || zero < 50 {
		t.Fatalf("%d batches whose header count is not their span, %d of span 0: the workload wrote too few transactions", header, zero)
	}
	var txns Txns
	for i, b := range got {
		if span, err := txns.Span(b.Data); err != nil || span != b.Count {
			t.Fatalf("batch %d: Txns.Span = %d, %v; want %d", i, span, err, b.Count)
		}
	}
	if p := txns.Pending(); len(p) != 1 {
		t.Errorf("pending at the end: %v, want the one left prepared", p)
	}
}

// TestWALTailSeekAfterPrepare seeks between a prepare and its commit, which
// are in different WAL files: WALTail reads the older file for the
// prepare, RocksDB having kept it for the prepare alone (no WAL_ttl).
func TestWALTailSeekAfterPrepare(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	w := newTxnWriter(t, t.TempDir(), 0)
	w.plain(rng)
	x := w.prepare(rng)
	w.plain(rng)
	w.flush()
	w.plain(rng)
	w.plain(rng)
	w.flush()
	from := len(w.want)
	w.plain(rng)
	w.commit(x)
	w.plain(rng)
	logs, err := walFiles(w.dir)
	if err != nil || len(logs) < 2 {
		t.Fatalf("wal files %v, %v: want the prepare's kept and the newest", logs, err)
	}
	tail, got := readTail(t, w.dir, w.want[from].Seq)
	sameSpans(t, got, w.want[from:])
	if !tail.txns.complete {
		t.Error("the commit was read without the older WAL files")
	}
	// Seeking where no transaction ends reads no older file.
	w.flush()
	w.plain(rng)
	tail, _ = readTail(t, w.dir, w.want[len(w.want)-1].Seq)
	if tail.txns.complete {
		t.Error("older WAL files read with no commit to resolve")
	}
}

// TestWALTailCommitWithoutPrepare: a commit whose prepare is in no WAL file
// left is a gap, not a guess.
func TestWALTailCommitWithoutPrepare(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	w := newTxnWriter(t, t.TempDir(), 0)
	x := w.prepare(rng)
	w.plain(rng)
	w.flush()
	w.plain(rng)
	w.commit(x)
	older, _ := walFiles(w.dir)
	if len(older) < 2 {
		t.Fatalf("wal files %v: want the prepare's and the newest", older)
	}
	if err := os.Remove(older[0]); err != nil { // as a WAL_ttl expiry would
		t.Fatal(err)
	}
	tail, err := NewWALTail(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	tail.now = jumpingClock(walFinishedEvery)
	tail.Seek(w.want[2].Seq)
	_, _, err = tail.Next()
	if err == nil {
		_, _, err = tail.Next()
	}
	if !errors.Is(err, ErrGap) || !errors.Is(err, ErrNoPrepare) {
		t.Fatalf("next: %v, want ErrGap and ErrNoPrepare", err)
	}
}

// BenchmarkTxnsSpan measures what WALTail now spends per batch to find
// its span: batches of 4 puts of 16-byte keys and 100-byte values.
func BenchmarkTxnsSpan(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := testBatch(rng, 1, 4, 12+4*(3+16+2+100))
	var txns Txns
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := txns.Span(data); err != nil {
			b.Fatal(err)
		}
	}
}

// ldbSpans reads every WAL file of dir (and archive/) with `ldb dump_wal`,
// a reader independent of this package, and works out each batch's span
// from its listing with the rule of txn.go: the data operations outside
// BEGIN_PREPARE..END_PREPARE, plus at each COMMIT those of its prepare.
func ldbSpans(t *testing.T, dir string) []Batch {
	t.Helper()
	ldb := requireTool(t, "ldb")
	var paths []string
	for _, d := range []string{filepath.Join(dir, "archive"), dir} {
		ps, err := walFiles(d)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		paths = append(paths, ps...)
	}
	slices.SortFunc(paths, func(a, b string) int {
		na, _ := walNumber(filepath.Base(a))
		nb, _ := walNumber(filepath.Base(b))
		return cmpUint(na, nb)
	})
	prepared := map[string]uint32{}
	var out []Batch
	for _, path := range paths {
		dump, err := exec.Command(ldb, "dump_wal", "--walfile="+path).Output()
		if err != nil {
			t.Fatalf("ldb dump_wal %s: %v", path, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(dump)), "\n") {
			f := strings.SplitN(line, ",", 5)
			if len(f) < 5 {
				continue // an empty file
			}
			seq, _ := strconv.ParseUint(f[0], 10, 64)
			out = append(out, Batch{Seq: seq, Count: ldbSpan(t, f[4], prepared)})
		}
	}
	return out
}

func ldbSpan(t *testing.T, ops string, prepared map[string]uint32) uint32 {
	var span, section uint32
	in := false
	for _, tok := range strings.Fields(ops) {
		name, arg, _ := strings.Cut(strings.TrimSuffix(tok, ")"), "(")
		switch name {
		case "PUT", "DELETE", "SINGLE_DELETE", "DELETE_RANGE", "MERGE":
			if in {
				section++
			} else {
				span++
			}
		case "BEGIN_PREPARE":
			in, section = true, 0
		case "END_PREPARE":
			in, prepared[arg] = false, section
		case "COMMIT":
			n, ok := prepared[arg]
			if !ok {
				t.Fatalf("ldb dump_wal: commit of %s without its prepare", arg)
			}
			span += n
			delete(prepared, arg)
		case "ROLLBACK":
			delete(prepared, arg)
		}
	}
	return span
}
