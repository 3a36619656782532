package standby

import (
	"bytes"
	"context"
	"errors"
	"iter"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

// TestMissingSegment deletes by hand the segment a standby needs next, as
// `rockstream prune` does to a standby that is far behind: the standby must
// stop naming the key, keep what it applied, and say to rebuild it; both
// while it runs (the key stays missing while later segments exist) and at a
// restart. An idle archive, or a key that exists though a GET missed it,
// must not stop it.
func TestMissingSegment(t *testing.T) {
	ctx := context.Background()
	inner, _ := fileStore(t)
	fs := faultstore.New(inner)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, inner, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	opts := Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond,
		ManifestCheck: 100 * time.Millisecond, MissingCheck: 50 * time.Millisecond}
	sb := startStandbyOpts(t, fs, opts)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })

	// Idle: the next key is missing and nothing comes after it.
	time.Sleep(400 * time.Millisecond)
	if st := sb.sb.Status(); st.State != Following {
		t.Fatalf("an idle archive stopped the standby: %+v", st)
	}
	// The standby misses the next segment (as if each GET came just before
	// it); the archiver uploads it and later ones.
	at := src.latest()
	next := manifest.SegmentKey(1, at+1)
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: next, Err: &objstore.Error{Op: "get", Key: next, Err: objstore.ErrNotFound}})
	for range 3 {
		src.write(t, 30)
		time.Sleep(60 * time.Millisecond) // a segment each
	}
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	time.Sleep(400 * time.Millisecond) // several checks: the key is there, so it waits
	if st := sb.sb.Status(); st.State != Following || st.Applied != at {
		t.Fatalf("with the next segment present the standby must wait, got %+v", st)
	}
	if err := inner.Delete(ctx, next); err != nil {
		t.Fatal(err)
	}
	runErr := waitStopped(t, sb)
	checkMissingErr(t, runErr, next, dir)
	if st := sb.sb.Status(); st.State != Failed || st.Applied != at || !strings.Contains(st.Error, next) {
		t.Fatalf("status %+v, want failed at %d naming %s", st, at, next)
	}
	if _, seq := testdb.Digest(t, dir); seq != at {
		t.Fatalf("the standby kept %d, want %d", seq, at)
	}

	// A restart finds it at once, with its first listing.
	opts.MissingCheck = time.Hour
	checkMissingErr(t, waitStopped(t, startStandbyOpts(t, inner, opts)), next, dir)
}

// checkMissingErr checks the error of a standby whose next segment key is
// gone: ErrRebuild, naming the key and what to do.
func checkMissingErr(t *testing.T, err error, key, dir string) {
	t.Helper()
	if !errors.Is(err, ErrRebuild) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "empty "+dir) {
		t.Fatalf("want ErrRebuild naming %s and what to do, got %v", key, err)
	}
	t.Logf("stopped with: %v", err)
}

// waitStopped waits for Run to return and gives its error.
func waitStopped(t *testing.T, sb *runningStandby) error {
	t.Helper()
	select {
	case err := <-sb.done:
		sb.done <- err // for the cleanup
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not stop")
		return nil
	}
}

// TestMissingFor checks what counts as later data when the segment at
// applied+1 of timeline 1 is missing: a later segment of the timeline, or
// a child that branches after applied; not an empty timeline, nor a key
// that is there after all.
func TestMissingFor(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	m := manifest.New("db", time.Unix(1, 0))
	s := &Standby{store: store, m: m, log: quiet(), opts: Options{Dir: "/srv/standby"}}
	put := func(key string) {
		if _, err := store.Put(ctx, key, bytes.NewReader([]byte("x")), 1, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.missingFor(ctx, 1, 50); err != nil {
		t.Fatalf("nothing archived after: %v", err)
	}
	put(manifest.SegmentKey(1, 80))
	if err := s.missingFor(ctx, 1, 50); !errors.Is(err, ErrRebuild) || !strings.Contains(err.Error(), manifest.SegmentKey(1, 80)) {
		t.Fatalf("a later segment: %v", err)
	}
	put(manifest.SegmentKey(1, 51))
	if err := s.missingFor(ctx, 1, 50); err != nil {
		t.Fatalf("the key is there: %v", err)
	}
	if err := s.missingFor(ctx, 1, 90); err != nil {
		t.Fatalf("after the last segment: %v", err)
	}
	if _, err := m.AddTimeline(1, 100, time.Unix(2, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.missingFor(ctx, 1, 90); !errors.Is(err, ErrRebuild) || !strings.Contains(err.Error(), "timeline 2 branches") {
		t.Fatalf("a child branching after it: %v", err)
	}
	if err := s.missingFor(ctx, 1, 100); err != nil {
		t.Fatalf("at the branch point: %v", err)
	}
	put(manifest.SegmentsPrefix + "00000001/junk")
	if err := s.missingFor(ctx, 1, 90); !errors.Is(err, manifest.ErrInvalid) {
		t.Fatalf("a foreign object: %v", err)
	}
}

// segmentLists counts the listings of segments/ prefixes.
type segmentLists struct {
	objstore.Store
	mu sync.Mutex
	n  int
}

func (c *segmentLists) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	if strings.HasPrefix(prefix, manifest.SegmentsPrefix) {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return c.Store.List(ctx, prefix, startAfter)
}

func (c *segmentLists) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestRestartListsOnce: a caught-up standby restarted on an idle archive
// lists its timeline once (the listing that looks for the segment holding
// its next sequence also looks for later data), not once more at the first
// miss nor at the next.
func TestRestartListsOnce(t *testing.T) {
	inner, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, inner, 20*time.Millisecond)
	for range 3 {
		src.write(t, 30)
		time.Sleep(40 * time.Millisecond)
	}
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	dir := filepath.Join(t.TempDir(), "standby")
	opts := Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: 20 * time.Millisecond, MissingCheck: time.Hour}
	sb := startStandbyOpts(t, inner, opts)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	counted := &segmentLists{Store: inner}
	sb = startStandbyOpts(t, counted, opts)
	waitFor(t, "the restarted standby", func() bool { return sb.sb.Status().State == Following })
	time.Sleep(300 * time.Millisecond) // many misses of the next key
	if st := sb.sb.Status(); st.State != Following || st.Applied != src.latest() {
		t.Fatalf("status %+v", st)
	}
	if n := counted.count(); n != 1 {
		t.Fatalf("the restart listed the segments %d times, want 1", n)
	}
}
