package archive_test

import (
	"context"
	"math"
	"math/rand"
	"testing"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/restore"
)

// TestHoleBaseBeside: the base that ends a hole is uploaded while the
// archiver reads on. With its upload held at the gate, the batches written
// after its checkpoint are archived all the same, and nothing after the
// hole is restorable. A stop leaves the hole open with those segments
// after it; the next start ends the hole with a new base, and the segments
// left inside the hole are counted by verify, not called damage. A second
// gap while a hole's base is held waits for that base, which ends its own
// hole, then records its own. In the end every hole ends at a base and
// verify finds nothing wrong.
func TestHoleBaseBeside(t *testing.T) {
	ctx := context.Background()
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(71))
	src.write(rng, 50)
	opts := testOptions(t, "w")
	r := start(t, src, g, opts)
	end := src.lastSeq()
	waitFor(t, "the archive", func() bool { return r.a.Stats().ArchivedSequence == end })
	g.hold(end, math.MaxUint64) // every later base waits at the gate

	src.writeTrimmed(rng, 100, 30) // the WAL after the archive's end is gone
	waitFor(t, "the hole's base at the gate", func() bool { _, inflight, _ := g.state(); return inflight > 0 })
	src.write(rng, 40)
	waitFor(t, "the batches after the hole's checkpoint, archived while its base is held", func() bool {
		return r.a.Stats().ArchivedSequence == src.lastSeq()
	})
	if _, inflight, _ := g.state(); inflight == 0 {
		t.Fatal("the hole's base is not held any more: the test proves nothing")
	}
	checkOpenHole(t, g, end)
	if err := r.stop(t); err != nil {
		t.Fatalf("a stop while the hole's base is held: %v, want a clean stop", err)
	}
	checkOpenHole(t, g, end)

	g.release()
	src.write(rng, 20)
	r = start(t, src, g, opts)
	waitFor(t, "the restart to end the hole", func() bool {
		return r.a.Stats().ArchivedSequence == src.lastSeq() && holesEnded(t, g)
	})
	rep, err := restore.Verify(ctx, g, restore.VerifyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) > 0 || rep.InHoles == 0 {
		t.Fatalf("verify: problems %+v, %d segments in holes; want none, and the segments read after the abandoned base's checkpoint counted", rep.Problems, rep.InHoles)
	}

	// A second gap while the next hole's base is held.
	end2 := src.lastSeq()
	g2 := newGateStore(g.Store)
	g2.hold(end2, math.MaxUint64)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	r = start(t, src, g2, opts)
	waitFor(t, "the archive", func() bool { return r.a.Stats().ArchivedSequence == end2 })
	src.writeTrimmed(rng, 100, 30)
	waitFor(t, "the second hole's base at the gate", func() bool { _, inflight, _ := g2.state(); return inflight > 0 })
	src.write(rng, 10)
	waitFor(t, "the batches after its checkpoint", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	src.writeTrimmed(rng, 100, 30) // the third gap: it waits for the held base
	src.write(rng, 10)
	g2.release()
	waitFor(t, "both holes ended", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() && holesEnded(t, g2) })
	if n := r.a.Stats().Holes; n != 2 {
		t.Fatalf("%d holes counted after the restart, want 2: one per gap", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m := checkBasesWhole(t, g2)
	if len(m.Holes) != 3 || m.Holes[0].From != end+1 || m.Holes[1].From != end2+1 {
		t.Fatalf("holes %+v, want three: from %d, from %d and the third gap's", m.Holes, end+1, end2+1)
	}
	for _, h := range m.Holes {
		if !hasBaseAt(m, h.To) {
			t.Fatalf("hole %+v ends at no base (bases %+v)", h, m.Bases)
		}
	}
	if rep, err = restore.Verify(ctx, g2, restore.VerifyOptions{}); err != nil || len(rep.Problems) > 0 {
		t.Fatalf("verify: %v %+v", err, rep)
	}
	_, rs := restorable(t, g2)
	if len(rs) < 2 || rs[len(rs)-2].From != m.Holes[1].To || rs[len(rs)-2].To+1 != m.Holes[2].From || rs[len(rs)-1].To != src.lastSeq() {
		t.Fatalf("restorable %+v, holes %+v: want the second hole's base restorable up to the third gap, and the end", rs, m.Holes)
	}
}

// checkOpenHole checks that the manifest holds one hole, from end+1 and
// open, and that nothing after end is restorable.
func checkOpenHole(t *testing.T, g *gateStore, end uint64) {
	t.Helper()
	m, rs := restorable(t, g)
	if h := m.Holes; len(h) != 1 || h[0].From != end+1 || h[0].To != manifest.MaxSequence {
		t.Fatalf("holes %+v, want one, from %d, open", h, end+1)
	}
	nothingAfter(t, rs, end)
}

// restorable is the manifest of the archive in s and what status calls
// restorable on timeline 1.
func restorable(t *testing.T, s objstore.Store) (*manifest.Manifest, []manifest.Range) {
	t.Helper()
	m, cov := coverage(t, s)
	return m, cov[0].Ranges
}

// coverage is the manifest of the archive in s and what status calls
// restorable, per timeline.
func coverage(t *testing.T, s objstore.Store) (*manifest.Manifest, []manifest.Coverage) {
	t.Helper()
	c, err := catalog.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	cov, err := manifest.Restorable(c.Manifest, c.Ranges())
	if err != nil {
		t.Fatal(err)
	}
	return c.Manifest, cov
}

// nothingAfter fails when a range of rs reaches past end, where an open
// hole starts.
func nothingAfter(t *testing.T, rs []manifest.Range, end uint64) {
	t.Helper()
	for _, rg := range rs {
		if rg.To > end {
			t.Fatalf("restorable %d..%d while the hole from %d is open", rg.From, rg.To, end+1)
		}
	}
}
