package prune

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
)

// A property test of MakePlan over random archives: timelines with
// branches, holes and bases. After the plan's deletions, the ranges that
// the catalog infers from the segments left are exactly the model's, no
// sequence restorable before is lost, and no restore step reads a deleted
// segment.

// genTL is a generated timeline.
type genTL struct {
	id      uint32
	lo, end uint64 // own sequences start at lo; end = next after last
}

// genArchive builds a random archive: timeline 1, up to three children
// branched off random points, each a chain of segments with at most one
// hole (and the base taken after it), and up to three random bases per
// timeline, their times increasing with their sequence.
func genArchive(rng *rand.Rand) *archive {
	a := newArchive()
	tls := []genTL{}
	chainFrom := func(tl uint32, start uint64, withHole bool) uint64 {
		pos := start
		n := 2 + rng.Intn(6)
		holeAt := -1
		if withHole {
			holeAt = 1 + rng.Intn(n-1)
		}
		for i := 0; i < n; i++ {
			if i == holeAt {
				to := pos + 5 + uint64(rng.Intn(20))
				a.hole(tl, pos, to)
				a.base(tl, to, 0, fmt.Sprintf("h%d-%d.sst", tl, to))
				pos = to + 1
			}
			next := pos + 1 + uint64(rng.Intn(30))
			a.segment(tl, pos, next)
			pos = next
		}
		return pos
	}
	end := chainFrom(1, 1, rng.Intn(3) == 0)
	tls = append(tls, genTL{id: 1, lo: 1, end: end})
	for c := 0; c < rng.Intn(4); c++ {
		p := tls[rng.Intn(len(tls))]
		pt, _ := a.m.Timeline(p.id)
		minB := max(p.lo, pt.Branch)
		if p.end <= minB+1 {
			continue
		}
		b := minB + uint64(rng.Int63n(int64(p.end-minB)))
		if b >= p.end {
			b = p.end - 1
		}
		t, err := a.m.AddTimeline(p.id, b, now.Add(-50*day))
		if err != nil {
			continue
		}
		e := chainFrom(t.ID, b+1, rng.Intn(3) == 0)
		tls = append(tls, genTL{id: t.ID, lo: b + 1, end: e})
	}
	// bases: random, times increasing with sequence
	for _, g := range tls {
		t, _ := a.m.Timeline(g.id)
		lo := g.lo - 1
		if t.Parent != 0 {
			lo = t.Branch
		}
		for k := 0; k < rng.Intn(4); k++ {
			s := lo + uint64(rng.Int63n(int64(g.end-lo)))
			if s == 0 {
				s = 1
			}
			dup := false
			for _, b := range a.m.Bases {
				if b.Timeline == g.id && b.Sequence == s {
					dup = true
				}
			}
			if dup {
				continue
			}
			a.base(g.id, s, 0, fmt.Sprintf("s%d.sst", rng.Intn(8)))
		}
	}
	// times: by sequence
	for i := range a.m.Bases {
		a.m.Bases[i].Time = now.Add(-time.Duration(2000-a.m.Bases[i].Sequence) * time.Hour / 10)
	}
	return a
}

// reinfer is what catalog.Timeline infers from the keys left.
func reinfer(a *archive, gone map[string]bool) map[uint32][]manifest.Segment {
	out := map[uint32][]manifest.Segment{}
	for tl, segs := range a.segs {
		var left []catalog.Segment
		for _, s := range segs {
			if !gone[s.Key] {
				left = append(left, s)
			}
		}
		holes := catalog.HolesOf(a.m, tl)
		for i := range left {
			if i+1 < len(left) {
				left[i].Next = catalog.EndBefore(left[i].First, left[i+1].First, holes)
			}
			if left[i].Next > left[i].First {
				out[tl] = append(out[tl], left[i].Segment)
			}
		}
	}
	return out
}

func TestPlanProperty(t *testing.T) {
	var stats [4]int
	invalid := 0
	for seed := int64(0); seed < 3000; seed++ {
		rng := rand.New(rand.NewSource(seed))
		a := genArchive(rng)
		if err := a.m.Validate(); err != nil {
			invalid++
			continue
		}
		v := a.view()
		p := Policy{KeepLast: rng.Intn(3)}
		if p.KeepLast == 0 || rng.Intn(2) == 0 {
			p.KeepWithin = time.Duration(1+rng.Intn(100)) * time.Hour
		}
		pl, err := MakePlan(v, p, now, time.Hour)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		gone := keySet(pl.Delete)
		if len(a.m.Timelines) > 1 {
			stats[0]++
		}
		if len(a.m.Holes) > 0 {
			stats[1]++
		}
		for _, o := range pl.Delete {
			if o.Kind == KindSegment {
				stats[2]++
				break
			}
		}
		if len(a.m.Timelines) > 1 && len(pl.Dropped) > 0 {
			stats[3]++
		}
		inf := reinfer(a, gone)
		before, err := manifest.Restorable(pl.Manifest, segmentRanges(a.segs, nil))
		if err != nil {
			t.Fatal(err)
		}
		after, err := manifest.Restorable(pl.Manifest, inf)
		if err != nil {
			t.Fatalf("seed %d: after: %v", seed, err)
		}
		model, _ := manifest.Restorable(pl.Manifest, segmentRanges(a.segs, gone))
		for i := range before {
			if !slices.Equal(after[i].Ranges, model[i].Ranges) {
				t.Errorf("seed %d tl %d: catalog infers %v, truth %v", seed, before[i].Timeline, after[i].Ranges, model[i].Ranges)
			}
			for _, r := range before[i].Ranges {
				if !within(after[i].Ranges, r) {
					t.Errorf("seed %d tl %d: lost %v", seed, before[i].Timeline, r)
				}
				for _, n := range []uint64{r.From, r.To, (r.From + r.To) / 2} {
					rp, err := manifest.PlanRestore(pl.Manifest, inf, before[i].Timeline, n)
					if err != nil {
						t.Errorf("seed %d: plan %d: %v", seed, n, err)
						continue
					}
					for _, st := range rp.Steps {
						if gone[st.Key] {
							t.Errorf("seed %d: restore to %d reads deleted %s", seed, n, st.Key)
						}
					}
				}
			}
		}
	}
	t.Logf("3000 archives: %d invalid, %d with branches, %d with holes, %d deleting segments, %d with branches and drops",
		invalid, stats[0], stats[1], stats[2], stats[3])
	// The generator must reach the cases that matter, or the test shows
	// nothing.
	if invalid > 300 || stats[0] < 1000 || stats[1] < 1000 || stats[2] < 1000 || stats[3] < 500 {
		t.Errorf("the generator covers too little: %d invalid, stats %v", invalid, stats)
	}
}
