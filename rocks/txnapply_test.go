package rocks

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/segments"
)

// TestApplyTransactions follows a TransactionDB as the archive and the
// standby do: WALTail reads its WAL, the batches go through segments of
// format version 2, and DB.Apply writes them into a copy that starts empty
// and is reopened at the sequence of a checkpoint of the writer taken while
// transactions were prepared (a base), learning those from the
// checkpoint's WAL copies. After every batch the copy's latest sequence is
// the writer's; at the end it holds exactly the writer's contents, no key
// of a rolled-back or still-prepared transaction.
func TestApplyTransactions(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 1))
	w := newTxnWriter(t, t.TempDir(), 3600)
	var names []string
	for i := range 120 {
		names = w.step(rng, names, i)
	}
	// Two prepares right before the base use no sequence: their batches
	// start at the base's sequence + 1, and so belong to the archive after
	// the base, though the base's WAL holds them too.
	names = append(names, w.prepare(rng), w.prepare(rng))
	base := filepath.Join(t.TempDir(), "base")
	baseSeq := w.checkpoint(base)
	for i := range 120 {
		names = w.step(rng, names, 120+i)
	}
	w.finish(rng, names)

	_, read := readTail(t, w.dir, 1)
	sameSpans(t, read, w.want)
	got := roundTrip(t, read)
	sameSpans(t, got, w.want)
	atBase := slices.IndexFunc(got, func(b Batch) bool { return b.Seq > baseSeq })
	var before Txns // what the batches up to the base leave prepared
	for _, b := range got[:atBase] {
		if _, err := before.Span(b.Data); err != nil {
			t.Fatal(err)
		}
	}
	openAtBase := slices.Sorted(slices.Values(before.Pending()))
	if len(openAtBase) == 0 || got[atBase].Count != 0 || got[atBase+1].Count != 0 {
		t.Fatalf("prepared at the base: %v, then batches of span %d, %d: want some, and the two prepares", openAtBase, got[atBase].Count, got[atBase+1].Count)
	}

	dir := filepath.Join(t.TempDir(), "copy")
	db := openCopy(t, dir, true)
	applyChecked(t, db, got[:atBase], w.gone)
	if latest := db.LatestSequence(); latest != baseSeq {
		t.Fatalf("copy at %d after the batches of the base, the checkpoint is at %d", latest, baseSeq)
	}
	db.Close()

	db = openCopy(t, dir, false)
	defer db.Close()
	rest := got[atBase:]
	// Without the base's prepared transactions, the first commit of one is
	// refused, and writes nothing.
	k := applyUntil(t, db, rest)
	if k == len(rest) {
		t.Fatal("no commit of a transaction prepared before the base")
	}
	prepared, err := PreparedIn(base, baseSeq)
	if err != nil {
		t.Fatal(err)
	}
	if p := slices.Sorted(slices.Values(prepared.Pending())); !slices.Equal(p, openAtBase) {
		t.Fatalf("prepared in the base's WAL: %v, want %v", p, openAtBase)
	}
	db.Prepared(prepared)
	applyChecked(t, db, rest[k:], w.gone)

	if diff := w.digest().Diff(mustDigest(t, db)); diff != "" {
		t.Fatalf("copy differs from the writer: %s", diff)
	}
	if latest := db.LatestSequence(); latest != w.seq() {
		t.Fatalf("copy at %d, writer at %d", latest, w.seq())
	}
	checkGone(t, db, w.gone)
	if p := db.PendingTransactions(); len(p) != 1 {
		t.Errorf("pending at the end: %v, want the one left prepared", p)
	}
}

// roundTrip writes batches into segments of the current format, 40 to a
// segment, and reads them back.
func roundTrip(t *testing.T, batches []Batch) []Batch {
	t.Helper()
	var out []Batch
	for start := 0; start < len(batches); start += 40 {
		chunk := batches[start:min(start+40, len(batches))]
		var buf bytes.Buffer
		sw, err := segments.NewWriter(&buf, segments.Header{Codec: segments.CodecZstd, Timeline: 1, FirstSeq: chunk[0].Seq}, segments.WriterOptions{BlockSize: 2048})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range chunk {
			if err := sw.Append(segments.Batch{Seq: b.Seq, Count: b.Count, Time: time.Now(), Data: b.Data}); err != nil {
				t.Fatalf("append seq %d: %v", b.Seq, err)
			}
		}
		if err := sw.Close(); err != nil {
			t.Fatal(err)
		}
		r, err := segments.NewReader(&buf, segments.ReaderOptions{})
		if err != nil || r.Header().Version != segments.Version {
			t.Fatalf("read segment: version %d, %v", r.Header().Version, err)
		}
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, Batch{Seq: b.Seq, Count: b.Count, Data: bytes.Clone(b.Data)})
		}
	}
	return out
}

func openCopy(t *testing.T, dir string, create bool) *DB {
	t.Helper()
	db, err := OpenWritable(dir, Options{CreateIfMissing: create, ColumnFamilies: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// applyChecked applies batches and checks the latest sequence after each,
// and that no key of never (the "cf/key" of transactions that never
// commit) is ever in db.
func applyChecked(t *testing.T, db *DB, batches []Batch, never ...map[string]bool) {
	t.Helper()
	for i, b := range batches {
		if err := db.Apply(b.Data); err != nil {
			t.Fatalf("apply batch %d (seq %d count %d): %v", i, b.Seq, b.Count, err)
		}
		if latest, want := db.LatestSequence(), b.Next()-1; latest != want {
			t.Fatalf("batch %d (seq %d count %d): latest seq %d, the writer's %d", i, b.Seq, b.Count, latest, want)
		}
		for _, gone := range never {
			checkGone(t, db, gone)
		}
	}
}

// applyUntil applies batches up to the first that Apply refuses with
// ErrNoPrepare and returns its index; len(batches) when none is.
func applyUntil(t *testing.T, db *DB, batches []Batch) int {
	t.Helper()
	for i, b := range batches {
		before := db.LatestSequence()
		err := db.Apply(b.Data)
		if errors.Is(err, ErrNoPrepare) {
			if db.LatestSequence() != before {
				t.Fatalf("a refused commit moved the sequence from %d to %d", before, db.LatestSequence())
			}
			return i
		}
		if err != nil {
			t.Fatalf("apply batch %d: %v", i, err)
		}
	}
	return len(batches)
}

func mustDigest(t *testing.T, db *DB) Digest {
	t.Helper()
	d, err := db.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// checkGone checks that no key of gone ("cf/key") is in db.
func checkGone(t *testing.T, db *DB, gone map[string]bool) {
	t.Helper()
	if len(gone) == 0 {
		t.Fatal("no rolled-back or prepared-only key to look for")
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	byName := map[string]*grocksdb.ColumnFamilyHandle{}
	for _, cf := range db.h.cfs {
		byName[cf.Name()] = cf
	}
	for k := range gone {
		cf, key, _ := strings.Cut(k, "/")
		v, err := db.h.db.GetCF(ro, byName[cf], []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if v.Exists() {
			t.Errorf("key %s of a transaction that never committed is in the copy", k)
		}
		v.Free()
	}
}
