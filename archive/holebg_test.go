package archive_test

import (
	"context"
	"math/rand"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/segments"
)

// holeHeld starts an archiver, lets it archive a first base and the
// batches after it, then makes the WAL needed next vanish (a gap) with
// every later base held at the gate: it returns with the hole's base
// waiting at the gate, the last sequence archived before the gap and the
// held base's sequence.
func holeHeld(t *testing.T, g *gateStore, src *memSource, rng *rand.Rand, opts archive.Options) (r *running, before, held uint64) {
	t.Helper()
	src.write(rng, 120)
	r = start(t, src, g, opts)
	before = src.lastSeq()
	waitFor(t, "the first base and the batches after it", func() bool { return r.a.Stats().ArchivedSequence == before })
	g.hold(before, manifest.MaxSequence)
	src.writeTrimmed(rng, 60, 20)
	waitFor(t, "the hole's base to reach the gate", func() bool { e, _, _ := g.state(); return e > 0 })
	return r, before, g.heldSeq()
}

// restorableAfter says whether the archive in g calls any sequence after
// seq restorable.
func restorableAfter(t *testing.T, g *gateStore, seq uint64) bool {
	return restorableIn(t, g, seq+1, manifest.MaxSequence)
}

// restorableIn says whether the archive in g calls any sequence from from
// to to restorable.
func restorableIn(t *testing.T, g *gateStore, from, to uint64) bool {
	t.Helper()
	c, err := catalog.Load(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := manifest.Restorable(c.Manifest, c.Ranges())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cov {
		for _, rg := range c.Ranges {
			if rg.From <= to && rg.To >= from {
				return true
			}
		}
	}
	return false
}

// TestHoleBaseInBackground (issue 14, "bases beside the stream"): the base
// that ends a hole uploads in the background. While it is held, the
// archiver goes on reading the WAL after it (a writer that keeps no WAL
// deletes it meanwhile) and seals segments, which wait in the upload queue:
// none after a base that is not in reaches the bucket, the hole stays
// open and nothing after its start is called restorable. Once the base is
// in, the hole ends at it and everything after it is archived and
// restorable. Before, reading stopped for the whole upload of the hole's
// base.
func TestHoleBaseInBackground(t *testing.T) {
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(41))
	r, before, held := holeHeld(t, g, src, rng, testOptions(t, "w"))
	segs := r.a.Stats().Segments
	src.write(rng, 150)
	waitFor(t, "the WAL after the hole's base to be read", func() bool { return r.a.Stats().LastSequence > held+20 })
	st := r.a.Stats()
	if st.ArchivedSequence != before || st.Bases != 1 || st.Holes != 1 || st.Segments != segs {
		t.Fatalf("while the hole's base is held: archived %d (want %d), %d bases (want 1), %d holes (want 1), %d segments (want %d)",
			st.ArchivedSequence, before, st.Bases, st.Holes, st.Segments, segs)
	}
	m, _, err := manifest.Load(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Holes) != 1 || m.Holes[0].From != before+1 || m.Holes[0].To != manifest.MaxSequence {
		t.Fatalf("holes %+v while the base is held, want one open from %d", m.Holes, before+1)
	}
	if restorableAfter(t, g, before) {
		t.Fatal("a sequence after the hole's start is called restorable before the hole's base is in")
	}
	for _, b := range archived(t, g, 1) {
		if b.Seq > before {
			t.Fatalf("a segment after the hole's base (batch %d) is in the bucket before the base", b.Seq)
		}
	}
	g.release()
	last := src.lastSeq()
	waitFor(t, "the hole's base and the batches after it", func() bool { s := r.a.Stats(); return s.Bases == 2 && s.ArchivedSequence == last })
	if !restorableAfter(t, g, held) {
		t.Fatal("nothing after the hole's base is restorable once it is in")
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m = checkBasesWhole(t, g)
	if len(m.Holes) != 1 || m.Holes[0].From != before+1 || m.Holes[0].To != held || !hasBaseAt(m, held) {
		t.Fatalf("holes %+v, bases %+v: want one hole %d..%d ended by a base", m.Holes, m.Bases, before+1, held)
	}
	sameBatches(t, archived(t, g, 1), outside(src.since(firstBase(t, g, 1).Sequence), before, held))
}

// outside is bs but those after from and up to to.
func outside(bs []segments.Batch, from, to uint64) []segments.Batch {
	var out []segments.Batch
	for _, b := range bs {
		if b.Seq <= from || b.Seq > to {
			out = append(out, b)
		}
	}
	return out
}

// TestGapDuringHoleBase: the WAL vanishes again while the hole's base
// uploads. That base is not abandoned (under a writer that keeps deleting
// its WAL, each new gap would throw the last try away and the hole would
// never end): once it is in, the new gap gets its own hole and base, and
// the archive holds every batch outside the two holes.
func TestGapDuringHoleBase(t *testing.T) {
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(42))
	r, before, held := holeHeld(t, g, src, rng, testOptions(t, "w"))
	src.writeTrimmed(rng, 60, 20)
	g.release()
	waitFor(t, "both holes' bases", func() bool { s := r.a.Stats(); return s.Bases == 3 && s.Holes == 2 })
	src.write(rng, 30)
	waitFor(t, "the archive after the holes", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m := checkBasesWhole(t, g)
	if len(m.Holes) != 2 || m.Holes[0].From != before+1 || m.Holes[0].To != held || !hasBaseAt(m, held) ||
		m.Holes[1].From <= held || !hasBaseAt(m, m.Holes[1].To) {
		t.Fatalf("holes %+v, bases %+v: want %d..%d, then one after %d, each ended by a base", m.Holes, m.Bases, before+1, held, held)
	}
	want := outside(outside(src.since(firstBase(t, g, 1).Sequence), before, held), m.Holes[1].From-1, m.Holes[1].To)
	sameBatches(t, archived(t, g, 1), want)
}

// TestStopDuringHoleBase: a stop while the hole's base uploads lets it go
// on until the stop's deadline, then abandons it and exits clean, with no
// segment after that base in the bucket and the hole open; the next start
// ends the hole with a base before it reads anything.
func TestStopDuringHoleBase(t *testing.T) {
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(43))
	opts := testOptions(t, "w")
	opts.DrainTimeout = time.Second
	r, before, held := holeHeld(t, g, src, rng, opts)
	src.write(rng, 30)
	waitFor(t, "the batches after the hole's base to be read", func() bool { return r.a.Stats().LastSequence > held })
	if err := r.stop(t); err != nil {
		t.Fatalf("the stop: %v", err)
	}
	if _, inflight, canceled := g.state(); inflight != 0 || canceled == 0 {
		t.Fatalf("after Run returned: %d base puts waiting, %d canceled; want the held base abandoned at the deadline", inflight, canceled)
	}
	m, _, err := manifest.Load(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Holes) != 1 || m.Holes[0].To != manifest.MaxSequence || len(m.Bases) != 1 {
		t.Fatalf("holes %+v, bases %+v after the stop: want the hole open, the first base only", m.Holes, m.Bases)
	}
	for _, b := range archived(t, g, 1) {
		if b.Seq > before {
			t.Fatalf("a segment after the abandoned base (batch %d) is in the bucket", b.Seq)
		}
	}
	g.release()
	src.write(rng, 30)
	r = start(t, src, g, opts)
	waitFor(t, "the restart to end the hole and catch up", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m = checkBasesWhole(t, g)
	end := m.Holes[0].To
	if len(m.Holes) != 1 || m.Holes[0].From != before+1 || end == manifest.MaxSequence || !hasBaseAt(m, end) {
		t.Fatalf("holes %+v, bases %+v after the restart: want the hole ended by a base", m.Holes, m.Bases)
	}
	sameBatches(t, archived(t, g, 1), outside(src.since(firstBase(t, g, 1).Sequence), before, end))
}
