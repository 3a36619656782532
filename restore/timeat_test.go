package restore

import (
	"context"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// timed is a batch's last sequence and archive time.
type timed struct {
	last uint64
	at   time.Time
}

// archivedTimes reads every batch of timeline 1 with its archive time,
// with a plain segments.Reader: the test's own oracle for time targets.
func archivedTimes(t *testing.T, s objstore.Store) []timed {
	t.Helper()
	ctx := context.Background()
	c, err := catalog.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	var out []timed
	for _, sg := range c.Segments[1] {
		rc, _, err := s.Get(ctx, sg.Key, objstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := segments.NewReader(rc, segments.ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, timed{last: b.Seq + uint64(b.Count) - 1, at: b.Time})
		}
		rc.Close()
	}
	return out
}

// expectedAt is the sequence a restore to time at must reach: the later
// of the last batch archived at or before it and the last base taken at
// or before it.
func expectedAt(batches []timed, bases []manifest.Base, at time.Time) (uint64, bool) {
	var seq uint64
	found := false
	for _, b := range batches {
		if !b.at.After(at) {
			seq, found = b.last, true
		}
	}
	for _, b := range bases {
		if !b.Time.After(at) && (!found || b.Sequence > seq) {
			seq, found = b.Sequence, true
		}
	}
	return seq, found
}

func TestRestoreToTime(t *testing.T) {
	a := sharedArchive(t)
	s := fileStore(t, a.bucket)
	batches := archivedTimes(t, s)
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var times []time.Time
	for _, b := range m.Bases {
		times = append(times, b.Time)
	}
	for range 4 {
		at := batches[rng.IntN(len(batches))].at
		times = append(times, at, at.Add(-time.Nanosecond))
	}
	times = append(times, batches[len(batches)-1].at.Add(time.Hour))
	for _, at := range times {
		want, ok := expectedAt(batches, m.Bases, at)
		if !ok {
			t.Fatalf("no expectation at %s", at)
		}
		dir, res := restoreTo(t, a, Options{ToTime: at})
		if res.Sequence != want {
			t.Fatalf("restore to %s reached %d, want %d", at.Format(time.RFC3339Nano), res.Sequence, want)
		}
		if res.Time.After(at) {
			t.Fatalf("restore to %s reports a state archived at %s", at, res.Time)
		}
		checkAgainstModel(t, a, dir, want)
	}

	before := m.Bases[0].Time.Add(-time.Second)
	for _, b := range m.Bases {
		if b.Time.Before(before) {
			before = b.Time.Add(-time.Second)
		}
	}
	err = mustFail(t, s, Options{ToTime: before}, manifest.ErrNotRestorable, "earliest base")
	t.Logf("before the first base: %v", err)
}
