package rocks

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// TestFollowCheckpointApply follows a database written in this process,
// checkpoints it, applies the WAL after the checkpoint to the checkpoint,
// and compares the copy with the source.
func TestFollowCheckpointApply(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := filepath.Join(t.TempDir(), "src")
	w := newWriter(t, src, 3600, "a", "b")
	w.writeRandom(rng, 100)
	f := follow(t, src)

	w.writeRandom(rng, 50) // not yet caught up: the checkpoint copies the WAL
	cp := filepath.Join(t.TempDir(), "cp")
	cpSeq, err := f.Checkpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	checkCheckpointSeq(t, f, cp, cpSeq, w.latest())

	w.writeRandom(rng, 100)
	w.flush() // the WAL moves to archive/
	w.writeRandom(rng, 100)
	if err := f.CatchUp(); err != nil {
		t.Fatal(err)
	}
	if got, want := f.LatestSequence(), w.latest(); got != want {
		t.Fatalf("follower at seq %d after catch-up, writer at %d", got, want)
	}
	if _, err := os.Stat(filepath.Join(src, "archive")); err != nil {
		t.Fatalf("no archive/ after a flush with WAL_ttl_seconds: %v", err)
	}
	checkWholeWAL(t, f)

	u, err := f.Updates(cpSeq + 1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	batches := drain(t, u, nil)
	if len(batches) == 0 || batches[0].Seq != cpSeq+1 {
		t.Fatalf("first batch after the checkpoint: %+v, want seq %d", batches[:min(1, len(batches))], cpSeq+1)
	}
	applyAll(t, cp, batches, Options{})
	compareDigests(t, f, cp)
	w.close()
	compareWithLdb(t, src, cp, []string{"default", "a", "b"})
}

// checkCheckpointSeq checks the sequence that Checkpoint returned against
// the follower's (not ahead) and the checkpoint opened on its own (equal).
func checkCheckpointSeq(t *testing.T, f *Follower, cp string, cpSeq, writerSeq uint64) {
	t.Helper()
	if fs := f.LatestSequence(); cpSeq < fs {
		t.Fatalf("checkpoint seq %d behind the follower's %d", cpSeq, fs)
	}
	db, err := OpenReadOnly(cp)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got := db.LatestSequence(); got != cpSeq {
		t.Fatalf("checkpoint opened on its own at seq %d, Checkpoint said %d", got, cpSeq)
	}
	t.Logf("checkpoint seq %d, follower seq %d, writer seq %d", cpSeq, f.LatestSequence(), writerSeq)
	if cpSeq != writerSeq {
		t.Fatalf("checkpoint seq %d, want the writer's %d (live WAL copied)", cpSeq, writerSeq)
	}
	files, err := CheckpointFiles(cp)
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(files))
	for i, fl := range files {
		names[i] = fl.Name
		if fl.Size <= 0 && fl.Name != "CURRENT" {
			t.Errorf("checkpoint file %s has size %d", fl.Name, fl.Size)
		}
	}
	t.Logf("checkpoint files: %v", names)
	if !strings.Contains(strings.Join(names, " "), "MANIFEST-") || names[0] != "CURRENT" && !hasName(names, "CURRENT") {
		t.Fatalf("checkpoint files %v lack CURRENT or MANIFEST", names)
	}
}

func hasName(names []string, n string) bool {
	for _, m := range names {
		if m == n {
			return true
		}
	}
	return false
}

// checkWholeWAL reads the retained WAL from sequence 1 to the end.
func checkWholeWAL(t *testing.T, f *Follower) {
	t.Helper()
	u, err := f.Updates(0)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	all := drain(t, u, nil)
	if len(all) == 0 || all[0].Seq != 1 || all[len(all)-1].Next() != f.LatestSequence()+1 {
		t.Fatalf("whole wal: %d batches, want seq 1 to %d", len(all), f.LatestSequence())
	}
}

// applyAll applies batches to the database in dir, checking the sequence
// after each batch.
func applyAll(t testing.TB, dir string, batches []Batch, opts Options) {
	t.Helper()
	db, err := OpenWritable(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range batches {
		if err := db.Apply(b.Data); err != nil {
			t.Fatalf("apply batch %d (seq %d): %v", i, b.Seq, err)
		}
		if got, want := db.LatestSequence(), b.Next()-1; got != want {
			t.Fatalf("after batch %d: latest seq %d, want %d", i, got, want)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// compareDigests compares the follower's state with the database in dir.
func compareDigests(t *testing.T, f *Follower, dir string) {
	t.Helper()
	want, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	db, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got, err := db.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Diff(want); d != "" {
		t.Fatalf("copy differs from the source: %s", d)
	}
	if db.LatestSequence() != f.LatestSequence() {
		t.Fatalf("copy at seq %d, source at %d", db.LatestSequence(), f.LatestSequence())
	}
	t.Logf("digest equal over %d column families, seq %d", len(got), db.LatestSequence())
}

func TestUpdatesFromInsideBatch(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	threeOps := func(wb *grocksdb.WriteBatch) {
		wb.Put([]byte("x"), []byte("1"))
		wb.Put([]byte("y"), []byte("2"))
		wb.Delete([]byte("z"))
	}
	w.write(threeOps) // seq 1-3
	w.write(threeOps) // seq 4-6
	w.write(threeOps) // seq 7-9
	f := follow(t, w.dir)
	u, err := f.Updates(5)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got := drain(t, u, nil)
	if len(got) != 2 || got[0].Seq != 4 || got[0].Count != 3 || got[1].Seq != 7 {
		t.Fatalf("from seq 5: got %+v, want the batch at 4 (count 3), then 7", seqs(got))
	}
}

func seqs(bs []Batch) [][2]uint64 {
	out := make([][2]uint64, len(bs))
	for i, b := range bs {
		out[i] = [2]uint64{b.Seq, uint64(b.Count)}
	}
	return out
}

// TestUpdatesGapWithoutRetention: with no WAL retention a flush deletes the
// WAL; RocksDB then starts at a later batch, which must be a gap.
func TestUpdatesGapWithoutRetention(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 0, "a")
	w.writeRandom(rng, 10)
	w.flush()
	gone := w.latest()
	w.writeRandom(rng, 10)
	f := follow(t, w.dir)
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, _, err = u.Next()
	var gap *GapError
	if !errors.As(err, &gap) || !errors.Is(err, ErrGap) || gap.Expected != 1 || gap.Got != gone+1 {
		t.Fatalf("got %v, want a gap: expected 1, got %d", err, gone+1)
	}
	if _, _, again := u.Next(); !errors.Is(again, ErrGap) {
		t.Fatalf("second Next: %v, want the same gap", again)
	}
	t.Log(err)
}

// TestUpdatesGapDisableWAL: batches written with disableWAL are missing from
// the WAL; the reader must stop at them, not skip them.
func TestUpdatesGapDisableWAL(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.writeRandom(rng, 5)
	before := w.latest()
	w.wo.DisableWAL(true)
	w.writeRandom(rng, 5)
	w.wo.DisableWAL(false)
	after := w.latest()
	w.writeRandom(rng, 5)
	f := follow(t, w.dir)
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var got []Batch
	for {
		b, ok, err := u.Next()
		if err != nil {
			var gap *GapError
			if !errors.As(err, &gap) || gap.Expected != before+1 || gap.Got != after+1 {
				t.Fatalf("after %d batches: %v, want a gap: expected %d, got %d", len(got), err, before+1, after+1)
			}
			t.Log(err)
			break
		}
		if !ok {
			t.Fatalf("read %d batches to the end without a gap: %v", len(got), seqs(got))
		}
		got = append(got, b)
	}
	if len(got) != 5 || got[4].Next() != before+1 {
		t.Fatalf("before the gap: %v, want 5 batches up to seq %d", seqs(got), before)
	}
}

// TestUpdatesGapAtTail: the WAL ends before a sequence that the database
// has (written without the WAL, then flushed).
func TestUpdatesGapAtTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.writeRandom(rng, 5)
	before := w.latest()
	w.wo.DisableWAL(true)
	w.writeRandom(rng, 5)
	w.flush()
	f := follow(t, w.dir)
	if f.LatestSequence() != w.latest() {
		t.Fatalf("follower at %d, writer at %d", f.LatestSequence(), w.latest())
	}
	u, err := f.Updates(before + 1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	_, _, err = u.Next()
	var gap *GapError
	if !errors.As(err, &gap) || gap.Expected != before+1 || gap.Got != 0 {
		t.Fatalf("got %v, want a gap at %d with no batch", err, before+1)
	}
	t.Log(err)
}

func TestFollowerClose(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.writeRandom(rng, 5)
	f := follow(t, w.dir)
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := u.Next(); !ok || err != nil {
		t.Fatalf("next: %v %v", ok, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.Next(); !errors.Is(err, ErrClosed) {
		t.Fatalf("next after the follower closed: %v, want ErrClosed", err)
	}
	u.Close()
	if err := f.CatchUp(); !errors.Is(err, ErrClosed) {
		t.Fatalf("catch up after close: %v", err)
	}
	if _, err := f.Updates(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("updates after close: %v", err)
	}
	if f.LatestSequence() != 0 || f.Close() != nil {
		t.Fatal("closed follower: want seq 0 and a harmless second Close")
	}
}

// TestFollowerReplaced: a database deleted and created again in the same
// directory is refused, not followed with a stale view.
func TestFollowerReplaced(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	dir := filepath.Join(t.TempDir(), "src")
	w := newWriter(t, dir, 3600)
	w.writeRandom(rng, 5)
	f := follow(t, dir)
	if id, _ := ReadIdentity(dir); f.Identity() != id || id == "" {
		t.Fatalf("identity %q, want %q", f.Identity(), id)
	}
	if err := f.CatchUp(); err != nil {
		t.Fatal(err)
	}
	w.close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	w = newWriter(t, dir, 3600)
	w.writeRandom(rng, 5)
	if err := f.CatchUp(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("catch up after the database was replaced: %v, want ErrReplaced", err)
	}
	t.Log(f.CatchUp())
}
