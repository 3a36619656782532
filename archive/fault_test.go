package archive_test

import (
	"context"
	"errors"
	"io"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

// TestBaseRetriedSoon: a base whose upload fails (a put the store refused
// after the client's retries) is tried again after RetryMax, not a whole
// BaseInterval later (24 h by default), so a store outage during a base
// does not leave the archive without a new base for a day.
func TestBaseRetriedSoon(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(21))
	src.write(rng, 120)
	opts := testOptions(t, "w")
	opts.BaseInterval = time.Second
	opts.RetryMax = 20 * time.Millisecond
	r := start(t, src, fs, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	src.write(rng, 10)
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "bases/", Nth: 1, Err: errors.New("injected: 503 SlowDown after the client's retries")})
	waitFor(t, "the base to fail", func() bool { return fs.Injected() == 1 })
	failed := time.Now()
	waitFor(t, "the base to be taken again", func() bool { return r.a.Stats().Bases == 2 })
	if d := time.Since(failed); d > 600*time.Millisecond {
		t.Fatalf("the failed base was taken again after %v, want about RetryMax (%v) and well before BaseInterval (%v)", d, opts.RetryMax, opts.BaseInterval)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// racingStore writes another archiver's file list at the key of the first
// file list put, just before that put: two archivers of one database that
// started at once and took a base at the same sequence.
type racingStore struct {
	objstore.Store
	once sync.Once
}

func (s *racingStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if strings.HasSuffix(key, "/files.json") {
		s.once.Do(func() {
			other := `{"format": 1, "identity": "db-1", "timeline": 1, "sequence": 0, "created": "2025-01-01T00:00:00Z", "files": []}`
			s.Store.Put(ctx, key, strings.NewReader(other), int64(len(other)), objstore.PutOptions{IfNoneMatch: true})
		})
	}
	return s.Store.Put(ctx, key, body, size, opts)
}

// TestFileListRace: the file list of the writer's base is taken by another
// (fenced) archiver's. The writer replaces it and goes on; before, it
// stopped with "precondition failed" while the other was fenced, so neither
// archived.
func TestFileListRace(t *testing.T) {
	s := &racingStore{Store: newStore(t)}
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(22)), 60)
	r := start(t, src, s, testOptions(t, "w"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manifest.LoadFileList(context.Background(), s, m, m.Bases[0]); err != nil {
		t.Fatalf("the base's file list: %v", err)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestStopWhileStarting: a stop (SIGTERM) while the archiver starts (its
// store check, its first base) is a clean stop, not a failure.
func TestStopWhileStarting(t *testing.T) {
	for _, d := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond} {
		fs := faultstore.New(newStore(t))
		fs.Latency("", 10*time.Millisecond)
		src := newMemSource("db-1")
		src.write(rand.New(rand.NewSource(23)), 20)
		r := start(t, src, fs, testOptions(t, "w"))
		time.Sleep(d)
		if err := r.stop(t); err != nil {
			t.Fatalf("stopped %v after the start: %v", d, err)
		}
	}
}
