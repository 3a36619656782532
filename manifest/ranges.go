package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Segment is one segment of a timeline as a listing shows it: the batches
// with sequences in [First, Next). First comes from its key; Next is the
// first sequence after its last batch, from the next segment's key or from
// the last segment's trailer. A segment without batches (an end-of-timeline
// marker) has Next == First.
type Segment struct {
	First uint64
	Next  uint64
}

// Range is a set of restorable sequences, From to To inclusive. A restore
// to any N in the range gives the database that holds exactly the batches
// of the timeline's history whose last sequence is at most N. From is a
// base's sequence; To is the last sequence of the last batch that an
// unbroken chain of segments from that base reaches.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

func (r Range) String() string { return fmt.Sprintf("[%d, %d]", r.From, r.To) }

// Coverage is what can be restored on one timeline.
type Coverage struct {
	Timeline uint32 `json:"timeline"`
	// Ranges are the restorable ranges, in order, disjoint and not
	// adjacent (adjacent ones are merged).
	Ranges []Range `json:"ranges"`
	// Holes are the missing ranges of the timeline's history: the holes
	// the manifest records and the gaps between its segments (after the
	// oldest base of the history: the sequences before it are no
	// restore's), of the timeline itself and of its ancestors up to each
	// branch point, in order of From. A gap has a zero Detected time.
	Holes []Hole `json:"holes"`
}

// Plan says what a restore to Target on Timeline reads: Base, then the
// batches of each step in order.
type Plan struct {
	Timeline uint32
	Target   uint64
	Base     Base
	Steps    []Step
	// CFChanges are the column families created or dropped between the
	// base and the target, in order (see ColumnFamilyChange).
	CFChanges []ColumnFamilyChange
}

// Step is one segment of a restore plan. The restore applies the segment's
// batches whose last sequence is above After (the sequence the database
// holds when the step starts) and at most StopAt, and stops at the first
// batch that ends after StopAt.
type Step struct {
	Timeline uint32
	Key      string
	After    uint64
	StopAt   uint64
}

// Restorable computes, per timeline of m in order of id, the restorable
// ranges and the holes, given each timeline's segments (in any order).
// Segments of timelines that m does not list are ignored. The segments of
// one timeline must not overlap, and a child timeline's must start after
// its branch point.
func Restorable(m *Manifest, segs map[uint32][]Segment) ([]Coverage, error) {
	h, err := newHistory(m, segs)
	if err != nil {
		return nil, err
	}
	out := make([]Coverage, 0, len(m.Timelines))
	for _, id := range h.ids() {
		out = append(out, h.coverage(id))
	}
	return out, nil
}

// PlanRestore returns the plan of a restore to sequence target on timeline
// tl: the base with the highest sequence that reaches target, and the
// segments from it to target. A target outside every range fails with
// ErrNotRestorable and the restorable ranges in the message.
func PlanRestore(m *Manifest, segs map[uint32][]Segment, tl uint32, target uint64) (*Plan, error) {
	h, err := newHistory(m, segs)
	if err != nil {
		return nil, err
	}
	if _, ok := h.timelines[tl]; !ok {
		return nil, fmt.Errorf("plan restore to %d on timeline %d: %w: no such timeline", target, tl, ErrNotRestorable)
	}
	line := h.lineage(tl)
	best, ok := bestStart(h.starts(line), target)
	if !ok {
		return nil, fmt.Errorf("plan restore to %d on timeline %d: %w; restorable: %s",
			target, tl, ErrNotRestorable, RangesText(h.coverage(tl).Ranges))
	}
	steps, err := h.steps(line, best, target)
	if err != nil {
		return nil, fmt.Errorf("plan restore to %d on timeline %d: %w", target, tl, err)
	}
	changes := m.CFChangesBetween(m.Lineage(tl), best.base.Sequence, target)
	return &Plan{Timeline: tl, Target: target, Base: best.base, Steps: steps, CFChanges: changes}, nil
}

// history is a manifest with the segments of its timelines, indexed.
type history struct {
	timelines map[uint32]Timeline
	bases     map[uint32][]Base // by timeline
	tracks    map[uint32]*track
}

// track is what one timeline's own segments cover.
type track struct {
	segs  []Segment // sorted by First, disjoint
	holes []Hole    // recorded in the manifest, sorted by From, disjoint
	runs  []Range   // sequences that segments cover and no recorded hole cuts
	gaps  []Hole    // sequences that no segment covers, up to end
	end   uint64    // the sequence after the last segment
}

// start is a base and how far an unbroken chain from it reaches.
type start struct {
	base  Base
	piece int // index of the base's timeline in the lineage
	reach uint64
}

func newHistory(m *Manifest, segs map[uint32][]Segment) (*history, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	h := &history{timelines: make(map[uint32]Timeline), bases: make(map[uint32][]Base), tracks: make(map[uint32]*track)}
	holes := make(map[uint32][]Hole)
	for _, x := range m.Holes {
		holes[x.Timeline] = append(holes[x.Timeline], x)
	}
	for _, b := range m.Bases {
		h.bases[b.Timeline] = append(h.bases[b.Timeline], b)
	}
	for _, t := range m.Timelines {
		h.timelines[t.ID] = t
		tr, err := newTrack(t, segs[t.ID], holes[t.ID], h.bases[t.ID])
		if err != nil {
			return nil, err
		}
		h.tracks[t.ID] = tr
	}
	return h, nil
}

func (h *history) ids() []uint32 {
	ids := make([]uint32, 0, len(h.timelines))
	for id := range h.timelines {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// lineage returns the pieces of the history of timeline tl, oldest first.
func (h *history) lineage(tl uint32) []Piece {
	return lineageOf(func(id uint32) (Timeline, bool) { t, ok := h.timelines[id]; return t, ok }, tl)
}

// starts returns the bases of the history line with their reach.
func (h *history) starts(line []Piece) []start {
	var out []start
	for i, p := range line {
		for _, b := range h.bases[p.Timeline] {
			if b.Sequence <= p.To {
				out = append(out, start{base: b, piece: i, reach: h.reach(line, i, b.Sequence)})
			}
		}
	}
	return out
}

// reach follows the segments from sequence seq of piece i of a history
// line and returns the last sequence an unbroken chain reaches.
func (h *history) reach(line []Piece, i int, seq uint64) uint64 {
	for {
		p := line[i]
		if seq >= p.To {
			i++
			continue
		}
		end, ok := h.tracks[p.Timeline].runEnd(seq + 1)
		if !ok {
			return seq
		}
		if end < p.To {
			return end
		}
		seq = p.To
	}
}

// bestStart picks, among the starts that reach target, the one with the
// highest sequence, and of those the one on the latest timeline.
func bestStart(starts []start, target uint64) (start, bool) {
	var best start
	found := false
	for _, s := range starts {
		if s.base.Sequence > target || s.reach < target {
			continue
		}
		if !found || s.base.Sequence > best.base.Sequence ||
			s.base.Sequence == best.base.Sequence && s.piece > best.piece {
			best, found = s, true
		}
	}
	return best, found
}

// steps lists the segments from start s to target.
func (h *history) steps(line []Piece, s start, target uint64) ([]Step, error) {
	var out []Step
	after, i := s.base.Sequence, s.piece
	for after < target {
		p := line[i]
		if after >= p.To {
			i++
			continue
		}
		seg, ok := h.tracks[p.Timeline].segmentAt(after + 1)
		if !ok {
			return nil, fmt.Errorf("no segment of timeline %d holds sequence %d", p.Timeline, after+1)
		}
		stop := min(seg.Next-1, p.To, target)
		out = append(out, Step{Timeline: p.Timeline, Key: SegmentKey(p.Timeline, seg.First), After: after, StopAt: stop})
		after = stop
	}
	return out, nil
}

// coverage returns the ranges and holes of timeline tl.
func (h *history) coverage(tl uint32) Coverage {
	line := h.lineage(tl)
	c := Coverage{Timeline: tl, Ranges: []Range{}, Holes: []Hole{}}
	low := uint64(0) // gaps up to the oldest base of the line are no one's
	for i, s := range h.starts(line) {
		c.Ranges = append(c.Ranges, Range{From: s.base.Sequence, To: s.reach})
		if i == 0 || s.base.Sequence < low {
			low = s.base.Sequence
		}
	}
	c.Ranges = mergeRanges(c.Ranges)
	for i, p := range line {
		c.Holes = append(c.Holes, h.holesIn(p, i < len(line)-1, low)...)
	}
	c.Holes = missing(c.Holes, c.Ranges)
	return c
}

// missing cuts from the holes the sequences that the ranges restore: a
// recorded hole runs to the sequence of the base taken after it (FORMAT.md,
// "A hole is recorded before what follows it"), which is restorable, so a
// hole shows exactly the sequences that no restore reaches.
func missing(holes []Hole, ranges []Range) []Hole {
	out := []Hole{}
	for _, x := range holes {
		for _, r := range ranges {
			if r.To < x.From || r.From > x.To || x.From > x.To {
				continue
			}
			if r.From > x.From {
				left := x
				left.To = r.From - 1
				out = append(out, left)
			}
			x.From = r.To + 1 // r.To <= MaxSequence: no overflow
		}
		if x.From <= x.To {
			out = append(out, x)
		}
	}
	return out
}

// holesIn returns the recorded holes and the gaps of piece p, cut to it.
// A gap that lies inside a recorded hole is left out, and so is one that
// ends at or before low, the oldest base of the history (no restore reads
// it: a prune deleted those segments, or the archive began later). When
// the history goes on in a child (inner), the sequences up to the branch
// point that the segments do not reach are a gap too.
func (h *history) holesIn(p Piece, inner bool, low uint64) []Hole {
	tr := h.tracks[p.Timeline]
	gaps := tr.gaps
	if from := max(tr.end, p.From); inner && from <= p.To {
		gaps = append(slices.Clone(gaps), Hole{Timeline: p.Timeline, From: from, To: p.To,
			Reason: fmt.Sprintf("the segments of timeline %d end before the branch point %d", p.Timeline, p.To)})
	}
	all := slices.Clone(tr.holes)
	for _, g := range gaps {
		if !tr.recorded(g) && min(g.To, p.To) > low {
			all = append(all, g)
		}
	}
	var out []Hole
	for _, x := range all {
		if x.To >= p.From && x.From <= p.To {
			x.From, x.To = max(x.From, p.From), min(x.To, p.To)
			out = append(out, x)
		}
	}
	slices.SortFunc(out, func(a, b Hole) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	return out
}

func mergeRanges(rs []Range) []Range {
	slices.SortFunc(rs, func(a, b Range) int { return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To)) })
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && r.From <= out[n-1].To+1 {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return nonNil(out)
}

// RangesText lists ranges for people ("[10, 20], [31, 40]"), or "none".
func RangesText(rs []Range) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	return strings.Join(parts, ", ")
}
