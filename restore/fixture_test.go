package restore

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/rocks"
)

// fixtureRoot holds what the tests of this package share; TestMain
// removes it.
var fixtureRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "restore-test-")
	if err != nil {
		panic(err)
	}
	fixtureRoot = dir
	code := miniotest.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// archived is a source database and its archive, made once per test
// binary: the tests that damage the archive copy it first.
type archived struct {
	bucket string // the file store's folder
	log    []modelBatch
	names  []string
	bases  []uint64 // base sequences, in order
	latest uint64
}

var (
	fixtureOnce sync.Once
	fixture     *archived
	fixtureErr  string
)

// sharedArchive returns the shared archive, building it at first use.
func sharedArchive(t *testing.T) *archived {
	t.Helper()
	fixtureOnce.Do(func() {
		ft := &onceT{TB: t}
		defer func() {
			if r := recover(); r != nil && r != errFixture {
				panic(r)
			}
		}()
		fixture = buildArchive(ft, filepath.Join(fixtureRoot, "shared"))
	})
	if fixture == nil {
		t.Fatalf("the shared archive could not be built: %s", fixtureErr)
	}
	return fixture
}

// onceT turns a failure while building the shared fixture into a panic
// caught by sharedArchive, so that later tests report it too.
type onceT struct{ testing.TB }

var errFixture = new(int)

func (o *onceT) Fatalf(format string, args ...any) {
	o.TB.Logf(format, args...)
	fixtureErr = "see the first test's log"
	panic(errFixture)
}
func (o *onceT) Fatal(args ...any) { o.Fatalf("%v", args...) }
func (o *onceT) Cleanup(func())    {} // the fixture lives as long as the binary

// buildArchive writes a random workload into a new database under root
// while archiving it: 80 batches before the archiver starts, a base, 300
// batches, a flush, 300 batches, a second base, 300 batches.
func buildArchive(t testing.TB, root string) *archived {
	rng := rand.New(rand.NewPCG(1, 2))
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, filepath.Join(root, "db"), nil, "cf1")
	defer src.close()
	src.writeRandom(rng, 80)
	bucket := filepath.Join(root, "bucket")
	store := fileStore(t, bucket)
	arch := startArchiver(t, src.dir, store, filepath.Join(root, "work"))
	waitFor(t, "the first base", func() bool { return arch.a.Stats().Bases >= 1 })
	src.writeRandom(rng, 300)
	src.flush()
	src.writeRandom(rng, 300)
	takeBase(t, src.dir, store, filepath.Join(root, "base"))
	src.writeRandom(rng, 300)
	waitFor(t, "the archive to catch up", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	a := &archived{bucket: bucket, log: src.log, names: src.names, latest: src.latest()}
	for _, b := range m.Bases {
		a.bases = append(a.bases, b.Sequence)
	}
	if len(a.bases) != 2 || a.bases[0] >= a.bases[1] {
		t.Fatalf("bases at %v, want two", a.bases)
	}
	return a
}

func fileStore(t testing.TB, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyBucket copies the shared archive's bucket for a test that damages
// it.
func copyBucket(t *testing.T, a *archived) (string, *filestore.Store) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bucket")
	if out, err := exec.Command("cp", "-a", a.bucket, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the bucket: %v: %s", err, out)
	}
	return dir, fileStore(t, dir)
}

// runningArchiver is an archiver over a FollowerSource.
type runningArchiver struct {
	a      *archive.Archiver
	src    *rocks.FollowerSource
	cancel context.CancelFunc
	done   chan error
}

func startArchiver(t testing.TB, dbDir string, store objstore.Store, work string) *runningArchiver {
	t.Helper()
	src, err := rocks.NewFollowerSource(dbDir, filepath.Join(work, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.New(src, store, archive.Options{
		WriterID: "test:" + dbDir, WorkDir: filepath.Join(work, "ckpt"),
		SegmentSize: 16 << 10, SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond,
		FenceCheck: time.Second, RetryMax: 50 * time.Millisecond, DrainTimeout: 20 * time.Second, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningArchiver{a: a, src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	return r
}

// stop ends the archiver, which uploads what it read first.
func (r *runningArchiver) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.src.Close()
		if err != nil {
			t.Fatalf("archiver: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the archiver did not stop")
	}
}

// takeBase takes a base of the database in dbDir with `rockstream base`'s
// function, with a follower of its own.
func takeBase(t testing.TB, dbDir string, store objstore.Store, work string) manifest.Base {
	t.Helper()
	src, err := rocks.NewFollowerSource(dbDir, filepath.Join(work, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := archive.TakeBase(context.Background(), src, store, archive.Options{WorkDir: filepath.Join(work, "ckpt"), Logger: quiet()})
	if err != nil {
		t.Fatalf("take a base: %v", err)
	}
	return b
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
