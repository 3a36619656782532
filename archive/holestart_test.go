package archive_test

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/segments"
)

// TestRestartBeforeOpenHole: an archiver stopped while it took the base
// that ends a hole, with segments sealed before the hole not uploaded: the
// archive ends before the open hole starts, and the WAL no longer holds
// what comes after the archive's end. The next start makes the hole start
// where the archive ends (a second open hole would overlap the first, and
// every start failed on it) and ends it with a base; every batch outside
// the hole is archived once.
func TestRestartBeforeOpenHole(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(51))
	src.write(rng, 100)
	opts := testOptions(t, "w")
	r := start(t, src, s, opts)
	end := src.lastSeq()
	waitFor(t, "the archive", func() bool { return r.a.Stats().ArchivedSequence == end })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// What the stopped archiver had recorded: a hole from a gap it found
	// after segments that it sealed but never uploaded.
	_, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: end + 20, To: manifest.MaxSequence,
			Detected: time.Now().UTC(), Reason: "test: the WAL was gone"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	src.writeTrimmed(rng, 80, 30) // and the WAL after the archive's end is gone
	r = start(t, src, s, opts)
	src.write(rng, 20)
	waitFor(t, "the restart to end the hole and catch up", func() bool {
		return r.a.Stats().ArchivedSequence == src.lastSeq() && holesEnded(t, s)
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m := checkBasesWhole(t, s)
	if len(m.Holes) != 1 || m.Holes[0].From != end+1 || m.Holes[0].To == manifest.MaxSequence || !hasBaseAt(m, m.Holes[0].To) {
		t.Fatalf("holes %+v, bases %+v: want one hole from %d, ended by a base", m.Holes, m.Bases, end+1)
	}
	var want []segments.Batch
	for _, b := range src.since(firstBase(t, s, 1).Sequence) {
		if b.Seq <= end || b.Seq > m.Holes[0].To {
			want = append(want, b)
		}
	}
	sameBatches(t, archived(t, s, 1), want)
}
