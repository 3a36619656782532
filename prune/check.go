package prune

import (
	"errors"
	"fmt"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
)

// ErrUnsafe means that a plan would delete something that a kept base
// needs to restore. It is a bug of prune; nothing was deleted.
var ErrUnsafe = errors.New("refusing to prune: the plan would lose a restorable sequence of a kept base (a bug: nothing was deleted, please report it)")

// Check is the invariant of every prune: with the bases of kept (the
// manifest after the prune), every sequence that was restorable before is
// still restorable once the objects in del are gone; no file of a kept
// base is in del; and no timeline loses its last segment.
func Check(v *View, kept *manifest.Manifest, del []Object) error {
	gone := keySet(del)
	before, err := manifest.Restorable(kept, segmentRanges(v.Segments, nil))
	if err != nil {
		return fmt.Errorf("check the plan: %w", err)
	}
	after, err := manifest.Restorable(kept, segmentRanges(v.Segments, gone))
	if err != nil {
		return fmt.Errorf("%w: the restorable ranges after it cannot be worked out: %v", ErrUnsafe, err)
	}
	for i, cv := range before {
		for _, r := range cv.Ranges {
			if !within(after[i].Ranges, r) {
				return fmt.Errorf("%w: timeline %d: sequences %s would no longer be restorable (after: %v)", ErrUnsafe, cv.Timeline, r, after[i].Ranges)
			}
		}
	}
	if err := checkBases(v, kept, gone); err != nil {
		return err
	}
	for tl, segs := range v.Segments {
		if n := len(segs); n > 0 && gone[segs[n-1].Key] {
			return fmt.Errorf("%w: it would delete %s, the last segment of timeline %d", ErrUnsafe, segs[n-1].Key, tl)
		}
	}
	return nil
}

// checkBases checks that no object of a kept base is in gone.
func checkBases(v *View, kept *manifest.Manifest, gone map[string]bool) error {
	for _, b := range kept.Bases {
		if gone[b.FileList] {
			return fmt.Errorf("%w: it would delete %s, the file list of kept base %d/%d", ErrUnsafe, b.FileList, b.Timeline, b.Sequence)
		}
		fl := v.Lists[b.FileList]
		if fl == nil {
			return fmt.Errorf("%w: the file list of kept base %d/%d was not read", ErrUnsafe, b.Timeline, b.Sequence)
		}
		for _, f := range fl.Files {
			if gone[f.Key] {
				return fmt.Errorf("%w: it would delete %s, a file of kept base %d/%d", ErrUnsafe, f.Key, b.Timeline, b.Sequence)
			}
		}
	}
	return nil
}

// within reports whether range r lies inside one of rs.
func within(rs []manifest.Range, r manifest.Range) bool {
	for _, x := range rs {
		if x.From <= r.From && r.To <= x.To {
			return true
		}
	}
	return false
}

// segmentRanges is the segments of each timeline as manifest.Restorable
// takes them, without those in skip and without end markers.
func segmentRanges(segs map[uint32][]catalog.Segment, skip map[string]bool) map[uint32][]manifest.Segment {
	out := map[uint32][]manifest.Segment{}
	for tl, ss := range segs {
		for _, s := range ss {
			if s.Next > s.First && !skip[s.Key] {
				out[tl] = append(out[tl], s.Segment)
			}
		}
	}
	return out
}
