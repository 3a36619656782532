package rocks

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// TestCheckpointArchivedWAL: the writer flushes and archives the WAL after
// the follower's last catch-up. RocksDB's checkpoint of the follower then
// leaves out the archived WAL, which its SST files still need, and opens at
// the writer's sequence with a hole; Checkpoint finds that and retries.
func TestCheckpointArchivedWAL(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a")
	w.writeRandom(rng, 50)
	f := follow(t, w.dir)
	w.writeRandom(rng, 50)
	w.flush()
	w.writeRandom(rng, 50)

	raw := filepath.Join(t.TempDir(), "raw")
	if err := f.createCheckpoint(raw); err != nil {
		t.Fatal(err)
	}
	err := checkWALCoverage(raw)
	if err == nil {
		t.Fatal("rocksdb's checkpoint of a stale follower was complete: the test no longer shows the hole")
	}
	t.Log(err)
	rawDigest := digestDir(t, raw)

	cp := filepath.Join(t.TempDir(), "cp")
	seq, err := f.Checkpoint(cp)
	if err != nil {
		t.Fatal(err)
	}
	if seq != w.latest() || f.LatestSequence() != w.latest() {
		t.Fatalf("checkpoint at %d, follower at %d, writer at %d", seq, f.LatestSequence(), w.latest())
	}
	compareDigests(t, f, cp)
	if _, err := f.Checkpoint(cp); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("checkpoint into an existing directory: %v, want fs.ErrExist", err)
	}
	want, _ := f.Digest()
	if rawDigest.Diff(want) == "" {
		t.Fatal("the incomplete checkpoint has the same content")
	}
	t.Logf("rocksdb's own checkpoint: %s", rawDigest.Diff(want))
}

func digestDir(t *testing.T, dir string) Digest {
	t.Helper()
	db, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := db.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestWALFirstSequence reads the first sequence of real WAL files, and
// nothing from empty, torn or damaged ones.
func TestWALFirstSequence(t *testing.T) {
	rng := rand.New(rand.NewPCG(33, 34))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.writeRandom(rng, 10)
	first := w.latest() + 1
	w.flush() // a new WAL starts at first
	w.writeRandom(rng, 10)
	paths, err := walFiles(w.dir)
	if err != nil || len(paths) != 1 {
		t.Fatalf("wal files %v, %v; want one live file", paths, err)
	}
	seq, ok, err := walFirstSequence(paths[0])
	if err != nil || !ok || seq != first {
		t.Fatalf("first seq %d, %v, %v; want %d", seq, ok, err, first)
	}
	archived, _ := walFiles(filepath.Join(w.dir, "archive"))
	if seq, ok, err := walFirstSequence(archived[0]); err != nil || !ok || seq != 1 {
		t.Fatalf("archived wal: first seq %d, %v, %v; want 1", seq, ok, err)
	}
	data, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), data...)
	damaged[walHeaderSize+20] ^= 1
	for name, b := range map[string][]byte{"empty": nil, "torn header": data[:5], "torn record": data[:walHeaderSize+15], "damaged": damaged} {
		p := filepath.Join(t.TempDir(), "000009.log")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ok, err := walFirstSequence(p); ok || err != nil {
			t.Errorf("%s: ok %v, err %v; want no record and no error", name, ok, err)
		}
	}
}
