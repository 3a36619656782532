package restore

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

// TestRestoreSingleDeleteAtEnd: when the last batches are a Put and its
// SingleDelete, RocksDB drops both in the flush and a database replayed
// without its WAL reopens behind. The restore must still end at the last
// batch, with the right content.
func TestRestoreSingleDeleteAtEnd(t *testing.T) {
	root := t.TempDir()
	src := newSource(t, filepath.Join(root, "db"), nil, "cf1")
	rng := rand.New(rand.NewPCG(9, 10))
	src.writeRandom(rng, 30)
	store := fileStore(t, filepath.Join(root, "bucket"))
	arch := startArchiver(t, src.dir, store, filepath.Join(root, "work"))
	waitFor(t, "the first base", func() bool { return arch.a.Stats().Bases >= 1 })
	src.writeRandom(rng, 30)
	src.write([]op{{cf: "cf1", kind: opPut, key: "once", val: "1"}, {cf: "cf1", kind: opSingleDelete, key: "once"}})
	waitFor(t, "the archive", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)

	dir := filepath.Join(root, "restored")
	res, err := Run(context.Background(), store, Options{Dir: dir, Logger: quiet()})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if res.Sequence != src.latest() {
		t.Fatalf("restored to %d, want %d", res.Sequence, src.latest())
	}
	if got, err := reopenSequence(dir, nil); err != nil || got != src.latest() {
		t.Fatalf("the restored database reopens at %d (%v), want %d", got, err, src.latest())
	}
	checkContent(t, dir, src.log, src.names, res.Sequence)
	checkConsistency(t, dir)
}

// TestFetchFileRefusesPath: a base file whose name is not one plain path
// element is refused before anything is written or read (the manifest
// package refuses it at load; this is the last guard).
func TestFetchFileRefusesPath(t *testing.T) {
	dir := t.TempDir()
	for _, bad := range []string{"", ".", "..", "../x", "a/b", `a\b`, "/etc", "a\x00b"} {
		err := fetchFile(context.Background(), nil, manifest.File{Key: "bases/b/" + bad, Name: bad}, dir, 1, nil)
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("a base file named %q: %v, want ErrCorrupt", bad, err)
		}
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("the refused names left %v", left)
	}
	for _, good := range []string{"CURRENT", "000012.sst", "OPTIONS-000007", "MANIFEST-000005"} {
		if err := manifest.ValidateName(good); err != nil {
			t.Errorf("a RocksDB file name %q is refused: %v", good, err)
		}
	}
}

// TestRestoreCancelled: a restore whose context ends half-way (while it
// waits for a segment) leaves nothing beside its folder.
func TestRestoreCancelled(t *testing.T) {
	a := sharedArchive(t)
	seg := segmentAfter(t, a, a.bases[1])
	fs := faultstore.New(fileStore(t, a.bucket))
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: seg.Key, Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := filepath.Join(t.TempDir(), "restored")
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, fs, Options{Dir: dir, Logger: quiet()})
		done <- err
	}()
	waitFor(t, "the restore to start", func() bool { return len(leftovers(t, dir)) > 0 })
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled restore: %v", err)
	}
	if left := leftovers(t, dir); len(left) != 0 {
		t.Fatalf("a cancelled restore left %q", left)
	}
}
