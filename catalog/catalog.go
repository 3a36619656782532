// Package catalog reads what an archive holds: the manifest, and the chain
// of segments of each timeline with the sequence range of each segment.
//
// A segment's key gives its first sequence; its end (the sequence after its
// last batch) is the next segment's first sequence, unless a hole that the
// manifest records starts in between, and for the last segment of a
// timeline it is read from the segment's trailer with one ranged get. This
// rests on a rule of the archiver (docs/FORMAT.md): it records a hole in
// the manifest before it uploads any segment after the hole. Verify reads
// every segment whole and so checks what this package takes on trust.
package catalog

import (
	"context"
	"fmt"
	"io"
	"sort"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// Catalog is a snapshot of an archive.
type Catalog struct {
	Manifest *manifest.Manifest
	ETag     string
	// Segments holds each timeline's segments in sequence order.
	Segments map[uint32][]Segment
}

// Segment is one segment object.
type Segment struct {
	manifest.Segment        // First and Next: [First, Next)
	Timeline         uint32 // its timeline
	Key              string // its object key
	Size             int64  // its size in bytes
	// Last is the trailer of the timeline's last segment (read to learn
	// its end); nil for the others.
	Last *segments.Trailer
	// End is set when the segment ends its timeline (segments.FlagEnd).
	End bool
}

// Load reads the manifest and lists the segments of every timeline.
func Load(ctx context.Context, s objstore.Store) (*Catalog, error) {
	m, etag, err := manifest.Load(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := m.CheckStore(s); err != nil {
		return nil, err
	}
	c := &Catalog{Manifest: m, ETag: etag, Segments: map[uint32][]Segment{}}
	for _, t := range m.Timelines {
		segs, err := Timeline(ctx, s, m, t.ID)
		if err != nil {
			return nil, err
		}
		c.Segments[t.ID] = segs
	}
	return c, nil
}

// Timeline lists the segments of timeline tl and works out their ends.
func Timeline(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32) ([]Segment, error) {
	var segs []Segment
	err := listSegments(ctx, s, tl, "", func(sg Segment) bool { segs = append(segs, sg); return true })
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, nil
	}
	if err := fillEnds(ctx, s, m, tl, segs); err != nil {
		return nil, err
	}
	return segs, nil
}

// fillEnds fills in the ends of segs, a run of timeline tl's segments up to
// its last, which must not be empty.
func fillEnds(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, segs []Segment) error {
	holes := HolesOf(m, tl)
	for i := range segs[:len(segs)-1] {
		segs[i].Next = EndBefore(segs[i].First, segs[i+1].First, holes)
	}
	return readEnd(ctx, s, &segs[len(segs)-1])
}

// readEnd reads the trailer of a timeline's last segment sg, checks its
// header against its key, and fills in its end.
func readEnd(ctx context.Context, s objstore.Store, sg *Segment) error {
	h, tr, err := ReadTrailer(ctx, s, sg.Key, sg.Size)
	if err != nil {
		return fmt.Errorf("%w; run 'rockstream verify' to see the damage", err)
	}
	if h.FirstSeq != sg.First || h.Timeline != uint64(sg.Timeline) {
		return fmt.Errorf("segment %s: its header says timeline %d from %d: %w", sg.Key, h.Timeline, h.FirstSeq, segments.ErrCorrupt)
	}
	sg.Next, sg.Last, sg.End = tr.NextSeq, &tr, h.Flags&segments.FlagEnd != 0
	return nil
}

// HolesOf returns the holes that m records on timeline tl, in order.
func HolesOf(m *manifest.Manifest, tl uint32) []manifest.Hole {
	var hs []manifest.Hole
	for _, h := range m.Holes {
		if h.Timeline == tl {
			hs = append(hs, h)
		}
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i].From < hs[j].From })
	return hs
}

// EndBefore is the end of a segment that starts at first and is followed by
// one that starts at next: the start of the first recorded hole in
// between, else next. It is the rule that readers take on trust and that
// verify checks against the segments' trailers.
func EndBefore(first, next uint64, holes []manifest.Hole) uint64 {
	for _, h := range holes {
		if h.From > first && h.From < next {
			return h.From
		}
	}
	return next
}

// InHole says whether a segment that starts at first starts inside one of
// the ended holes of holes (after its first missing sequence, and not
// after the base that ends it): no restore reaches it, since nothing in a
// hole is restorable and the chain after the hole starts at its base. The
// archiver uploads the segments after the checkpoint of a hole's base
// while that base is uploaded (docs/FORMAT.md, rule 3); when that base
// never commits (a failure, a stop), a later one ends the hole, and those
// segments stay behind inside it. Inside an open hole it is false: the
// segments there are restorable once the base that ends it is in.
func InHole(first uint64, holes []manifest.Hole) bool {
	for _, h := range holes {
		if h.To != manifest.MaxSequence && h.From <= first && first <= h.To {
			return true
		}
	}
	return false
}

// Manifest segments of the catalog, as manifest.Restorable takes them.
func (c *Catalog) Ranges() map[uint32][]manifest.Segment {
	out := map[uint32][]manifest.Segment{}
	for tl, segs := range c.Segments {
		for _, s := range segs {
			if s.Next > s.First {
				out[tl] = append(out[tl], s.Segment)
			}
		}
	}
	return out
}

// ReadTrailer reads the header and trailer of the segment key of size
// bytes with one ranged get.
func ReadTrailer(ctx context.Context, s objstore.Store, key string, size int64) (segments.Header, segments.Trailer, error) {
	h, tr, err := segments.ReadTrailer(ReaderAt(ctx, s, key), size)
	if err != nil {
		return h, tr, fmt.Errorf("read the trailer of segment %s: %w", key, err)
	}
	return h, tr, nil
}

// ReaderAt reads key with ranged gets.
func ReaderAt(ctx context.Context, s objstore.Store, key string) io.ReaderAt {
	return readerAt{ctx: ctx, s: s, key: key}
}

type readerAt struct {
	ctx context.Context
	s   objstore.Store
	key string
}

func (r readerAt) ReadAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	rc, _, err := r.s.Get(r.ctx, r.key, objstore.GetOptions{Offset: off, Length: int64(len(p))})
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	n, err := io.ReadFull(rc, p)
	if err == io.ErrUnexpectedEOF {
		err = io.EOF
	}
	return n, err
}

// LastSegment returns the last segment of timeline tl, with its end read
// from its trailer, and the number of keys listed. It lists only the keys
// after the segment key of sequence after (the newest base's, or a
// standby's applied sequence, so that a start does not list years of
// segments). When nothing follows that key, the last segment starts at or
// before after: it lists after the keys of m's bases of tl below after,
// newest first, and the whole timeline only when none of those finds a
// segment (m nil: at once). It returns nil when the timeline has none.
func LastSegment(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, after uint64) (*Segment, int, error) {
	var last *Segment
	n := 0
	for _, from := range bounds(m, tl, after, true) {
		var err error
		var k int
		last, k, err = lastKey(ctx, s, tl, startKey(tl, from))
		n += k
		if err != nil {
			return nil, n, err
		}
		if last != nil {
			break
		}
	}
	if last == nil {
		return nil, n, nil
	}
	if err := readEnd(ctx, s, last); err != nil {
		return nil, n, err
	}
	return last, n, nil
}

// Containing returns the segment of timeline tl that holds seq (nil when
// none does), with its end, and the key of the first segment that starts
// after seq ("" when none does). Like LastSegment it lists after the keys
// of m's bases of tl below seq, newest first, until a listing reaches a
// segment that starts at or before seq, and the whole timeline only when
// none does; each listing stops at the first key after seq.
func Containing(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, seq uint64) (*Segment, string, error) {
	var prev, next *Segment
	for _, from := range bounds(m, tl, seq, false) {
		prev, next = nil, nil
		err := listSegments(ctx, s, tl, startKey(tl, from), func(sg Segment) bool {
			if sg.First > seq {
				next = &sg
				return false
			}
			prev = &sg
			return true
		})
		if err != nil {
			return nil, "", err
		}
		if prev != nil {
			break
		}
	}
	nextKey := ""
	if next != nil {
		nextKey = next.Key
	}
	if prev == nil {
		return nil, nextKey, nil
	}
	if next != nil {
		prev.Next = EndBefore(prev.First, next.First, HolesOf(m, tl))
	} else if err := readEnd(ctx, s, prev); err != nil {
		return nil, "", err
	}
	if seq >= prev.Next {
		return nil, nextKey, nil
	}
	return prev, nextKey, nil
}

// After returns the segments of timeline tl that hold sequences after
// seq, in order, with their ends: the one that holds seq+1, when one does,
// and every segment after it (whether they follow on is for the caller to
// check). Like Containing it lists after the keys of m's bases of tl at or
// below seq, newest first, until a listing reaches a segment that starts at
// or before seq+1, and the whole timeline only when none does.
func After(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, seq uint64) ([]Segment, error) {
	var segs []Segment
	for _, from := range bounds(m, tl, seq+1, false) {
		segs, found := segs[:0], false
		err := listSegments(ctx, s, tl, startKey(tl, from), func(sg Segment) bool {
			if sg.First <= seq+1 {
				segs, found = segs[:0], true // only the last that starts at or before seq+1
			}
			segs = append(segs, sg)
			return true
		})
		if err != nil {
			return nil, err
		}
		if found || from == 0 {
			return ends(ctx, s, m, tl, segs, seq)
		}
	}
	return nil, nil
}

// ends fills in the ends of segs, a run of timeline tl's segments up to its
// last, and drops those that end at or before seq.
func ends(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, segs []Segment, seq uint64) ([]Segment, error) {
	if len(segs) == 0 {
		return nil, nil
	}
	if err := fillEnds(ctx, s, m, tl, segs); err != nil {
		return nil, err
	}
	for len(segs) > 0 && segs[0].Next <= seq+1 {
		segs = segs[1:]
	}
	return segs, nil
}

// FirstAfter returns the first segment key of timeline tl after key, or ""
// when there is none, with one LIST.
func FirstAfter(ctx context.Context, s objstore.Store, tl uint32, key string) (string, error) {
	first := ""
	err := listSegments(ctx, s, tl, key, func(sg Segment) bool { first = sg.Key; return false })
	return first, err
}

// bounds returns the sequences after whose segment keys a search for the
// last segment that starts at or before seq lists, nearest first: seq
// itself when withSeq, the sequences of m's bases of tl below seq, newest
// first, and 0, the whole timeline.
func bounds(m *manifest.Manifest, tl uint32, seq uint64, withSeq bool) []uint64 {
	var out []uint64
	if withSeq && seq > 0 {
		out = append(out, seq)
	}
	if m != nil {
		var bases []uint64
		for _, b := range m.Bases {
			if b.Timeline == tl && b.Sequence > 0 && b.Sequence < seq {
				bases = append(bases, b.Sequence)
			}
		}
		sort.Slice(bases, func(i, j int) bool { return bases[i] > bases[j] })
		out = append(out, bases...)
	}
	return append(out, 0)
}

// startKey is the key a listing of timeline tl's segments after sequence
// from starts after: "" for 0, the whole timeline.
func startKey(tl uint32, from uint64) string {
	if from == 0 {
		return ""
	}
	return manifest.SegmentKey(tl, from)
}

func lastKey(ctx context.Context, s objstore.Store, tl uint32, startAfter string) (*Segment, int, error) {
	var last *Segment
	n := 0
	err := listSegments(ctx, s, tl, startAfter, func(sg Segment) bool { n++; last = &sg; return true })
	if err != nil {
		return nil, n, err
	}
	return last, n, nil
}

// listSegments calls fn with each segment key of timeline tl after
// startAfter, in order, until fn returns false; an object there that is
// not a segment key of tl is an error.
func listSegments(ctx context.Context, s objstore.Store, tl uint32, startAfter string, fn func(Segment) bool) error {
	for info, err := range s.List(ctx, manifest.SegmentPrefix(tl), startAfter) {
		if err != nil {
			return fmt.Errorf("list the segments of timeline %d: %w", tl, err)
		}
		t, first, err := manifest.ParseSegmentKey(info.Key)
		if err != nil || t != tl {
			return fmt.Errorf("list the segments of timeline %d: unexpected object %s: %w", tl, info.Key, manifest.ErrInvalid)
		}
		if !fn(Segment{Segment: manifest.Segment{First: first}, Timeline: tl, Key: info.Key, Size: info.Size}) {
			return nil
		}
	}
	return nil
}
