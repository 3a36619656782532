package prune

import (
	"fmt"
	"math"
	"strings"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
)

// reading is the part of timeline tl's segments that one timeline's
// restores read: sequences from to to, inclusive; all means every segment
// of tl (a timeline without a usable base keeps them all).
type reading struct {
	by       uint32 // the timeline whose restores read them
	from, to uint64
	all      bool
	low      uint64 // the oldest usable base of by, for messages
}

// readings returns, per timeline, what the restores of each timeline of m
// read of its segments, given that every base of m is kept: from the
// oldest base usable by the reader onward, along the reader's lineage.
func readings(m *manifest.Manifest) map[uint32][]reading {
	out := map[uint32][]reading{}
	for _, t := range m.Timelines {
		bases := usableBases(m, t.ID)
		if len(bases) == 0 {
			out[t.ID] = append(out[t.ID], reading{by: t.ID, to: math.MaxUint64, all: true})
			continue
		}
		low := bases[len(bases)-1].base.Sequence
		for _, p := range m.Lineage(t.ID) {
			if p.To <= low {
				continue
			}
			out[p.Timeline] = append(out[p.Timeline], reading{by: t.ID, from: max(p.From, low+1), to: p.To, low: low})
		}
	}
	return out
}

// lastSeq is the last sequence a segment holds; an end marker, which holds
// none, counts at its first.
func lastSeq(s catalog.Segment) uint64 {
	if s.Next > s.First {
		return s.Next - 1
	}
	return s.First
}

// neededBy returns the timeline whose restores need segment s of its
// timeline, and why, or ok false when none does. The last segment of a
// timeline is always needed: it records where the timeline's archive ends
// (an end marker fences an old primary).
func neededBy(s catalog.Segment, last bool, rs []reading) (string, bool) {
	if last {
		return fmt.Sprintf("the last segment of timeline %d: it marks where the timeline's archive ends", s.Timeline), true
	}
	for _, r := range rs {
		switch {
		case r.all:
			return fmt.Sprintf("timeline %d has no base: its segments are all kept", r.by), true
		case s.First <= r.to && lastSeq(s) >= r.from:
			return fmt.Sprintf("restores of timeline %d from its base at %d read it", r.by, r.low), true
		}
	}
	return "", false
}

// dropWhy says why segment s, needed by no reading, can go.
func dropWhy(s catalog.Segment, rs []reading) string {
	if len(rs) == 0 {
		return fmt.Sprintf("sequences %d..%d of timeline %d: no timeline's restores read them", s.First, lastSeq(s), s.Timeline)
	}
	var lows []string
	for _, r := range rs {
		lows = append(lows, fmt.Sprintf("timeline %d from %d", r.by, r.low))
	}
	return fmt.Sprintf("sequences %d..%d of timeline %d: before the oldest kept base of every timeline that reads them (%s)",
		s.First, lastSeq(s), s.Timeline, strings.Join(lows, ", "))
}

// segmentVerdicts decides every listed segment given manifest m, whose
// bases are all kept: keep (with why) or drop (with why).
func segmentVerdicts(m *manifest.Manifest, segs map[uint32][]catalog.Segment) map[string]verdict {
	rs := readings(m)
	out := map[string]verdict{}
	for _, t := range m.Timelines {
		list := segs[t.ID]
		for i, s := range list {
			if why, ok := neededBy(s, i == len(list)-1, rs[t.ID]); ok {
				out[s.Key] = verdict{keep: true, why: why}
				continue
			}
			out[s.Key] = verdict{why: dropWhy(s, rs[t.ID])}
		}
	}
	return out
}

// verdict is the decision on one object.
type verdict struct {
	keep bool
	why  string
}
