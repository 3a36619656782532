package manifest_test

import (
	"reflect"
	"testing"

	"github.com/rockstream/rockstream/manifest"
)

// archive builds a manifest and its segments for the range tests.
type archive struct {
	m    *manifest.Manifest
	segs map[uint32][]manifest.Segment
}

func newArchive() *archive {
	return &archive{m: manifest.New("id", t0), segs: map[uint32][]manifest.Segment{}}
}

func (a *archive) branch(t *testing.T, parent uint32, at uint64) uint32 {
	t.Helper()
	tl, err := a.m.AddTimeline(parent, at, t0)
	if err != nil {
		t.Fatal(err)
	}
	return tl.ID
}

func (a *archive) base(tl uint32, seq uint64) *archive {
	a.m.Bases = append(a.m.Bases, manifest.Base{Timeline: tl, Sequence: seq, FileList: manifest.FileListKey(tl, seq), FileCount: 1})
	return a
}

func (a *archive) hole(tl uint32, from, to uint64) *archive {
	a.m.Holes = append(a.m.Holes, manifest.Hole{Timeline: tl, From: from, To: to, Reason: "test"})
	return a
}

// chain adds contiguous segments of timeline tl: [b0, b1), [b1, b2)...
func (a *archive) chain(tl uint32, bounds ...uint64) *archive {
	for i := 1; i < len(bounds); i++ {
		a.segs[tl] = append(a.segs[tl], manifest.Segment{First: bounds[i-1], Next: bounds[i]})
	}
	return a
}

func (a *archive) coverage(t *testing.T, tl uint32) manifest.Coverage {
	t.Helper()
	cov, err := manifest.Restorable(a.m, a.segs)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cov {
		if c.Timeline == tl {
			return c
		}
	}
	t.Fatalf("no coverage of timeline %d in %+v", tl, cov)
	return manifest.Coverage{}
}

func (a *archive) wantRanges(t *testing.T, tl uint32, want ...manifest.Range) {
	t.Helper()
	got := a.coverage(t, tl).Ranges
	if want == nil {
		want = []manifest.Range{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeline %d ranges = %v, want %v", tl, got, want)
	}
}

// span is a hole as [From, To] on a timeline, for comparisons.
type span struct {
	tl       uint32
	from, to uint64
}

func (a *archive) wantHoles(t *testing.T, tl uint32, want ...span) {
	t.Helper()
	var got []span
	for _, h := range a.coverage(t, tl).Holes {
		got = append(got, span{h.Timeline, h.From, h.To})
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timeline %d holes = %v, want %v", tl, got, want)
	}
}

func r(from, to uint64) manifest.Range { return manifest.Range{From: from, To: to} }

func TestRangesOneTimeline(t *testing.T) {
	a := newArchive().base(1, 100).chain(1, 101, 201, 301)
	a.wantRanges(t, 1, r(100, 300))
	a.wantHoles(t, 1)

	// A base in the middle of a segment; one before the first segment.
	a = newArchive().base(1, 150).chain(1, 101, 201, 301)
	a.wantRanges(t, 1, r(150, 300))
	a = newArchive().base(1, 50).chain(1, 101, 201)
	a.wantRanges(t, 1, r(50, 50))
	a.wantHoles(t, 1, span{1, 51, 100})

	// No base: nothing to restore from.
	newArchive().chain(1, 1, 100).wantRanges(t, 1)
	// A base without segments is restorable at its own sequence only.
	newArchive().base(1, 7).wantRanges(t, 1, r(7, 7))
}

func TestRangesGapsAndHoles(t *testing.T) {
	// A gap in the listing.
	a := newArchive().base(1, 100).chain(1, 101, 201).chain(1, 250, 301).base(1, 260)
	a.wantRanges(t, 1, r(100, 200), r(260, 300))
	a.wantHoles(t, 1, span{1, 201, 249})

	// A recorded hole inside a segment (whose Next came from the next key).
	a = newArchive().base(1, 100).chain(1, 101, 201, 301).hole(1, 180, 220).base(1, 230)
	a.wantRanges(t, 1, r(100, 179), r(230, 300))
	a.wantHoles(t, 1, span{1, 180, 220})

	// A base inside a recorded hole reaches past it.
	a = newArchive().base(1, 100).chain(1, 101, 201, 301).hole(1, 180, 220).base(1, 220)
	a.wantRanges(t, 1, r(100, 179), r(220, 300))

	// A recorded hole that is also a gap is listed once.
	a = newArchive().base(1, 100).chain(1, 101, 201).chain(1, 250, 301).hole(1, 201, 249)
	a.wantHoles(t, 1, span{1, 201, 249})
}

func TestRangesMerge(t *testing.T) {
	// Two bases on one chain, and adjacent ranges, merge.
	a := newArchive().base(1, 100).base(1, 200).chain(1, 101, 201, 301)
	a.wantRanges(t, 1, r(100, 300))
	a = newArchive().base(1, 100).chain(1, 101, 151).base(1, 151).chain(1, 160, 171)
	a.wantRanges(t, 1, r(100, 151))
	a = newArchive().base(1, 100).chain(1, 101, 151).base(1, 150).chain(1, 152, 171).base(1, 151)
	a.wantRanges(t, 1, r(100, 170))
}

func TestRangesEndMarker(t *testing.T) {
	a := newArchive().base(1, 100).chain(1, 101, 201)
	a.segs[1] = append(a.segs[1], manifest.Segment{First: 201, Next: 201})
	a.wantRanges(t, 1, r(100, 200))
	a.wantHoles(t, 1)
}

// branched is timeline 1 with a base at 100 and segments to 400, timeline
// 2 branched at 250 with segments to 350, and timeline 3 branched from 2
// at 320 with segments to 500.
func branched(t *testing.T) *archive {
	a := newArchive().base(1, 100).chain(1, 101, 201, 301, 401)
	tl2 := a.branch(t, 1, 250)
	a.chain(tl2, 251, 301, 351)
	tl3 := a.branch(t, tl2, 320)
	a.chain(tl3, 321, 500)
	return a
}

func TestRangesBranches(t *testing.T) {
	a := branched(t)
	a.wantRanges(t, 1, r(100, 400))
	a.wantRanges(t, 2, r(100, 350))
	a.wantRanges(t, 3, r(100, 499))

	// A base of the parent after the branch point is not the child's; one
	// exactly at it is.
	a = branched(t).base(1, 300)
	a.wantRanges(t, 2, r(100, 350))
	a = newArchive().chain(1, 101, 201, 301).base(1, 250)
	a.chain(a.branch(t, 1, 250), 251, 301)
	a.wantRanges(t, 2, r(250, 300))

	// The parent's chain broken before the branch point: the child's range
	// ends there, and its own base starts another.
	a = newArchive().base(1, 100).chain(1, 101, 201)
	tl2 := a.branch(t, 1, 250)
	a.chain(tl2, 251, 301).base(tl2, 260)
	a.wantRanges(t, tl2, r(100, 200), r(260, 300))
	a.wantHoles(t, tl2, span{1, 201, 250})

	// A hole of the parent after the branch point does not cut the child.
	a = branched(t).hole(1, 260, 270)
	a.wantRanges(t, 1, r(100, 259))
	a.wantRanges(t, 2, r(100, 350))
	a.wantHoles(t, 2)
	// One before it does, and shows in the child's holes.
	a = branched(t).hole(1, 150, 160)
	a.wantRanges(t, 3, r(100, 149))
	a.wantHoles(t, 3, span{1, 150, 160})

	// A child with no segments yet holds the parent's history to the
	// branch point.
	a = newArchive().base(1, 100).chain(1, 101, 201, 301)
	a.branch(t, 1, 250)
	a.wantRanges(t, 2, r(100, 250))
	// A child whose first segment starts late has a gap after the branch.
	a = newArchive().base(1, 100).chain(1, 101, 301)
	a.chain(a.branch(t, 1, 250), 260, 301)
	a.wantRanges(t, 2, r(100, 250))
	a.wantHoles(t, 2, span{2, 251, 259})
}

// TestRangesPrunedHistory: after a prune, a child timeline's segments
// start after its oldest base, well after its branch point. The sequences
// before that base are no timeline's to restore: not a hole. A gap after
// it still is.
func TestRangesPrunedHistory(t *testing.T) {
	a := newArchive().base(1, 260).chain(1, 240, 270)
	tl2 := a.branch(t, 1, 250)
	a.base(tl2, 330).chain(tl2, 320, 340).chain(tl2, 350, 401)
	a.wantRanges(t, tl2, r(330, 339))
	a.wantHoles(t, tl2, span{tl2, 340, 349})
	a.wantRanges(t, 1, r(260, 269))
	a.wantHoles(t, 1)
}

func TestRangesRefuseBadSegments(t *testing.T) {
	tests := []struct {
		name string
		segs []manifest.Segment
		tl   uint32
	}{
		{"overlap", []manifest.Segment{{101, 201}, {150, 250}}, 1},
		{"duplicate", []manifest.Segment{{101, 101}, {101, 201}}, 1},
		{"backward", []manifest.Segment{{201, 101}}, 1},
		{"beyond the largest sequence", []manifest.Segment{{101, manifest.MaxSequence + 2}}, 1},
		{"child before its branch", []manifest.Segment{{250, 300}}, 2},
	}
	for _, tt := range tests {
		a := newArchive().base(1, 100)
		a.branch(t, 1, 250)
		a.segs[tt.tl] = tt.segs
		_, err := manifest.Restorable(a.m, a.segs)
		wantErr(t, err, manifest.ErrInvalid, "segment segments/")
		_, err = manifest.PlanRestore(a.m, a.segs, 1, 100)
		wantErr(t, err, manifest.ErrInvalid)
	}
	// Segments of a timeline the manifest does not know are ignored.
	a := newArchive().base(1, 100).chain(1, 101, 201).chain(9, 1, 2)
	a.wantRanges(t, 1, r(100, 200))
	// So is an invalid manifest refused.
	a.m.Holes = append(a.m.Holes, manifest.Hole{Timeline: 1, From: 5, To: 1, Reason: "x"})
	_, err := manifest.Restorable(a.m, a.segs)
	wantErr(t, err, manifest.ErrInvalid, "holes[0].from")
}

func step(tl uint32, first, after, stop uint64) manifest.Step {
	return manifest.Step{Timeline: tl, Key: manifest.SegmentKey(tl, first), After: after, StopAt: stop}
}

func TestPlanRestore(t *testing.T) {
	a := branched(t).base(1, 200).base(2, 300)
	tests := []struct {
		tl     uint32
		target uint64
		base   uint64
		steps  []manifest.Step
	}{
		{1, 100, 100, nil},
		{1, 150, 100, []manifest.Step{step(1, 101, 100, 150)}},
		{1, 250, 200, []manifest.Step{step(1, 201, 200, 250)}},
		{1, 400, 200, []manifest.Step{step(1, 201, 200, 300), step(1, 301, 300, 400)}},
		{2, 199, 100, []manifest.Step{step(1, 101, 100, 199)}},
		{2, 290, 200, []manifest.Step{step(1, 201, 200, 250), step(2, 251, 250, 290)}},
		{2, 300, 300, nil},
		{2, 350, 300, []manifest.Step{step(2, 301, 300, 350)}},
		{3, 499, 300, []manifest.Step{step(2, 301, 300, 320), step(3, 321, 320, 499)}},
		{3, 250, 200, []manifest.Step{step(1, 201, 200, 250)}},
	}
	for _, tt := range tests {
		p, err := manifest.PlanRestore(a.m, a.segs, tt.tl, tt.target)
		if err != nil {
			t.Errorf("PlanRestore(%d, %d): %v", tt.tl, tt.target, err)
			continue
		}
		if p.Timeline != tt.tl || p.Target != tt.target || p.Base.Sequence != tt.base || !reflect.DeepEqual(p.Steps, tt.steps) {
			t.Errorf("PlanRestore(%d, %d) = base %d steps %+v; want base %d steps %+v",
				tt.tl, tt.target, p.Base.Sequence, p.Steps, tt.base, tt.steps)
		}
	}
}

// TestPlanRestorePrefersOwnBase checks the tie between two bases at one
// sequence, the parent's at the branch point and the child's: the child's
// wins.
func TestPlanRestorePrefersOwnBase(t *testing.T) {
	a := newArchive().chain(1, 101, 301).base(1, 250)
	tl2 := a.branch(t, 1, 250)
	a.chain(tl2, 251, 301).base(tl2, 250)
	p, err := manifest.PlanRestore(a.m, a.segs, tl2, 300)
	if err != nil || p.Base.Timeline != tl2 {
		t.Fatalf("PlanRestore = %+v, %v; want the base of timeline %d", p, err, tl2)
	}
}

func BenchmarkRestorable(b *testing.B) {
	a := newArchive()
	const segs, every = 200_000, 2000
	for i := range uint64(segs) {
		a.chain(1, 1+i*1000, 1+(i+1)*1000)
		if i%every == 0 {
			a.base(1, i*1000)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := manifest.Restorable(a.m, a.segs); err != nil {
			b.Fatal(err)
		}
		if _, err := manifest.PlanRestore(a.m, a.segs, 1, segs*1000-5); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPlanRestoreRefuses(t *testing.T) {
	a := newArchive().base(1, 100).chain(1, 101, 201).chain(1, 250, 301).base(1, 260)
	for _, target := range []uint64{99, 201, 259, 301, manifest.MaxSequence} {
		_, err := manifest.PlanRestore(a.m, a.segs, 1, target)
		wantErr(t, err, manifest.ErrNotRestorable, "[100, 200], [260, 300]")
	}
	_, err := manifest.PlanRestore(a.m, a.segs, 7, 150)
	wantErr(t, err, manifest.ErrNotRestorable, "timeline 7")
	_, err = manifest.PlanRestore(newArchive().m, nil, 1, 1)
	wantErr(t, err, manifest.ErrNotRestorable, "restorable: none")
}
