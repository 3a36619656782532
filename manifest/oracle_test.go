package manifest_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/rockstream/rockstream/manifest"
)

// The tests in this file check Restorable and PlanRestore on random small
// archives against a slow model that looks at one sequence at a time.

const modelMax = 120 // sequences of the random archives are below this

// randomArchive makes an archive of up to 4 timelines with random
// segments, gaps, holes and bases, all valid.
func randomArchive(t *testing.T, rng *rand.Rand) *archive {
	a := newArchive()
	for n := rng.IntN(4); n > 0; n-- {
		parent := a.m.Timelines[rng.IntN(len(a.m.Timelines))]
		at := parent.Branch + uint64(rng.IntN(40))
		a.branch(t, parent.ID, at)
	}
	for _, tl := range a.m.Timelines {
		a.randomSegments(rng, tl)
		a.randomHoles(rng, tl)
		for n := rng.IntN(3); n > 0; n-- {
			seq := tl.Branch + uint64(rng.IntN(modelMax-int(tl.Branch)))
			if !a.hasBase(tl.ID, seq) {
				a.base(tl.ID, seq)
			}
		}
	}
	if err := a.m.Validate(); err != nil {
		t.Fatal(err)
	}
	return a
}

func (a *archive) randomSegments(rng *rand.Rand, tl manifest.Timeline) {
	pos := tl.Branch + 1 + uint64(rng.IntN(3))
	for pos < modelMax {
		if rng.IntN(6) == 0 {
			pos += uint64(rng.IntN(10)) // a gap
		}
		next := pos + uint64(rng.IntN(12)) // may be empty
		a.segs[tl.ID] = append(a.segs[tl.ID], manifest.Segment{First: pos, Next: next})
		pos = max(next, pos+1)
	}
	rng.Shuffle(len(a.segs[tl.ID]), func(i, j int) {
		a.segs[tl.ID][i], a.segs[tl.ID][j] = a.segs[tl.ID][j], a.segs[tl.ID][i]
	})
}

func (a *archive) randomHoles(rng *rand.Rand, tl manifest.Timeline) {
	pos := tl.Branch + 1
	for n := rng.IntN(3); n > 0 && pos < modelMax; n-- {
		from := pos + uint64(rng.IntN(40))
		to := from + uint64(rng.IntN(5))
		a.hole(tl.ID, from, to)
		pos = to + 1
	}
}

func (a *archive) hasBase(tl uint32, seq uint64) bool {
	for _, b := range a.m.Bases {
		if b.Timeline == tl && b.Sequence == seq {
			return true
		}
	}
	return false
}

// owner returns the timeline whose batch s is in the history of tl.
func (a *archive) owner(tl uint32, s uint64) uint32 {
	for {
		t, _ := a.m.Timeline(tl)
		if t.Parent == 0 || s > t.Branch {
			return tl
		}
		tl = t.Parent
	}
}

// present reports whether the batch at sequence s of tl's history is in
// the archive: a segment of its owner covers it and no hole does.
func (a *archive) present(tl uint32, s uint64) bool {
	o := a.owner(tl, s)
	for _, h := range a.m.Holes {
		if h.Timeline == o && h.From <= s && s <= h.To {
			return false
		}
	}
	for _, g := range a.segs[o] {
		if g.First <= s && s < g.Next {
			return true
		}
	}
	return false
}

// inHistory reports whether base b is a state of tl's history: its
// timeline is tl or an ancestor, and it is not after the point where the
// history leaves that timeline.
func (a *archive) inHistory(tl uint32, b manifest.Base) bool {
	limit := uint64(math.MaxUint64)
	for id := tl; id != 0; {
		t, _ := a.m.Timeline(id)
		if id == b.Timeline {
			return b.Sequence <= limit
		}
		limit, id = t.Branch, t.Parent
	}
	return false
}

// reaches reports whether base b of tl's history reaches n.
func (a *archive) reaches(tl uint32, b manifest.Base, n uint64) bool {
	if !a.inHistory(tl, b) || b.Sequence > n {
		return false
	}
	for s := b.Sequence + 1; s <= n; s++ {
		if !a.present(tl, s) {
			return false
		}
	}
	return true
}

// modelRanges is what the model says is restorable on tl.
func (a *archive) modelRanges(tl uint32) []manifest.Range {
	out := []manifest.Range{}
	for n := uint64(0); n <= modelMax+20; n++ {
		if _, ok := a.modelBase(tl, n); !ok {
			continue
		}
		if k := len(out); k > 0 && out[k-1].To+1 == n {
			out[k-1].To = n
		} else {
			out = append(out, manifest.Range{From: n, To: n})
		}
	}
	return out
}

// modelBase is the base with the highest sequence that reaches n on tl.
func (a *archive) modelBase(tl uint32, n uint64) (manifest.Base, bool) {
	var best manifest.Base
	found := false
	for _, b := range a.m.Bases {
		if a.reaches(tl, b, n) && (!found || b.Sequence > best.Sequence) {
			best, found = b, true
		}
	}
	return best, found
}

func TestRangesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 150 {
		a := randomArchive(t, rng)
		cov, err := manifest.Restorable(a.m, a.segs)
		if err != nil {
			t.Fatalf("archive %d: %v", i, err)
		}
		for _, c := range cov {
			if want := a.modelRanges(c.Timeline); !reflect.DeepEqual(c.Ranges, want) {
				t.Fatalf("archive %d timeline %d: ranges %v, model %v\nmanifest %+v\nsegments %v",
					i, c.Timeline, c.Ranges, want, a.m, a.segs)
			}
			for _, n := range targets(rng, c.Ranges) {
				a.checkPlan(t, c.Timeline, n)
			}
		}
	}
}

// targets returns the sequences to plan a restore to: the ends of the
// ranges and their neighbours, and a few at random.
func targets(rng *rand.Rand, rs []manifest.Range) []uint64 {
	out := []uint64{0}
	for _, r := range rs {
		out = append(out, r.From-min(r.From, 1), r.From, r.From+1, r.To-min(r.To, 1), r.To, r.To+1)
	}
	for range 10 {
		out = append(out, rng.Uint64N(modelMax+20))
	}
	return out
}

// checkPlan checks PlanRestore(tl, n) against the model: refused when no
// base reaches n; else from the best base, steps that chain without a gap
// through segments that hold their sequences.
func (a *archive) checkPlan(t *testing.T, tl uint32, n uint64) {
	t.Helper()
	p, err := manifest.PlanRestore(a.m, a.segs, tl, n)
	want, ok := a.modelBase(tl, n)
	if !ok {
		if !errors.Is(err, manifest.ErrNotRestorable) {
			t.Fatalf("PlanRestore(%d, %d) = %+v, %v; the model says not restorable", tl, n, p, err)
		}
		return
	}
	if err != nil {
		t.Fatalf("PlanRestore(%d, %d): %v", tl, n, err)
	}
	if p.Base.Sequence != want.Sequence {
		t.Fatalf("PlanRestore(%d, %d) starts at base %d, the model at %d", tl, n, p.Base.Sequence, want.Sequence)
	}
	after := p.Base.Sequence
	for _, s := range p.Steps {
		if s.After != after || s.StopAt <= s.After || !a.stepHolds(tl, s) {
			t.Fatalf("PlanRestore(%d, %d): bad step %+v after %d in %+v", tl, n, s, after, p.Steps)
		}
		after = s.StopAt
	}
	if after != n {
		t.Fatalf("PlanRestore(%d, %d) stops at %d", tl, n, after)
	}
}

// stepHolds reports whether the step's segment exists and holds the
// batches After+1 to StopAt of tl's history.
func (a *archive) stepHolds(tl uint32, s manifest.Step) bool {
	stl, first, err := manifest.ParseSegmentKey(s.Key)
	if err != nil || stl != s.Timeline {
		return false
	}
	for _, g := range a.segs[stl] {
		if g.First != first {
			continue
		}
		if g.First > s.After+1 || g.Next <= s.StopAt {
			return false
		}
		return a.owner(tl, s.After+1) == stl && a.owner(tl, s.StopAt) == stl
	}
	return false
}
