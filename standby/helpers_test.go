package standby

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/rocks"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// source is a database written in this process, with WAL retention.
type source struct {
	dir  string
	db   *grocksdb.DB
	opts *grocksdb.Options
	wo   *grocksdb.WriteOptions
	rng  *rand.Rand

	mu    sync.Mutex
	times map[uint64]time.Time // last sequence of each batch -> when written
}

func newSource(t testing.TB, dir string) *source {
	t.Helper()
	opts := grocksdb.NewDefaultOptions()
	opts.SetCreateIfMissing(true)
	opts.SetWALTtlSeconds(3600)
	db, err := grocksdb.OpenDb(opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &source{dir: dir, db: db, opts: opts, wo: grocksdb.NewDefaultWriteOptions(),
		rng: rand.New(rand.NewPCG(uint64(len(dir)), 7)), times: map[uint64]time.Time{}}
	t.Cleanup(s.close)
	return s
}

// write writes n batches of 1 to 4 puts and deletes.
func (s *source) write(t testing.TB, n int) {
	t.Helper()
	for range n {
		wb := grocksdb.NewWriteBatch()
		for range 1 + s.rng.IntN(4) {
			k := fmt.Appendf(nil, "key%04d", s.rng.IntN(500))
			if s.rng.IntN(8) == 0 {
				wb.Delete(k)
			} else {
				wb.Put(k, fmt.Appendf(nil, "value-%d-%d", s.rng.Int64(), time.Now().UnixNano()))
			}
		}
		err := s.db.Write(s.wo, wb)
		wb.Destroy()
		if err != nil {
			t.Fatal(err)
		}
		s.mu.Lock()
		s.times[s.db.GetLatestSequenceNumber()] = time.Now()
		s.mu.Unlock()
	}
}

func (s *source) flush(t testing.TB) {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	if err := s.db.Flush(fo); err != nil {
		t.Fatal(err)
	}
}

func (s *source) latest() uint64 { return s.db.GetLatestSequenceNumber() }

func (s *source) close() {
	if s.db != nil {
		s.db.Close()
		s.wo.Destroy()
		s.opts.Destroy()
		s.db = nil
	}
}

// digest digests the source through a secondary instance.
func (s *source) digest(t testing.TB) rocks.Digest {
	t.Helper()
	return secondaryDigest(t, s.dir)
}

// secondaryDigest opens dir as a secondary instance, as a reader of a
// standby does, and digests what it sees.
func secondaryDigest(t testing.TB, dir string) rocks.Digest {
	t.Helper()
	f, err := rocks.OpenFollower(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runningArchiver is the real archiver over a FollowerSource.
type runningArchiver struct {
	a      *archive.Archiver
	src    *rocks.FollowerSource
	cancel context.CancelFunc
	done   chan error
}

func startArchiver(t testing.TB, dbDir string, store objstore.Store, age time.Duration) *runningArchiver {
	t.Helper()
	return startArchiverOpts(t, dbDir, store, archive.Options{
		SegmentSize: 16 << 10, SegmentAge: age, Poll: 5 * time.Millisecond,
		FenceCheck: time.Second, RetryMax: 50 * time.Millisecond, DrainTimeout: 20 * time.Second,
	})
}

// startArchiverOpts starts the archiver with opts, adding a writer id, a
// work folder and a quiet logger.
func startArchiverOpts(t testing.TB, dbDir string, store objstore.Store, opts archive.Options) *runningArchiver {
	t.Helper()
	work := t.TempDir()
	src, err := rocks.NewFollowerSource(dbDir, filepath.Join(work, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	opts.WriterID, opts.WorkDir, opts.Logger = "test:"+dbDir, filepath.Join(work, "ckpt"), quiet()
	a, err := archive.New(src, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningArchiver{a: a, src: src, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	waitFor(t, "the first base", func() bool {
		m, _, err := manifest.Load(context.Background(), store)
		return err == nil && len(m.Bases) > 0
	})
	return r
}

// stop ends the archiver, which uploads what it read first.
func (r *runningArchiver) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
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

// runningStandby is a Standby running in a goroutine.
type runningStandby struct {
	sb     *Standby
	cancel context.CancelFunc
	done   chan error
}

func startStandby(t testing.TB, store objstore.Store, dir string, poll time.Duration) *runningStandby {
	t.Helper()
	return startStandbyOpts(t, store, Options{Dir: dir, Poll: poll, MaxPoll: 200 * time.Millisecond, ManifestCheck: 200 * time.Millisecond})
}

// startStandbyOpts runs a standby with opts, quiet unless opts.Logger.
func startStandbyOpts(t testing.TB, store objstore.Store, opts Options) *runningStandby {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet()
	}
	sb, err := New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runningStandby{sb: sb, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- sb.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

// stop cancels Run and returns its error.
func (r *runningStandby) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not stop")
		return nil
	}
}

func fileStore(t testing.TB) (*filestore.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bucket")
	s, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
