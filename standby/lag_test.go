package standby

import (
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
)

// TestLag measures the commit-to-visible lag of a steady write load (a
// batch every 10 ms for 4 s): for each batch, the time from the source's
// write to the moment the standby's applied sequence reaches it. The
// archiver runs with its defaults but a 250 ms segment age
// (--segment-age 250ms), the standby polls every 50 ms (--poll 50ms), on
// the file store. The figures are logged, not asserted: they depend on the
// machine. Run: go test ./standby/ -run TestLag -v
func TestLag(t *testing.T) {
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 10)
	arch := startArchiverOpts(t, src.dir, store, archive.Options{SegmentAge: 250 * time.Millisecond})
	sb := startStandby(t, store, filepath.Join(t.TempDir(), "standby"), 50*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })

	// The observer notes when each sequence became visible.
	type seen struct {
		seq uint64
		at  time.Time
	}
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
	first := src.latest()
	for end := time.Now().Add(4 * time.Second); time.Now().Before(end); {
		src.write(t, 1)
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	target.Store(src.latest())
	stop.Store(true)
	<-done

	var lags []time.Duration
	src.mu.Lock()
	for seq, wrote := range src.times {
		if seq <= first {
			continue
		}
		i, _ := slices.BinarySearchFunc(obs, seq, func(o seen, s uint64) int {
			return cmpU(o.seq, s)
		})
		if i == len(obs) {
			t.Fatalf("sequence %d was never seen applied", seq)
		}
		lags = append(lags, obs[i].at.Sub(wrote))
	}
	src.mu.Unlock()
	slices.Sort(lags)
	pct := func(p float64) time.Duration { return lags[int(p*float64(len(lags)-1))].Round(time.Millisecond) }
	t.Logf("commit-to-visible lag over %d batches (segment age 250ms, poll 50ms, file store): p50 %v, p90 %v, p99 %v, max %v",
		len(lags), pct(0.50), pct(0.90), pct(0.99), pct(1))
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
