package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/standby"
)

// Helpers of the fault suite's in-process tests: a database written by the
// test, and the archiver and the standby run in goroutines.

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// liveDB is a database written by this process.
type liveDB struct {
	dir string
	db  *grocksdb.DB
	wo  *grocksdb.WriteOptions
	rng *rand.Rand
}

func newLiveDB(t *testing.T, dir string) *liveDB {
	w := &liveDB{dir: dir, db: testdb.Open(t, dir), wo: grocksdb.NewDefaultWriteOptions(), rng: rand.New(rand.NewPCG(8, 9))}
	t.Cleanup(func() { w.db.Close() })
	return w
}

// write writes n batches of 1 to 4 puts and deletes.
func (w *liveDB) write(t *testing.T, n int) {
	t.Helper()
	for range n {
		if err := w.writeBatch(); err != nil {
			t.Fatal(err)
		}
	}
}

func (w *liveDB) writeBatch() error {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for range 1 + w.rng.IntN(4) {
		k := fmt.Appendf(nil, "key%04d", w.rng.IntN(1000))
		if w.rng.IntN(8) == 0 {
			wb.Delete(k)
		} else {
			wb.Put(k, fmt.Appendf(nil, "value-%d", w.rng.Int64()))
		}
	}
	return w.db.Write(w.wo, wb)
}

// writeOn writes a batch about every millisecond in a goroutine until the
// returned stop is called, or the test ends (before the database closes).
func (w *liveDB) writeOn(t *testing.T) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(time.Millisecond):
			}
			if err := w.writeBatch(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit) }); <-done }
	t.Cleanup(stop)
	return stop
}

// inProcess is an archiver or a standby running in a goroutine.
type inProcess struct {
	a      *archive.Archiver
	sb     *standby.Standby
	cancel context.CancelFunc
	done   chan struct{} // closed when run returned, with err
	err    error
}

// stop ends the run as SIGTERM does and returns its error.
func (p *inProcess) stop() error {
	p.cancel()
	select {
	case <-p.done:
		return p.err
	case <-time.After(time.Minute):
		return errors.New("still running a minute after its stop")
	}
}

// goRun runs run in a goroutine until stop, or the end of the test (before
// the cleanups registered earlier, which close what it uses).
func goRun(t *testing.T, run func(context.Context) error) *inProcess {
	ctx, cancel := context.WithCancel(context.Background())
	p := &inProcess{cancel: cancel, done: make(chan struct{})}
	go func() { p.err = run(ctx); close(p.done) }()
	t.Cleanup(func() { p.stop() })
	return p
}

func (w *liveDB) startArchiver(t *testing.T, s objstore.Store) *inProcess {
	t.Helper()
	root := t.TempDir()
	src, err := rocks.NewFollowerSource(w.dir, filepath.Join(root, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	a, err := archive.New(src, s, archive.Options{WriterID: "faulty", WorkDir: filepath.Join(root, "work"),
		SegmentSize: 32 << 10, SegmentAge: 50 * time.Millisecond, Poll: 5 * time.Millisecond, BaseInterval: time.Second,
		FenceCheck: 200 * time.Millisecond, RetryMax: 200 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	p := goRun(t, a.Run)
	p.a = a
	return p
}

func startStandby(t *testing.T, s objstore.Store, dir string) *inProcess {
	t.Helper()
	sb, err := standby.New(s, standby.Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: 100 * time.Millisecond,
		ManifestCheck: 200 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	p := goRun(t, sb.Run)
	p.sb = sb
	waitUntilT(t, "the standby to follow", func() bool { return sb.Status().State == standby.Following })
	return p
}
