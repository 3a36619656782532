package restore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// histSeg is a segment of a history, with the last of its sequences that
// belongs to the history (a parent's segment can run past the branch
// point).
type histSeg struct {
	seg catalog.Segment
	hi  uint64
}

// historySegments lists the segments of a history line in order.
func historySegments(c *catalog.Catalog, line []manifest.Piece) []histSeg {
	var out []histSeg
	for _, p := range line {
		for _, s := range c.Segments[p.Timeline] {
			if s.Next <= s.First || s.First > p.To || s.Next-1 < p.From {
				continue
			}
			out = append(out, histSeg{seg: s, hi: min(s.Next-1, p.To)})
		}
	}
	return out
}

// sequenceAt is the sequence of the state that timeline tl's history had
// at time t: the later of the last batch archived at or before t and the
// last base taken at or before t.
func sequenceAt(ctx context.Context, s objstore.Store, c *catalog.Catalog, tl uint32, t time.Time) (uint64, error) {
	line := c.Manifest.Lineage(tl)
	seq, found, err := lastBatchAt(ctx, s, historySegments(c, line), t)
	if err != nil {
		return 0, err
	}
	for _, b := range c.Manifest.Bases {
		if onLine(line, b) && !b.Time.After(t) && (!found || b.Sequence > seq) {
			seq, found = b.Sequence, true
		}
	}
	if !found {
		return 0, fmt.Errorf("timeline %d: %w: nothing of its history was archived at or before %s%s",
			tl, manifest.ErrNotRestorable, t.UTC().Format(time.RFC3339Nano), earliest(c.Manifest, line))
	}
	return seq, nil
}

// earliest describes the earliest base of a history line, for a refusal.
func earliest(m *manifest.Manifest, line []manifest.Piece) string {
	var first *manifest.Base
	for i, b := range m.Bases {
		if onLine(line, b) && (first == nil || b.Time.Before(first.Time)) {
			first = &m.Bases[i]
		}
	}
	if first == nil {
		return " (it has no base)"
	}
	return fmt.Sprintf(" (its earliest base, at sequence %d, was taken at %s)", first.Sequence, first.Time.UTC().Format(time.RFC3339Nano))
}

// lastBatchAt finds, by a binary search over the segments' trailers, the
// last sequence of the last batch archived at or before t.
func lastBatchAt(ctx context.Context, s objstore.Store, hs []histSeg, t time.Time) (uint64, bool, error) {
	trailers := make(map[int]segments.Trailer)
	var readErr error
	trailer := func(i int) (segments.Trailer, error) {
		if tr, ok := trailers[i]; ok {
			return tr, nil
		}
		_, tr, err := catalog.ReadTrailer(ctx, s, hs[i].seg.Key, hs[i].seg.Size)
		trailers[i] = tr
		return tr, err
	}
	i := sort.Search(len(hs), func(i int) bool {
		tr, err := trailer(i)
		if err != nil {
			readErr = errors.Join(readErr, err)
			return true
		}
		return tr.FirstTime.After(t)
	}) - 1
	if readErr != nil {
		return 0, false, fmt.Errorf("find the batch archived at %s: %w", t.UTC().Format(time.RFC3339Nano), readErr)
	}
	if i < 0 {
		return 0, false, nil
	}
	if tr, _ := trailer(i); !tr.LastTime.After(t) {
		return hs[i].hi, true, nil
	}
	return scanTime(ctx, s, hs[i], t)
}

// scanTime reads segment h to find its last batch archived at or before t.
func scanTime(ctx context.Context, s objstore.Store, h histSeg, t time.Time) (uint64, bool, error) {
	rc, _, err := s.Get(ctx, h.seg.Key, objstore.GetOptions{})
	if err != nil {
		return 0, false, fmt.Errorf("read segment %s: %w", h.seg.Key, err)
	}
	defer rc.Close()
	r, err := segments.NewReader(bufio.NewReaderSize(rc, 256<<10), segments.ReaderOptions{})
	if err != nil {
		return 0, false, fmt.Errorf("read segment %s: %w", h.seg.Key, err)
	}
	last, found := h.seg.First-1, h.seg.First > 0
	for {
		b, err := r.Next()
		if err == io.EOF {
			return last, found, nil
		}
		if err != nil {
			return 0, false, fmt.Errorf("read segment %s: %w", h.seg.Key, err)
		}
		end := b.Seq + uint64(b.Count) - 1
		if b.Count == 0 {
			continue
		}
		if end > h.hi || b.Time.After(t) {
			return last, found, nil
		}
		last, found = end, true
	}
}
