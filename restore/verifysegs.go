package restore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// segCheck is one segment object and what reading it whole showed.
type segCheck struct {
	key   string
	tl    uint32
	first uint64 // from the key
	size  int64

	ok   bool   // read whole, and its header matches its key
	next uint64 // its trailer's next sequence
	end  bool   // it ends its timeline
}

// listSegments returns the segments of every timeline of the manifest,
// in sequence order: those the catalog listed, else a listing of its own.
func (v *verifier) listSegments(ctx context.Context) (map[uint32][]*segCheck, error) {
	out := map[uint32][]*segCheck{}
	for _, t := range v.m.Timelines {
		if v.c != nil {
			for _, s := range v.c.Segments[t.ID] {
				out[t.ID] = append(out[t.ID], &segCheck{key: s.Key, tl: t.ID, first: s.First, size: s.Size})
			}
			continue
		}
		segs, err := v.listTimeline(ctx, t.ID)
		if err != nil {
			return nil, err
		}
		out[t.ID] = segs
	}
	return out, nil
}

// listTimeline lists the segments of timeline tl; a key that is not a
// segment key of tl is a problem.
func (v *verifier) listTimeline(ctx context.Context, tl uint32) ([]*segCheck, error) {
	var out []*segCheck
	for info, err := range v.s.List(ctx, manifest.SegmentPrefix(tl), "") {
		if err != nil {
			return nil, fmt.Errorf("list the segments of timeline %d: %w", tl, err)
		}
		t, first, err := manifest.ParseSegmentKey(info.Key)
		if err != nil || t != tl {
			v.rep.add(info.Key, "not a segment key of timeline %d", tl)
			continue
		}
		out = append(out, &segCheck{key: info.Key, tl: tl, first: first, size: info.Size})
	}
	return out, nil
}

// checkSegments reads every segment whole, then checks that each timeline's
// segments follow one another.
func (v *verifier) checkSegments(ctx context.Context, segs map[uint32][]*segCheck) error {
	var all []*segCheck
	for _, t := range v.m.Timelines {
		all = append(all, segs[t.ID]...)
	}
	err := forEach(ctx, v.opts.Concurrency, len(all), func(ctx context.Context, i int) error {
		return v.readSegment(ctx, all[i])
	})
	if err != nil {
		return err
	}
	for _, t := range v.m.Timelines {
		v.checkChain(t, segs[t.ID])
	}
	return nil
}

// readSegment reads one segment whole with segments.Reader, which checks
// every CRC, the continuity of its batches and its trailer. A transfer that
// breaks off is read again (readAttempts in all): it says nothing of the
// object.
func (v *verifier) readSegment(ctx context.Context, sg *segCheck) error {
	var (
		r          *segments.Reader
		n, batches int64
		err        error
	)
	for attempt := 1; ; attempt++ {
		r, n, batches, err = v.readWhole(ctx, sg.key)
		if err == nil || !isBroken(err) || ctx.Err() != nil {
			break
		}
		if attempt == readAttempts {
			return fmt.Errorf("read %s: %w", sg.key, err)
		}
	}
	if err != nil {
		return v.objectProblem(ctx, sg.key, err)
	}
	v.rep.count(func(r *Report) { r.Segments++; r.SegmentBytes += n; r.Batches += batches })
	h, tr := r.Header(), r.Trailer()
	if h.Timeline != uint64(sg.tl) || h.FirstSeq != sg.first {
		v.rep.add(sg.key, "its header says timeline %d from sequence %d, its key timeline %d from %d", h.Timeline, h.FirstSeq, sg.tl, sg.first)
		return nil
	}
	sg.ok, sg.next, sg.end = true, tr.NextSeq, h.Flags&segments.FlagEnd != 0
	return nil
}

// readWhole reads the segment at key to its end and returns its reader,
// the bytes read and the batches.
func (v *verifier) readWhole(ctx context.Context, key string) (*segments.Reader, int64, int64, error) {
	rc, info, err := v.s.Get(ctx, key, objstore.GetOptions{})
	if err != nil {
		return nil, 0, 0, err
	}
	defer rc.Close()
	var n, batches int64
	body := &sizedBody{r: rc, size: info.Size}
	r, err := segments.NewReader(bufio.NewReaderSize(&counted{r: body, n: &n, progress: v.prog.add}, readBuffer), segments.ReaderOptions{})
	if err != nil {
		return nil, n, 0, err
	}
	for {
		_, err := r.Next()
		if err == io.EOF {
			return r, n, batches, nil
		}
		if err != nil {
			return nil, n, batches, err
		}
		batches++
	}
}

// readAttempts bounds the reads of one object whose transfer breaks off
// (a connection reset in the middle of a body, which the S3 SDK does not
// retry) before Verify gives up on the store.
const readAttempts = 5

// sizedBody is the body of a get of an object of size bytes. A body that
// fails, or ends before size bytes, is a *brokenTransfer: never an io.EOF
// that segments.Reader would take for a truncated object.
type sizedBody struct {
	r       io.Reader
	size, n int64
}

func (b *sizedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if err == nil || err == io.EOF && b.n >= b.size || crypt.IsPermanent(err) {
		return n, err
	}
	return n, &brokenTransfer{fmt.Errorf("the transfer stopped at byte %d of %d: %v", b.n, b.size, err)}
}

func isBroken(err error) bool {
	var b *brokenTransfer
	return errors.As(err, &b)
}

// objectProblem records err as a problem of key, unless it stops Verify.
func (v *verifier) objectProblem(ctx context.Context, key string, err error) error {
	if fatal(ctx, err) {
		return fmt.Errorf("read %s: %w", key, err)
	}
	v.rep.add(key, "%v", err)
	return nil
}

// checkChain checks that the segments of timeline t follow one another:
// each ends (its trailer's next sequence) where the next begins, or where a
// hole recorded in between begins (docs/FORMAT.md, rules 2 and 3 of the
// writer), and only the last one ends the timeline.
//
// A segment that starts inside an ended hole is no part of the chain: no
// restore reaches it (catalog.InHole). It is counted (Report.InHoles), not
// a problem; the chain goes on from the next one after the hole.
func (v *verifier) checkChain(t manifest.Timeline, all []*segCheck) {
	holes := catalog.HolesOf(v.m, t.ID)
	var segs []*segCheck
	for _, sg := range all {
		if catalog.InHole(sg.first, holes) {
			v.rep.count(func(r *Report) { r.InHoles++ })
			continue
		}
		segs = append(segs, sg)
	}
	for i, sg := range segs {
		if !sg.ok {
			continue
		}
		if t.Parent != 0 && sg.first <= t.Branch {
			v.rep.add(sg.key, "starts at or before the branch point %d of timeline %d", t.Branch, t.ID)
		}
		if i+1 == len(segs) {
			continue
		}
		next := segs[i+1]
		if sg.end {
			v.rep.add(sg.key, "ends timeline %d (end flag), but segment %s follows it", t.ID, next.key)
		}
		if want := catalog.EndBefore(sg.first, next.first, holes); sg.next != want {
			v.rep.add(sg.key, "%s", chainProblem(sg, next, want))
		}
	}
}

func chainProblem(sg, next *segCheck, want uint64) string {
	switch {
	case sg.next > next.first:
		return fmt.Sprintf("its batches run to sequence %d, past the start of the next segment %s: the segments overlap", sg.next-1, next.key)
	case want != next.first:
		return fmt.Sprintf("its batches end at sequence %d, but the hole recorded after it starts at %d", sg.next-1, want)
	}
	return fmt.Sprintf("its batches end at sequence %d, but the next segment %s starts at %d and no hole is recorded in between: sequences %d to %d are missing (no segment %s)",
		sg.next-1, next.key, next.first, sg.next, next.first-1, manifest.SegmentKey(sg.tl, sg.next))
}

// trueSegments are the segments as their trailers give them, for
// manifest.Restorable: the segments that read well, cut at the start of
// the next one (an overlap is reported already), without end markers and
// without segments before their timeline's branch point.
func trueSegments(m *manifest.Manifest, segs map[uint32][]*segCheck) map[uint32][]manifest.Segment {
	out := map[uint32][]manifest.Segment{}
	for tl, ss := range segs {
		t, _ := m.Timeline(tl)
		for i, sg := range ss {
			next := sg.next
			if i+1 < len(ss) {
				next = min(next, ss[i+1].first)
			}
			if !sg.ok || next <= sg.first || t.Parent != 0 && sg.first <= t.Branch {
				continue
			}
			out[tl] = append(out[tl], manifest.Segment{First: sg.first, Next: next})
		}
	}
	return out
}
