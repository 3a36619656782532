package standby

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/s3store"
)

// TestLag measures the commit-to-visible lag of a steady write load (a
// batch every 10 ms): for each batch, the time from the source's write to
// the moment the standby's applied sequence reaches it (the batch is then
// readable in the standby's database). The archiver runs with its defaults
// but the segment age (--segment-age 250ms; and 1s with ROCKSTREAM_LONG=1),
// the standby as `rockstream standby --poll 50ms` runs it, on the file store
// (and a local MinIO with ROCKSTREAM_LONG=1). The load runs a while before the measurement starts (a steady
// load); the test splits the lag into its phases (in the archiver until the
// segment's PUT starts, the PUT, until the standby's GET of it returns, the
// apply) and counts the standby's GETs of segments while writing. The
// figures are logged, not asserted: they depend on the machine. It checks
// that the standby ends equal to the source.
// Run: go test ./standby/ -run TestLag -v
func TestLag(t *testing.T) {
	ages := []time.Duration{250 * time.Millisecond}
	stores := []string{"file"}
	if os.Getenv("ROCKSTREAM_LONG") == "1" {
		ages = append(ages, time.Second)
		stores = append(stores, "minio")
	}
	for _, kind := range stores {
		for _, age := range ages {
			t.Run(kind+"/"+age.String(), func(t *testing.T) { measureLag(t, lagStore(t, kind), age, max(time.Second, 3*age), 16*age) })
		}
	}
}

// lagStore is a file store, or a bucket of the shared MinIO.
func lagStore(t *testing.T, kind string) objstore.Store {
	if kind == "file" {
		fs, _ := fileStore(t)
		return fs
	}
	srv := miniotest.Shared(t)
	s, err := s3store.New(context.Background(), s3store.Options{Bucket: srv.NewBucket(t), Prefix: "lag",
		Endpoint: srv.Endpoint, Credentials: srv.Credentials(), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// measureLag writes for warm, then measures for busy.
func measureLag(t *testing.T, inner objstore.Store, age, warm, busy time.Duration) {
	store := newTimedStore(inner)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 10)
	arch := startArchiverOpts(t, src.dir, store, archive.Options{SegmentAge: age})
	// As `rockstream standby --poll 50ms` runs it: the other options are the defaults.
	dir := filepath.Join(t.TempDir(), "standby")
	sb := startStandbyOpts(t, store, Options{Dir: dir, Poll: 50 * time.Millisecond})
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })

	// The observer notes when each sequence became visible.
	var obs []seen
	var stop atomic.Bool
	var target atomic.Uint64 // the last sequence, once writes end
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last uint64
		for {
			a := sb.sb.Status().Applied
			if a != last {
				obs = append(obs, seen{a, time.Now()})
				last = a
			}
			if stop.Load() && a == last && a == target.Load() {
				return
			}
			time.Sleep(500 * time.Microsecond)
		}
	}()
	var first uint64
	var gets0 int64
	began := time.Now()
	for time.Since(began) < warm+busy {
		if first == 0 && time.Since(began) >= warm {
			first, gets0 = src.latest(), store.gets.Load()
		}
		src.write(t, 1)
		time.Sleep(10 * time.Millisecond)
	}
	gets := store.gets.Load() - gets0
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	target.Store(src.latest())
	stop.Store(true)
	<-done
	if d := secondaryDigest(t, dir).Diff(src.digest(t)); d != "" {
		t.Fatalf("the standby differs from the source: %s", d)
	}

	var lags []time.Duration
	ph := make([][]time.Duration, 4)
	src.mu.Lock()
	for seq, wrote := range src.times {
		if seq <= first {
			continue
		}
		i, _ := slices.BinarySearchFunc(obs, seq, func(o seen, s uint64) int { return cmpU(o.seq, s) })
		if i == len(obs) {
			t.Fatalf("sequence %d was never seen applied", seq)
		}
		lags = append(lags, obs[i].at.Sub(wrote))
		if sg, ok := store.segmentOf(seq); ok && !sg.got.IsZero() {
			for j, d := range []time.Duration{sg.putStart.Sub(wrote), sg.putEnd.Sub(sg.putStart), sg.got.Sub(sg.putEnd), obs[i].at.Sub(sg.got)} {
				ph[j] = append(ph[j], d)
			}
		}
	}
	src.mu.Unlock()
	t.Logf("commit-to-visible lag over %d batches (segment age %v, poll 50ms, %s): %s", len(lags), age, inner, pcts(lags))
	for j, name := range []string{"commit -> segment PUT starts", "segment PUT", "PUT done -> standby GET returns", "GET -> batch applied"} {
		t.Logf("  %-32s %s", name, pcts(ph[j]))
	}
	t.Logf("standby GETs of segments while writing: %d in %v (%.0f per hour)", gets, busy, float64(gets)/busy.Hours())
}

// seen is when the standby's applied sequence reached seq.
type seen struct {
	seq uint64
	at  time.Time
}

// pcts formats p50, p90, p99 and the max of ds (sorted in place).
func pcts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	p := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v, p90 %v, p99 %v, max %v", p(0.50), p(0.90), p(0.99), p(1))
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// timedStore notes when each segment's PUT starts and ends and when a GET
// of it first returns it, and counts the GETs of segment keys.
type timedStore struct {
	objstore.Store
	gets atomic.Int64
	mu   sync.Mutex
	segs map[uint64]*segTimes // by first sequence
}

type segTimes struct{ putStart, putEnd, got time.Time }

func newTimedStore(s objstore.Store) *timedStore {
	return &timedStore{Store: s, segs: map[uint64]*segTimes{}}
}

func (s *timedStore) first(key string) (uint64, bool) {
	if !strings.HasPrefix(key, "segments/") {
		return 0, false
	}
	_, seq, err := manifest.ParseSegmentKey(key)
	return seq, err == nil
}

func (s *timedStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	start := time.Now()
	info, err := s.Store.Put(ctx, key, body, size, opts)
	if seq, ok := s.first(key); ok && err == nil {
		s.mu.Lock()
		s.segs[seq] = &segTimes{putStart: start, putEnd: time.Now()}
		s.mu.Unlock()
	}
	return info, err
}

func (s *timedStore) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	rc, info, err := s.Store.Get(ctx, key, opts)
	if seq, ok := s.first(key); ok {
		s.gets.Add(1)
		s.mu.Lock()
		if sg := s.segs[seq]; sg != nil && err == nil && sg.got.IsZero() {
			sg.got = time.Now()
		}
		s.mu.Unlock()
	}
	return rc, info, err
}

// segmentOf returns the times of the segment that holds seq.
func (s *timedStore) segmentOf(seq uint64) (segTimes, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	firsts := make([]uint64, 0, len(s.segs))
	for f := range s.segs {
		firsts = append(firsts, f)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	i := sort.Search(len(firsts), func(i int) bool { return firsts[i] > seq })
	if i == 0 {
		return segTimes{}, false
	}
	return *s.segs[firsts[i-1]], true
}
