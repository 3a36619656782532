package rocks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/segments"
)

// primary returns a Primary over w's database, closed before w is.
func primary(t testing.TB, w *writer) *Primary {
	t.Helper()
	p, err := NewPrimary(w.db, w.dir)
	if err != nil {
		t.Fatalf("new primary: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// writeLogged writes n random batches through the program's handle and
// appends them to log as they must come back from the WAL.
func writeLogged(w *writer, rng *rand.Rand, n int, log []Batch) []Batch {
	w.t.Helper()
	for range n {
		log = writeOne(w, log, func(wb *grocksdb.WriteBatch) {
			for range 1 + rng.IntN(4) {
				addRandomOp(wb, rng, w.list[rng.IntN(len(w.list))])
			}
		})
	}
	return log
}

// writeOne writes the batch that fill builds and appends it to log.
func writeOne(w *writer, log []Batch, fill func(wb *grocksdb.WriteBatch)) []Batch {
	w.t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	fill(wb)
	before := w.latest()
	if err := w.db.Write(w.wo, wb); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	return append(log, Batch{Seq: before + 1, Count: uint32(w.latest() - before), Data: slices.Clone(wb.Data())})
}

// readSource reads a Source until it has no batch, checking that each batch
// starts where the previous one ended.
func readSource(t *testing.T, src archive.Source, got []Batch) []Batch {
	t.Helper()
	for {
		b, ok, err := src.Next()
		if err != nil {
			t.Fatalf("next after %d batches: %v", len(got), err)
		}
		if !ok {
			return got
		}
		if n := len(got); n > 0 && b.Seq != got[n-1].Next() {
			t.Fatalf("batch %d starts at seq %d, want %d", n, b.Seq, got[n-1].Next())
		}
		got = append(got, Batch{Seq: b.Seq, Count: b.Count, Data: b.Data})
	}
}

func sameWAL(t *testing.T, got, want []Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d batches, wrote %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Count != want[i].Count || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("batch %d: read seq %d count %d (%d bytes), wrote seq %d count %d (%d bytes)",
				i, got[i].Seq, got[i].Count, len(got[i].Data), want[i].Seq, want[i].Count, len(want[i].Data))
		}
	}
}

// TestPrimarySource writes through the program's handle (multi-operation
// batches over three column families, deletes, a flush in the middle) and
// reads the batches back through the Primary as the archiver does,
// interleaved with the writes.
func TestPrimarySource(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a", "b")
	var src archive.Source = primary(t, w)
	if id, err := src.Identity(); err != nil || id != mustIdentity(t, w.dir) {
		t.Fatalf("identity %q, %v", id, err)
	}
	want := writeLogged(w, rng, 30, nil)
	if err := src.Seek(1); err != nil {
		t.Fatal(err)
	}
	got := readSource(t, src, nil)
	for i := range 20 { // one batch at a time: the iterator reads on in the live WAL file
		if i == 10 {
			w.flush() // the WAL moves to archive/, a new one starts
		}
		want = writeLogged(w, rng, 1, want)
		if got = readSource(t, src, got); len(got) != len(want) {
			t.Fatalf("after write %d: read %d batches, wrote %d", i, len(got), len(want))
		}
	}
	want = writeOne(w, want, func(wb *grocksdb.WriteBatch) { // three column families in one batch
		wb.PutCF(w.cfs["default"], []byte("k"), []byte("v"))
		wb.DeleteCF(w.cfs["a"], []byte("key0001"))
		wb.DeleteRangeCF(w.cfs["b"], []byte("key0000"), []byte("key0100"))
	})
	if want[len(want)-1].Count != 3 {
		t.Fatalf("the three-family batch counts %d sequences", want[len(want)-1].Count)
	}
	w.flush()
	want = writeLogged(w, rng, 30, want)
	if err := src.Refresh(); err != nil {
		t.Fatal(err)
	}
	got = readSource(t, src, got)
	sameWAL(t, got, want)
	if end := got[len(got)-1].Next() - 1; end != w.latest() {
		t.Fatalf("read up to seq %d, the database is at %d", end, w.latest())
	}
}

func mustIdentity(t testing.TB, dir string) string {
	t.Helper()
	id, err := ReadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPrimarySeek seeks to batch boundaries, to the middle of a batch and
// past the end.
func TestPrimarySeek(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	threeOps := func(wb *grocksdb.WriteBatch) {
		wb.Put([]byte("x"), []byte("1"))
		wb.Put([]byte("y"), []byte("2"))
		wb.Delete([]byte("z"))
	}
	for range 4 {
		w.write(threeOps) // seq 1-3, 4-6, 7-9, 10-12
	}
	p := primary(t, w)
	for _, c := range []struct {
		seek uint64
		want []uint64
	}{{7, []uint64{7, 10}}, {0, []uint64{1, 4, 7, 10}}, {10, []uint64{10}}, {13, nil}} {
		if err := p.Seek(c.seek); err != nil {
			t.Fatal(err)
		}
		var starts []uint64
		for _, b := range readSource(t, p, nil) {
			starts = append(starts, b.Seq)
		}
		if !slices.Equal(starts, c.want) {
			t.Fatalf("seek %d: batches at %v, want %v", c.seek, starts, c.want)
		}
	}
	w.write(threeOps) // 13-15: seen after the seek past the end
	if b, ok, err := p.Next(); err != nil || !ok || b.Seq != 13 || b.Count != 3 {
		t.Fatalf("after a seek to 13 and a write: %+v %v %v", b, ok, err)
	}

	if err := p.Seek(5); err != nil {
		t.Fatal(err)
	}
	_, ok, err := p.Next()
	if err == nil || ok || errors.Is(err, ErrGap) || errors.Is(err, archive.ErrGap) {
		t.Fatalf("seek inside the batch at 4: ok %v, err %v; want an error that is not a gap", ok, err)
	}
	t.Log(err)
}

// TestPrimaryGap: without WAL retention a flush deletes the WAL; reading
// from before it is a gap that matches both rocks.ErrGap and
// archive.ErrGap, also when no WAL is left at all.
func TestPrimaryGap(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 0, "a")
	w.writeRandom(rng, 10)
	w.flush()
	gone := w.latest()
	w.writeRandom(rng, 10)
	p := primary(t, w)

	checkGap := func(from, got uint64) {
		t.Helper()
		if err := p.Seek(from); err != nil {
			t.Fatal(err)
		}
		_, ok, err := p.Next()
		var gap *GapError
		if ok || !errors.Is(err, ErrGap) || !errors.Is(err, archive.ErrGap) || !errors.As(err, &gap) ||
			gap.Expected != from || gap.Got != got {
			t.Fatalf("from %d: ok %v, err %v; want a gap (rocks and archive) expecting %d, finding %d", from, ok, err, from, got)
		}
		t.Log(err)
	}
	checkGap(1, gone+1)
	if err := p.Seek(gone + 1); err != nil { // what the archiver does after a new base
		t.Fatal(err)
	}
	if got := readSource(t, p, nil); len(got) != 10 || got[9].Next() != w.latest()+1 {
		t.Fatalf("after the gap: %v, want 10 batches up to %d", seqs(got), w.latest())
	}
	w.flush() // no WAL left that holds a batch
	checkGap(gone+1, 0)
}

// TestPrimaryCheckpoint checks the sequence of a checkpoint against the
// checkpoint opened on its own and its content against the database, and
// that it holds the database's IDENTITY and newest OPTIONS file.
func TestPrimaryCheckpoint(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a")
	w.writeRandom(rng, 100)
	w.flush()
	w.writeRandom(rng, 50) // in the WAL and the memtables only
	p := primary(t, w)

	cp := filepath.Join(t.TempDir(), "cp")
	seq, err := p.Checkpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	if seq != w.latest() {
		t.Fatalf("checkpoint at seq %d, database at %d", seq, w.latest())
	}
	if got := digestDir(t, cp); got.Diff(liveDigest(t, w)) != "" {
		t.Fatalf("checkpoint differs from the database: %s", got.Diff(liveDigest(t, w)))
	}
	db, err := OpenReadOnly(cp)
	if err != nil {
		t.Fatal(err)
	}
	if db.LatestSequence() != seq {
		t.Fatalf("checkpoint opened on its own at seq %d, Checkpoint said %d", db.LatestSequence(), seq)
	}
	db.Close()
	sameFile(t, filepath.Join(w.dir, "IDENTITY"), filepath.Join(cp, "IDENTITY"))
	opts, err := newestOptionsFile(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	sameFile(t, opts, filepath.Join(cp, filepath.Base(opts)))

	if _, err := p.Checkpoint(cp); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("checkpoint into an existing directory: %v, want fs.ErrExist", err)
	}
	w.writeRandom(rng, 5) // the program's handle is still open and writable
}

// TestPrimaryCheckpointUnloggedWrites: RocksDB's checkpoint without a flush
// leaves out the writes made without the WAL. Followed by logged writes, it
// opens at the database's sequence all the same, silently; at the tail, it
// opens behind the database. Checkpoint finds both in the WAL and takes the
// checkpoint again with a flush.
func TestPrimaryCheckpointUnloggedWrites(t *testing.T) {
	for _, c := range []struct {
		name        string
		loggedAfter int
		rawAtLatest bool
	}{{"middle", 5, true}, {"tail", 0, false}} {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(47, 48))
			w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a")
			w.writeRandom(rng, 20)
			writeFixed(w, 5, false, false)
			writeFixed(w, c.loggedAfter, true, false) // no Put and SingleDelete last: see below
			p := primary(t, w)
			want := liveDigest(t, w)

			raw := rawCheckpoint(t, w, math.MaxUint64)
			rawDigest, rawSeq := digestDir(t, raw), readOnlySeq(t, raw)
			if rawDigest.Diff(want) == "" || (rawSeq == w.latest()) != c.rawAtLatest {
				t.Fatalf("rocksdb's checkpoint without a flush: seq %d (database at %d), %q; the test no longer shows the loss",
					rawSeq, w.latest(), rawDigest.Diff(want))
			}
			t.Logf("without a flush: seq %d of %d, %s", rawSeq, w.latest(), rawDigest.Diff(want))

			cp := filepath.Join(t.TempDir(), "cp")
			seq, err := p.Checkpoint(cp)
			if err != nil {
				t.Fatal(err)
			}
			if d := digestDir(t, cp).Diff(want); d != "" || seq != w.latest() || readOnlySeq(t, cp) != seq {
				t.Fatalf("checkpoint at seq %d (database at %d): %s", seq, w.latest(), d)
			}
		})
	}
}

// TestPrimaryCheckpointUnloggedDroppedTail: writes without the WAL at the
// tail, the last of which a flush drops (a Put and its SingleDelete). Even
// flushed, the checkpoint opens before them, and the WAL has no batch after
// it: Checkpoint fails, rather than give a base after which the archiver
// would find the same gap again and again.
func TestPrimaryCheckpointUnloggedDroppedTail(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	writeFixed(w, 2, false, true)
	p := primary(t, w)
	if _, err := p.Checkpoint(filepath.Join(t.TempDir(), "cp")); err == nil {
		t.Fatal("checkpoint that ends before writes made without the WAL: no error")
	} else {
		t.Log(err)
	}
}

// writeFixed writes n batches of a Put and a Delete, with the WAL or
// without, the last one ending in a Put and its SingleDelete if asked.
func writeFixed(w *writer, n int, logged, droppedPair bool) {
	w.t.Helper()
	w.wo.DisableWAL(!logged)
	defer w.wo.DisableWAL(false)
	for i := range n {
		w.write(func(wb *grocksdb.WriteBatch) {
			wb.PutCF(w.list[i%len(w.list)], fmt.Appendf(nil, "fixed%d", w.latest()), []byte("1"))
			wb.DeleteCF(w.list[0], fmt.Appendf(nil, "key%04d", i))
			if droppedPair && i == n-1 {
				wb.Put([]byte("once"), []byte("1"))
				wb.SingleDelete([]byte("once"))
			}
		})
	}
}

// rawCheckpoint takes RocksDB's own checkpoint of w's database.
func rawCheckpoint(t *testing.T, w *writer, walSizeForFlush uint64) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "raw")
	cp, err := w.db.NewCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	defer cp.Destroy()
	if err := cp.CreateCheckpoint(dir, walSizeForFlush); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestPrimaryCheckpointDroppedEntries: a flush drops a Put and its
// SingleDelete, and a checkpoint opens at the last sequence that survived,
// inside the batch that held the pair, when the WAL after the flush is
// empty. Without a flush (Checkpoint's first try) the WAL replayed on open
// gives the database's sequence.
func TestPrimaryCheckpointDroppedEntries(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	last := w.write(func(wb *grocksdb.WriteBatch) { // seq 2-4
		wb.Put([]byte("b"), []byte("1"))
		wb.Put([]byte("once"), []byte("1"))
		wb.SingleDelete([]byte("once"))
	})
	p := primary(t, w)
	seq, err := p.Checkpoint(filepath.Join(t.TempDir(), "cp"))
	if err != nil || seq != last {
		t.Fatalf("checkpoint at %d, %v; want %d", seq, err, last)
	}
	if got := readOnlySeq(t, rawCheckpoint(t, w, 0)); got != 2 { // flushes the database
		t.Fatalf("checkpoint with a flush at seq %d, want 2 (inside the batch 2-4): the test no longer shows it", got)
	}
}

func readOnlySeq(t *testing.T, dir string) uint64 {
	t.Helper()
	db, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	return db.LatestSequence()
}

// TestPrimaryEmptyDeleteRange pins what an empty range deletion (begin ==
// end) does on a primary: the program's handle counts its sequence, so
// reading that batch as the last one is safe (unlike on a follower, see
// TestEmptyDeleteRange); but the flushed memtable does not, so a
// checkpoint taken while it is the last batch ends one sequence short, in
// the middle of that batch. The Source then refuses to start there, with an
// error that is not a gap: the archiver stops instead of recording a hole
// that no new base would close.
func TestPrimaryEmptyDeleteRange(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	p := primary(t, w)
	last := w.write(func(wb *grocksdb.WriteBatch) { // seq 2-4
		wb.Put([]byte("b"), []byte("1"))
		wb.DeleteRange([]byte("k"), []byte("k"))
		wb.Put([]byte("c"), []byte("1"))
	})
	if err := p.Seek(1); err != nil {
		t.Fatal(err)
	}
	if got := readSource(t, p, nil); len(got) != 2 || got[1].Next() != last+1 || last != 4 {
		t.Fatalf("read %v, the database is at %d; want (1,1) and (2,3) up to 4", seqs(got), last)
	}
	seq, err := p.Checkpoint(filepath.Join(t.TempDir(), "cp"))
	if err != nil || seq != last-1 {
		t.Fatalf("checkpoint at %d, %v; want %d, one short of the database's %d", seq, err, last-1, last)
	}
	if err := p.Seek(seq + 1); err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Next(); err == nil || errors.Is(err, archive.ErrGap) {
		t.Fatalf("seek to %d, inside the batch at 2: %v; want an error that is not a gap", seq+1, err)
	}
}

// liveDigest digests the program's open database (no writes meanwhile).
func liveDigest(t *testing.T, w *writer) Digest {
	t.Helper()
	d, err := (&handle{dir: w.dir, db: w.db, cfs: w.list}).digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func sameFile(t *testing.T, want, got string) {
	t.Helper()
	a, err := os.ReadFile(want)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got)
	if err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	if !bytes.Equal(a, b) {
		t.Fatalf("%s differs from %s", got, want)
	}
}

// TestCopyDBMeta copies IDENTITY and the newest OPTIONS file, skipping
// RocksDB's temporary OPTIONS file and files that the checkpoint has.
func TestCopyDBMeta(t *testing.T) {
	src, cp := t.TempDir(), t.TempDir()
	files := map[string]string{"IDENTITY": "id-1\n", "OPTIONS-000005": "old", "OPTIONS-000012": "new",
		"OPTIONS-000009": "mid", "OPTIONS-000013.dbtmp": "being written", "CURRENT": "MANIFEST-000004\n"}
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(src, n), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(cp, "CURRENT"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := copyDBMeta(src, cp); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(cp)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"CURRENT", "IDENTITY", "OPTIONS-000012"}) {
		t.Fatalf("checkpoint holds %v", names)
	}
	sameFile(t, filepath.Join(src, "IDENTITY"), filepath.Join(cp, "IDENTITY"))
	sameFile(t, filepath.Join(src, "OPTIONS-000012"), filepath.Join(cp, "OPTIONS-000012"))
	if b, _ := os.ReadFile(filepath.Join(cp, "CURRENT")); string(b) != "mine" {
		t.Fatal("a file the checkpoint had was replaced")
	}
	if err := copyDBMeta(t.TempDir(), cp); err == nil {
		t.Fatal("copy from a directory without IDENTITY: no error")
	}
}

// TestPrimaryClose: closing the Primary releases its iterators and leaves
// the program's database open.
func TestPrimaryClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.writeRandom(rng, 5)
	p := primary(t, w)
	u, err := p.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Seek(1); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := u.Next(); !ok || err != nil {
		t.Fatalf("updates: %v %v", ok, err)
	}
	if _, ok, err := p.Next(); !ok || err != nil {
		t.Fatalf("source: %v %v", ok, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("updates after close: %v, want ErrClosed", err)
	}
	if _, _, err := p.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("source after close: %v, want ErrClosed", err)
	}
	if _, err := p.Checkpoint(filepath.Join(t.TempDir(), "cp")); !errors.Is(err, ErrClosed) {
		t.Fatalf("checkpoint after close: %v, want ErrClosed", err)
	}
	if err := p.Seek(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("seek after close: %v, want ErrClosed", err)
	}
	u.Close()
	if p.LatestSequence() != 0 || p.Close() != nil {
		t.Fatal("closed primary: want seq 0 and a harmless second Close")
	}
	before := w.latest()
	if w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("after"), []byte("close")) }) != before+1 {
		t.Fatal("the program's database did not take a write after the Primary closed")
	}
}

func TestNewPrimaryChecks(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	other := newWriter(t, filepath.Join(t.TempDir(), "other"), 3600)
	if _, err := NewPrimary(nil, w.dir); err == nil {
		t.Fatal("nil handle: no error")
	}
	if _, err := NewPrimary(w.db, other.dir); err == nil {
		t.Fatal("the directory of another database: no error")
	}
	if _, err := NewPrimary(w.db, t.TempDir()); !errors.Is(err, ErrNotDatabase) {
		t.Fatalf("a directory without a database: %v, want ErrNotDatabase", err)
	}
	p, err := NewPrimary(w.db, w.dir+"/.")
	if err != nil {
		t.Fatalf("another spelling of the directory: %v", err)
	}
	p.Close()
}

// TestPrimaryUpdatesWhileWriting reads the WAL of the program's handle
// while another goroutine writes to it, across flushes, then replays it
// into a new database and compares.
func TestPrimaryUpdatesWhileWriting(t *testing.T) {
	const batches, flushEvery, round = 4000, 700, 40
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a", "b")
	p := primary(t, w)
	u, err := p.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var read atomic.Uint64
	done := make(chan error, 1)
	go func() { done <- writeConcurrently(w, batches, flushEvery, round, &read) }()
	var got []Batch
	for writerDone := false; !writerDone || len(got) < batches; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			writerDone = true
		case <-time.After(time.Millisecond):
		}
		if got = drain(t, u, got); len(got) > 0 {
			read.Store(got[len(got)-1].Next() - 1)
		}
		if writerDone && len(got) < batches {
			t.Fatalf("the writer is done, read %d batches of %d", len(got), batches)
		}
	}
	if got[0].Seq != 1 || got[len(got)-1].Next() != w.latest()+1 {
		t.Fatalf("read seq %d to %d, want 1 to %d", got[0].Seq, got[len(got)-1].Next()-1, w.latest())
	}
	t.Logf("%d batches; %d wal iterators created for %d wal files", len(got), u.opened, batches/flushEvery+1)
	copyDir := filepath.Join(t.TempDir(), "copy")
	applyAll(t, copyDir, got, Options{CreateIfMissing: true, ColumnFamilies: []string{"a", "b"}})
	if d := digestDir(t, copyDir).Diff(liveDigest(t, w)); d != "" {
		t.Fatalf("replayed copy differs: %s", d)
	}
}

// TestPrimaryArchive runs the real archiver over a Primary into a file://
// store while another goroutine writes 5,000 batches through the same
// handle, with flushes, and bases taken during the writes. Then it restores
// by hand: the first base's files from the store, plus every archived
// batch, must equal the database.
func TestPrimaryArchive(t *testing.T) {
	const batches, flushEvery, round = 5000, 1000, 100
	rng := rand.New(rand.NewPCG(51, 52))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a", "b")
	w.writeRandom(rng, 200)
	p := primary(t, w)
	store, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.New(p, store, archive.Options{
		WriterID: "test", WorkDir: t.TempDir(),
		SegmentSize: 32 << 10, SegmentAge: 20 * time.Millisecond, Poll: 2 * time.Millisecond,
		BaseWALBytes: 200 << 10, FenceCheck: 100 * time.Millisecond, RetryMax: 50 * time.Millisecond,
		DrainTimeout: 20 * time.Second, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- a.Run(ctx) }()

	var read atomic.Uint64
	wrote := make(chan error, 1)
	go func() { wrote <- writeConcurrently(w, batches, flushEvery, round, &read) }()
	deadline := time.Now().Add(60 * time.Second)
	for writerDone := false; !writerDone || a.Stats().LastSequence < w.latest(); {
		select {
		case err := <-wrote:
			if err != nil {
				t.Fatal(err)
			}
			writerDone = true
		case err := <-ran:
			t.Fatalf("the archiver stopped by itself: %v", err)
		case <-time.After(time.Millisecond):
		}
		read.Store(a.Stats().LastSequence)
		if time.Now().After(deadline) {
			t.Fatalf("the archive is at seq %d, the database at %d", a.Stats().LastSequence, w.latest())
		}
	}
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("run: %v", err)
	}
	st := a.Stats()
	t.Logf("stats: %+v", st)
	if st.Bases < 2 || st.Holes != 0 {
		t.Fatalf("%d bases and %d holes; want bases during the writes and no hole", st.Bases, st.Holes)
	}

	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	base := m.Bases[0]
	for _, b := range m.Bases {
		if b.Sequence < base.Sequence {
			base = b
		}
	}
	got := archivedBatches(t, store, m, a.Timeline())
	if len(got) == 0 || got[0].Seq != base.Sequence+1 || got[len(got)-1].Next() != w.latest()+1 {
		t.Fatalf("archived seq %v..., want from %d (after the first base) to %d", seqs(got[:min(3, len(got))]), base.Sequence+1, w.latest())
	}
	u, err := p.Updates(base.Sequence + 1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	sameWAL(t, got, drain(t, u, nil))

	restored := fetchBase(t, store, m, base)
	sameFile(t, filepath.Join(w.dir, "IDENTITY"), filepath.Join(restored, "IDENTITY"))
	applyAll(t, restored, got, Options{})
	if d := digestDir(t, restored).Diff(liveDigest(t, w)); d != "" {
		t.Fatalf("base + archived batches differ from the database: %s", d)
	}
	t.Logf("base at seq %d + %d archived batches = the database at seq %d", base.Sequence, len(got), w.latest())
}

// archivedBatches reads every batch of a timeline's segments, in order,
// checking continuity from segment to segment.
func archivedBatches(t *testing.T, s objstore.Store, m *manifest.Manifest, tl uint32) []Batch {
	t.Helper()
	ctx := context.Background()
	segs, err := catalog.Timeline(ctx, s, m, tl)
	if err != nil {
		t.Fatal(err)
	}
	var out []Batch
	for _, sg := range segs {
		rc, _, err := s.Get(ctx, sg.Key, objstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := segments.NewReader(rc, segments.ReaderOptions{})
		if err != nil {
			t.Fatalf("segment %s: %v", sg.Key, err)
		}
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("segment %s: %v", sg.Key, err)
			}
			if n := len(out); n > 0 && b.Seq != out[n-1].Next() {
				t.Fatalf("segment %s: batch at seq %d, want %d", sg.Key, b.Seq, out[n-1].Next())
			}
			out = append(out, Batch{Seq: b.Seq, Count: b.Count, Data: bytes.Clone(b.Data)})
		}
		rc.Close()
	}
	return out
}

// fetchBase downloads the files of a base into a new directory.
func fetchBase(t *testing.T, s objstore.Store, m *manifest.Manifest, b manifest.Base) string {
	t.Helper()
	ctx := context.Background()
	fl, err := manifest.LoadFileList(ctx, s, m, b)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "base")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range fl.Files {
		rc, _, err := s.Get(ctx, f.Key, objstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.Name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if fl.Options == "" {
		t.Fatalf("base at %d: no OPTIONS file in its file list", b.Sequence)
	}
	return dir
}
