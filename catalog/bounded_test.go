package catalog_test

import (
	"context"
	"iter"
	"testing"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// countingStore counts the keys that listings yield.
type countingStore struct {
	objstore.Store
	keys int
}

func (c *countingStore) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		for info, err := range c.Store.List(ctx, prefix, startAfter) {
			if err == nil {
				c.keys++
			}
			if !yield(info, err) {
				return
			}
		}
	}
}

// boundedArchive holds timeline 1 with one-batch segments 1..80 and bases
// at 9 and 49 (newArchive's; its hole does not matter here: only the keys
// are counted).
func boundedArchive(t *testing.T) (*countingStore, *manifest.Manifest) {
	s, m := newArchive(t)
	for seq := uint64(1); seq <= 80; seq++ {
		putSegment(t, s, 1, seq, seq+1, 0)
	}
	return &countingStore{Store: s}, m
}

// TestLastSegmentBounded: when nothing follows `after` (a caught-up
// standby promoting), LastSegment lists from the newest base below it, not
// the whole timeline; without a manifest it lists it all.
func TestLastSegmentBounded(t *testing.T) {
	s, m := boundedArchive(t)
	last, n, err := catalog.LastSegment(ctx, s, m, 1, 80)
	if err != nil || last == nil || last.First != 80 || last.Next != 81 {
		t.Fatalf("last %+v: %v", last, err)
	}
	if n != 31 || s.keys != 31 { // 50..80, after the base at 49
		t.Fatalf("listed %d keys (store: %d), want 31", n, s.keys)
	}
	if _, n, _ := catalog.LastSegment(ctx, s, nil, 1, 80); n != 80 {
		t.Fatalf("without a manifest: listed %d keys, want 80", n)
	}
	if last, n, _ := catalog.LastSegment(ctx, s, m, 1, 70); last == nil || last.First != 80 || n != 10 {
		t.Fatalf("after 70: last %+v, listed %d, want 80 and 10", last, n)
	}
}

// TestLastSegmentBaseAfterLast: the newest bases are above the last
// segment's start (a long segment): the listings after them find nothing
// and it goes back to the whole timeline.
func TestLastSegmentBaseAfterLast(t *testing.T) {
	s, m := newArchive(t) // bases at 9 and 49
	putSegment(t, s, 1, 2, 5, 0)
	putSegment(t, s, 1, 5, 60, 0)
	last, n, err := catalog.LastSegment(ctx, s, m, 1, 59)
	if err != nil || last == nil || last.First != 5 || last.Next != 60 || n != 2 {
		t.Fatalf("last %+v, listed %d: %v", last, n, err)
	}
}

// TestContaining: the segment that holds a sequence, and the first key
// after it, from a listing bounded by the newest base below it and cut at
// the first key after it.
func TestContaining(t *testing.T) {
	s, m := boundedArchive(t)
	sg, next, err := catalog.Containing(ctx, s, m, 1, 60)
	if err != nil || sg == nil || sg.First != 60 || sg.Next != 61 || next != manifest.SegmentKey(1, 61) {
		t.Fatalf("60: %+v %q: %v", sg, next, err)
	}
	if s.keys != 12 { // 50..61
		t.Fatalf("listed %d keys, want 12", s.keys)
	}
	sg, next, err = catalog.Containing(ctx, s, m, 1, 80)
	if err != nil || sg == nil || sg.First != 80 || sg.Next != 81 || next != "" {
		t.Fatalf("80: %+v %q: %v", sg, next, err)
	}
	// Past the end: nothing holds it, nothing follows.
	if sg, next, err = catalog.Containing(ctx, s, m, 1, 81); err != nil || sg != nil || next != "" {
		t.Fatalf("81: %+v %q: %v", sg, next, err)
	}
}

// TestContainingLongSegment: the segment that holds the sequence starts
// before the newest bases below it: the search goes back past them.
func TestContainingLongSegment(t *testing.T) {
	s, m := newArchive(t) // bases at 9 and 49; a hole recorded at 30..49
	putSegment(t, s, 1, 2, 5, 0)
	putSegment(t, s, 1, 5, 30, 0)
	putSegment(t, s, 1, 50, 70, 0)
	sg, next, err := catalog.Containing(ctx, s, m, 1, 20)
	if err != nil || sg == nil || sg.First != 5 || sg.Next != 30 || next != manifest.SegmentKey(1, 50) {
		t.Fatalf("20: %+v %q: %v", sg, next, err)
	}
	sg, next, err = catalog.Containing(ctx, s, m, 1, 69)
	if err != nil || sg == nil || sg.First != 50 || sg.Next != 70 || next != "" {
		t.Fatalf("69: %+v %q: %v", sg, next, err)
	}
	// The hole recorded at 30 ends the segment at 5 there: 35 is in none,
	// and the segment at 50 follows.
	if sg, next, err = catalog.Containing(ctx, s, m, 1, 35); err != nil || sg != nil || next != manifest.SegmentKey(1, 50) {
		t.Fatalf("35: %+v %q: %v", sg, next, err)
	}
	// Before the first segment.
	if sg, next, err = catalog.Containing(ctx, s, m, 1, 1); err != nil || sg != nil || next != manifest.SegmentKey(1, 2) {
		t.Fatalf("1: %+v %q: %v", sg, next, err)
	}
}
