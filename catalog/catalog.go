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
	err := listSegments(ctx, s, tl, "", func(sg Segment) { segs = append(segs, sg) })
	if err != nil {
		return nil, err
	}
	if len(segs) == 0 {
		return nil, nil
	}
	holes := HolesOf(m, tl)
	for i := range segs[:len(segs)-1] {
		segs[i].Next = EndBefore(segs[i].First, segs[i+1].First, holes)
	}
	if err := readEnd(ctx, s, &segs[len(segs)-1]); err != nil {
		return nil, err
	}
	return segs, nil
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
// after the segment key of sequence after (the newest base's, so that a
// start does not list years of segments), and the whole timeline when
// nothing follows that key. It returns nil when the timeline has none.
func LastSegment(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, after uint64) (*Segment, int, error) {
	startAfter := ""
	if after > 0 {
		startAfter = manifest.SegmentKey(tl, after)
	}
	last, n, err := lastKey(ctx, s, tl, startAfter)
	if err == nil && last == nil && startAfter != "" {
		last, n, err = lastKey(ctx, s, tl, "")
	}
	if err != nil || last == nil {
		return nil, n, err
	}
	if err := readEnd(ctx, s, last); err != nil {
		return nil, n, err
	}
	return last, n, nil
}

func lastKey(ctx context.Context, s objstore.Store, tl uint32, startAfter string) (*Segment, int, error) {
	var last *Segment
	n := 0
	err := listSegments(ctx, s, tl, startAfter, func(sg Segment) { n++; last = &sg })
	if err != nil {
		return nil, n, err
	}
	return last, n, nil
}

// listSegments calls fn with each segment key of timeline tl after
// startAfter, in order; an object there that is not a segment key of tl is
// an error.
func listSegments(ctx context.Context, s objstore.Store, tl uint32, startAfter string, fn func(Segment)) error {
	for info, err := range s.List(ctx, manifest.SegmentPrefix(tl), startAfter) {
		if err != nil {
			return fmt.Errorf("list the segments of timeline %d: %w", tl, err)
		}
		t, first, err := manifest.ParseSegmentKey(info.Key)
		if err != nil || t != tl {
			return fmt.Errorf("list the segments of timeline %d: unexpected object %s: %w", tl, info.Key, manifest.ErrInvalid)
		}
		fn(Segment{Segment: manifest.Segment{First: first}, Timeline: tl, Key: info.Key, Size: info.Size})
	}
	return nil
}
