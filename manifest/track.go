package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
)

// newTrack checks and indexes the segments of timeline t, with the holes
// and bases the manifest lists on t.
func newTrack(t Timeline, segs []Segment, holes []Hole, bases []Base) (*track, error) {
	segs = slices.Clone(segs)
	slices.SortFunc(segs, func(a, b Segment) int { return cmp.Compare(a.First, b.First) })
	for i, s := range segs {
		if err := checkSegment(t, s, segs[:i]); err != nil {
			return nil, err
		}
	}
	holes = slices.Clone(holes)
	slices.SortFunc(holes, func(a, b Hole) int { return cmp.Compare(a.From, b.From) })
	tr := &track{segs: segs, holes: holes, runs: subtractHoles(contiguous(segs), holes)}
	tr.gaps, tr.end = findGaps(t, segs, firstStart(t, segs, bases))
	return tr, nil
}

// checkSegment checks segment s of timeline t against the segments
// before it.
func checkSegment(t Timeline, s Segment, before []Segment) error {
	bad := func(format string, args ...any) error {
		return invalid("segment "+SegmentKey(t.ID, s.First), format, args...)
	}
	switch {
	case s.Next < s.First:
		return bad("next sequence %d is before its first %d", s.Next, s.First)
	case s.Next > MaxSequence+1:
		return bad("next sequence %d is beyond the largest sequence", s.Next)
	case t.Parent != 0 && s.First <= t.Branch:
		return bad("starts at or before the branch point %d of timeline %d", t.Branch, t.ID)
	}
	if n := len(before); n > 0 {
		p := before[n-1]
		if s.First == p.First || s.First < p.Next {
			return bad("[%d, %d) overlaps [%d, %d)", s.First, s.Next, p.First, p.Next)
		}
	}
	return nil
}

// contiguous merges sorted, disjoint segments into the ranges of
// sequences they cover.
func contiguous(segs []Segment) []Range {
	var out []Range
	for _, s := range segs {
		if s.Next == s.First {
			continue
		}
		if n := len(out); n > 0 && out[n-1].To+1 == s.First {
			out[n-1].To = s.Next - 1
			continue
		}
		out = append(out, Range{From: s.First, To: s.Next - 1})
	}
	return out
}

// subtractHoles removes the holes (sorted, disjoint) from the runs
// (sorted, disjoint).
func subtractHoles(runs []Range, holes []Hole) []Range {
	var out []Range
	j := 0
	for _, r := range runs {
		for j < len(holes) && holes[j].To < r.From {
			j++
		}
		from := r.From
		for k := j; k < len(holes) && holes[k].From <= r.To; k++ {
			if holes[k].From > from {
				out = append(out, Range{From: from, To: holes[k].From - 1})
			}
			from = max(from, holes[k].To+1)
		}
		if from <= r.To {
			out = append(out, Range{From: from, To: r.To})
		}
	}
	return out
}

// firstStart is where timeline t's own history starts to be looked for
// gaps: after its branch point, or for the first timeline at its earliest
// segment or just after its earliest base.
func firstStart(t Timeline, segs []Segment, bases []Base) uint64 {
	if t.Parent != 0 {
		return t.Branch + 1
	}
	first := uint64(MaxSequence + 1)
	if len(segs) > 0 {
		first = segs[0].First
	}
	for _, b := range bases {
		first = min(first, b.Sequence+1)
	}
	return first
}

// findGaps returns the sequences from start to the end of the last
// segment that no segment of timeline t covers, and the sequence after
// the last segment (or start).
func findGaps(t Timeline, segs []Segment, start uint64) ([]Hole, uint64) {
	var out []Hole
	pos := start
	for i, s := range segs {
		if s.First > pos {
			reason := "no segment before " + SegmentKey(t.ID, s.First)
			if i > 0 {
				reason = fmt.Sprintf("gap between %s and %s", SegmentKey(t.ID, segs[i-1].First), SegmentKey(t.ID, s.First))
			}
			out = append(out, Hole{Timeline: t.ID, From: pos, To: s.First - 1, Reason: reason})
		}
		pos = max(pos, s.Next)
	}
	return out, pos
}

// runEnd returns the end of the run that holds sequence seq.
func (tr *track) runEnd(seq uint64) (uint64, bool) {
	i := sort.Search(len(tr.runs), func(i int) bool { return tr.runs[i].To >= seq })
	if i < len(tr.runs) && tr.runs[i].From <= seq {
		return tr.runs[i].To, true
	}
	return 0, false
}

// segmentAt returns the segment that holds sequence seq.
func (tr *track) segmentAt(seq uint64) (Segment, bool) {
	i := sort.Search(len(tr.segs), func(i int) bool { return tr.segs[i].First > seq }) - 1
	if i >= 0 && tr.segs[i].Next > seq {
		return tr.segs[i], true
	}
	return Segment{}, false
}

// recorded reports whether gap g lies inside a hole the manifest records.
func (tr *track) recorded(g Hole) bool {
	i := sort.Search(len(tr.holes), func(i int) bool { return tr.holes[i].From > g.From }) - 1
	return i >= 0 && tr.holes[i].To >= g.To
}
