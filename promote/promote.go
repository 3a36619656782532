// Package promote turns a standby into the primary: it fences the old
// primary's segment chain with an end-of-timeline marker and commits a new
// timeline, with a new writer, to the manifest (docs/DESIGN.md, "Key
// decisions").
//
// A standby whose database is at sequence S on timeline K is promoted in
// two steps:
//
//  1. Fence: the end marker (a segment with segments.FlagEnd and no batch)
//     is created, if-none-match, at manifest.SegmentKey(K, S+1), the key of
//     the old primary's next segment. From then its next upload fails. When
//     the key is taken by a segment with batches, the old primary uploaded
//     more than the standby applied: the standby must apply it first
//     (Options.Drain), and the marker goes after it.
//  2. Commit: one manifest.Update adds timeline K+1 branching at S and
//     names the new writer (Options.WriterID) with the next epoch. Only one
//     promotion of K can commit: the update refuses a K that already has a
//     child. The old primary's archiver is fenced at its next manifest
//     check, or at its next upload by the marker.
package promote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// ErrMoreToApply means that the old primary uploaded batches after the
// standby's sequence: the marker's key holds a segment with batches. Apply
// them (run the standby until it is caught up) and promote again.
var ErrMoreToApply = errors.New("the archive holds batches the standby has not applied")

// maxDrains bounds the rounds of Drain then fence again.
const maxDrains = 20

// Options say what to promote, and to whom.
type Options struct {
	// Timeline is K, the timeline the standby follows.
	Timeline uint32
	// Applied is S, the standby's latest sequence.
	Applied uint64
	// WriterID is the ID of the new primary's archiver (required); Host
	// defaults to os.Hostname.
	WriterID, Host string
	// Streamed are batches that the standby applied from the live stream
	// (package stream) and that the archive may lack, in order, ending at
	// Applied. Before it fences, Promote uploads those after the archive's
	// end as timeline K's next segment, create-only (an upload of the old
	// primary that came first is kept: it holds the same batches). Without
	// them, a standby ahead of the archive cannot be promoted
	// (ErrUnarchived): the fence would leave a gap.
	Streamed []segments.Batch
	// Drain, when set, applies what the archive holds after Applied and
	// returns the new latest sequence. Promote calls it when the marker's
	// key is taken by the old primary's segment; without it Promote fails
	// with ErrMoreToApply.
	Drain func(ctx context.Context) (uint64, error)
	// Now defaults to time.Now.
	Now func() time.Time
}

// Timings are the durations of the steps, for the recovery time.
type Timings struct {
	Drain, Fence, Commit, Total time.Duration
}

// timingsJSON is Timings in JSON: seconds, as every duration rockstream
// prints. The milliseconds (drain_ms, ...) of earlier versions are read too.
type timingsJSON struct {
	Drain  float64 `json:"drain_seconds"`
	Fence  float64 `json:"fence_seconds"`
	Commit float64 `json:"commit_seconds"`
	Total  float64 `json:"total_seconds"`
}

type timingsMS struct {
	Drain  *float64 `json:"drain_ms"`
	Fence  *float64 `json:"fence_ms"`
	Commit *float64 `json:"commit_ms"`
	Total  *float64 `json:"total_ms"`
}

func seconds(d time.Duration) float64 { return float64(d.Microseconds()) / 1e6 }
func fromSeconds(f float64) time.Duration {
	return time.Duration(f * float64(time.Second)).Round(time.Microsecond)
}

// MarshalJSON writes the timings in seconds (drain_seconds, ...).
func (t Timings) MarshalJSON() ([]byte, error) {
	return json.Marshal(timingsJSON{seconds(t.Drain), seconds(t.Fence), seconds(t.Commit), seconds(t.Total)})
}

// UnmarshalJSON reads what MarshalJSON writes, or the milliseconds
// (drain_ms, ...) of a standby of an older version.
func (t *Timings) UnmarshalJSON(b []byte) error {
	var j timingsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*t = Timings{fromSeconds(j.Drain), fromSeconds(j.Fence), fromSeconds(j.Commit), fromSeconds(j.Total)}
	var old timingsMS
	if err := json.Unmarshal(b, &old); err != nil {
		return err
	}
	for _, f := range []struct {
		ms *float64
		d  *time.Duration
	}{{old.Drain, &t.Drain}, {old.Fence, &t.Fence}, {old.Commit, &t.Commit}, {old.Total, &t.Total}} {
		if f.ms != nil {
			*f.d = fromSeconds(*f.ms / 1000)
		}
	}
	return nil
}

// Result is a committed promotion.
type Result struct {
	// Timeline is the new timeline, K+1 (the next free ID); Parent is K.
	Timeline uint32 `json:"timeline"`
	Parent   uint32 `json:"parent"`
	// Branch is S: the last sequence of K that the new timeline holds.
	Branch uint64 `json:"branch"`
	// Epoch is the new writer's epoch; WriterID its ID.
	Epoch    uint64 `json:"epoch"`
	WriterID string `json:"writer_id"`
	// Marker is the key of the end marker.
	Marker string `json:"marker"`
	// StreamOnly counts the batches that only the standby held (from the
	// live stream) and that the promotion uploaded to timeline Parent.
	StreamOnly int     `json:"stream_only_batches"`
	Timings    Timings `json:"timings"`
}

// ErrUnarchived means that the standby holds batches, received by stream,
// that the archive lacks and that were not given to Promote (Options.Streamed).
var ErrUnarchived = errors.New("the standby holds batches that the archive lacks")

// Promote fences timeline opts.Timeline at opts.Applied+1 and commits its
// child timeline with the new writer. A promotion of the same timeline that
// committed first makes it fail with manifest.ErrFenced.
func Promote(ctx context.Context, store objstore.Store, opts Options) (Result, error) {
	start := time.Now()
	if opts.WriterID == "" {
		return Result{}, errors.New("promote: no writer ID for the new primary's archiver")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Host == "" {
		opts.Host, _ = os.Hostname()
	}
	k := opts.Timeline
	m, _, err := manifest.Load(ctx, store)
	if err == nil {
		err = m.CheckStore(store)
	}
	if err != nil {
		return Result{}, fmt.Errorf("promote: %w", err)
	}
	if err := promotable(m, k, opts.Applied); err != nil {
		return Result{}, err
	}
	var res Result
	s := opts.Applied
	t0 := time.Now()
	n, err := uploadStreamed(ctx, store, m, k, s, opts.Streamed, opts.Now())
	res.StreamOnly, res.Timings.Fence = n, time.Since(t0)
	if err != nil {
		return Result{}, err
	}
	for drains := 0; ; drains++ {
		t0 := time.Now()
		err := fence(ctx, store, m, k, s, opts.Now())
		res.Timings.Fence += time.Since(t0)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrMoreToApply) || opts.Drain == nil {
			return Result{}, err
		}
		if drains == maxDrains {
			return Result{}, fmt.Errorf("%w (after %d rounds of applying: the old primary still writes?)", err, drains)
		}
		t0 = time.Now()
		next, derr := opts.Drain(ctx)
		res.Timings.Drain += time.Since(t0)
		if derr != nil {
			return Result{}, fmt.Errorf("promote: apply what the archive holds after %d: %w", s, derr)
		}
		if next <= s {
			return Result{}, fmt.Errorf("%w, but applying it left the standby at %d: %s holds batches it did not apply", ErrMoreToApply, next, manifest.SegmentKey(k, s+1))
		}
		s = next
	}
	res.Branch, res.Parent = s, k
	t0 = time.Now()
	m, _, err = manifest.Update(ctx, store, nil, func(m *manifest.Manifest) error {
		if err := promotable(m, k, s); err != nil {
			return err
		}
		tl, err := m.AddTimeline(k, s, opts.Now())
		if err != nil {
			return fmt.Errorf("promote: %w", err)
		}
		var epoch uint64 = 1
		if m.Writer != nil {
			epoch = m.Writer.Epoch + 1
		}
		m.Writer = &manifest.Writer{Timeline: tl.ID, Epoch: epoch, ID: opts.WriterID, Host: opts.Host, Since: opts.Now().UTC()}
		if ids := objstore.KeyIDs(store); len(ids) > 0 {
			m.AddKeyID(ids[0]) // the end marker was written with it
		}
		return nil
	})
	res.Timings.Commit = time.Since(t0)
	if err != nil {
		// The commit may have landed though its answer was lost: if the
		// manifest now holds this very promotion, it succeeded.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if cur, _, lerr := manifest.Load(rctx, store); lerr == nil && ours(cur, k, s, opts.WriterID) {
			m, err = cur, nil
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("promote: the old timeline %d is fenced at %d, but the new timeline is not committed: %w", k, s+1, err)
	}
	res.Marker = manifest.SegmentKey(k, s+1)
	res.Timeline, res.Epoch, res.WriterID = m.Writer.Timeline, m.Writer.Epoch, m.Writer.ID
	res.Timings.Total = time.Since(start)
	return res, nil
}

// ours reports whether m records this promotion: the writer is writerID on
// a child of k that branches at s.
func ours(m *manifest.Manifest, k uint32, s uint64, writerID string) bool {
	if m.Writer == nil || m.Writer.ID != writerID {
		return false
	}
	t, ok := m.Timeline(m.Writer.Timeline)
	return ok && t.Parent == k && t.Branch == s
}

// promotable checks that timeline k of m may be promoted at s: it exists,
// no timeline branched from it yet, and s is not before its own branch.
func promotable(m *manifest.Manifest, k uint32, s uint64) error {
	t, ok := m.Timeline(k)
	if !ok {
		return fmt.Errorf("promote: %w: the archive has no timeline %d", manifest.ErrInvalid, k)
	}
	for _, c := range m.Timelines {
		if c.Parent == k {
			return fmt.Errorf("promote: %w: timeline %d was already promoted: timeline %d branched from it at %d (writer %s)",
				manifest.ErrFenced, k, c.ID, c.Branch, writerText(m.Writer))
		}
	}
	if t.Parent != 0 && s < t.Branch {
		return fmt.Errorf("promote: sequence %d is before timeline %d's branch point %d", s, k, t.Branch)
	}
	return nil
}

func writerText(w *manifest.Writer) string {
	if w == nil {
		return "none"
	}
	return fmt.Sprintf("%s on %s, epoch %d", w.ID, w.Host, w.Epoch)
}

// Marker returns the bytes of the end marker of timeline k after sequence
// s: a segment with FlagEnd and no batch, first sequence s+1.
func Marker(k uint32, s uint64, now time.Time) ([]byte, error) {
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Timeline: uint64(k), FirstSeq: s + 1, Flags: segments.FlagEnd, Created: now.UTC()}, segments.WriterOptions{})
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("promote: build the end marker: %w", err)
	}
	return buf.Bytes(), nil
}

// fence creates the end marker of k at s+1. A marker already there (an
// earlier attempt, or another promotion at the same point, which the
// commit then decides) is fine; a segment with batches is ErrMoreToApply.
func fence(ctx context.Context, store objstore.Store, m *manifest.Manifest, k uint32, s uint64, now time.Time) error {
	if err := archivedAfter(ctx, store, m, k, s); err != nil {
		return err
	}
	key := manifest.SegmentKey(k, s+1)
	data, err := Marker(k, s, now)
	if err != nil {
		return err
	}
	_, err = store.Put(ctx, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfNoneMatch: true})
	if err == nil {
		return nil
	}
	if !objstore.IsPreconditionFailed(err) {
		return fmt.Errorf("promote: write the end marker %s: %w", key, err)
	}
	h, tr, err := readTaken(ctx, store, key)
	if err != nil {
		return fmt.Errorf("promote: the end marker's key %s is taken, and cannot be read: %w", key, err)
	}
	if h.Flags&segments.FlagEnd != 0 && tr.BatchCount == 0 {
		return nil
	}
	return fmt.Errorf("%w: the old primary uploaded %s (sequences %d to %d of timeline %d) after the standby's %d; apply it and promote again",
		ErrMoreToApply, key, h.FirstSeq, tr.NextSeq-1, k, s)
}

// archivedAfter fails with ErrMoreToApply when timeline k's archive holds
// a batch after s: a standby stopped inside a segment, or the old primary
// uploaded more. An end marker at s+1 would then cut those batches out of
// the new timeline while the old primary's next key stayed free. When the
// timeline already ends with a marker (a promotion cut short before its
// commit), only a promotion at the marker's own point may go on: below it,
// the archive holds batches up to the marker; above it, the standby holds
// batches that the timeline's archive never had.
// For a standby that is caught up nothing follows s, and the listing goes
// back to the newest base of k in m below s (catalog.LastSegment): it
// lists the segments since that base, not the whole timeline.
func archivedAfter(ctx context.Context, store objstore.Store, m *manifest.Manifest, k uint32, s uint64) error {
	last, _, err := catalog.LastSegment(ctx, store, m, k, s)
	if err != nil {
		return fmt.Errorf("promote: read the segments of timeline %d: %w", k, err)
	}
	switch {
	case last == nil:
		if end := baseEnd(m, k, s); end < s {
			return fmt.Errorf("promote: %w: timeline %d's archive ends at sequence %d (no segment after it), the standby is at %d; "+
				"the batches between reached it by the live stream only", ErrUnarchived, k, end, s)
		}
	case !last.End && last.Next < s+1 && baseEnd(m, k, s) < s:
		return fmt.Errorf("promote: %w: timeline %d's archive ends at sequence %d (segment %s), the standby is at %d; "+
			"the batches between reached it by the live stream only", ErrUnarchived, k, max(last.Next-1, baseEnd(m, k, s)), last.Key, s)
	case !last.End && last.Next > s+1:
		return fmt.Errorf("%w: segment %s holds batches of timeline %d up to sequence %d, after the standby's %d; apply them and promote again",
			ErrMoreToApply, last.Key, k, last.Next-1, s)
	case last.End && last.First > s+1:
		return fmt.Errorf("%w: timeline %d ends with the end marker %s of a promotion that did not commit, and holds batches up to sequence %d, after the standby's %d; "+
			"apply them (the standby stops at the marker) and promote again, at %d",
			ErrMoreToApply, k, last.Key, last.First-1, s, last.First-1)
	case last.End && last.First < s+1:
		return fmt.Errorf("promote: timeline %d ends with the end marker %s at sequence %d, but the standby is at %d: "+
			"it holds batches that timeline %d's archive does not; rebuild it from an empty folder", k, last.Key, last.First, s, k)
	}
	return nil
}

// readTaken reads the header and trailer of the segment at key with one
// HEAD and one ranged GET, never the whole segment.
func readTaken(ctx context.Context, store objstore.Store, key string) (segments.Header, segments.Trailer, error) {
	info, err := store.Head(ctx, key)
	if err != nil {
		return segments.Header{}, segments.Trailer{}, err
	}
	return catalog.ReadTrailer(ctx, store, key, info.Size)
}

// baseEnd is where timeline k of m ends when it has no segment at or
// below s: its newest base up to s, else its branch point.
func baseEnd(m *manifest.Manifest, k uint32, s uint64) uint64 {
	var end uint64
	if t, ok := m.Timeline(k); ok {
		end = t.Branch
	}
	for _, b := range m.Bases {
		if b.Timeline == k && b.Sequence <= s {
			end = max(end, b.Sequence)
		}
	}
	return end
}

// uploadStreamed uploads the batches of streamed after timeline k's
// archive's end, up to s, as its next segment: create-only, so that an
// upload of the old primary's archiver that came first stays (it holds
// the same batches, from the same WAL), and is then looked at again. It
// returns how many batches it uploaded.
func uploadStreamed(ctx context.Context, store objstore.Store, m *manifest.Manifest, k uint32, s uint64, streamed []segments.Batch, now time.Time) (int, error) {
	uploaded := 0
	for try := 0; try < maxDrains && len(streamed) > 0; try++ {
		last, _, err := catalog.LastSegment(ctx, store, m, k, s)
		if err != nil {
			return uploaded, fmt.Errorf("promote: read the segments of timeline %d: %w", k, err)
		}
		end := baseEnd(m, k, s) // a base after the last segment (a hole's) ends the archive too
		if last != nil {
			if last.End {
				return uploaded, nil // archivedAfter decides
			}
			end = max(end, last.Next-1)
		}
		if end >= s {
			return uploaded, nil
		}
		i := 0
		for i < len(streamed) && streamed[i].Seq <= end {
			i++
		}
		bs := streamed[i:]
		if len(bs) == 0 || bs[0].Seq != end+1 || bs[len(bs)-1].Seq+uint64(bs[len(bs)-1].Count)-1 != s {
			return uploaded, nil // not contiguous: archivedAfter says what is missing
		}
		key := manifest.SegmentKey(k, end+1)
		var buf bytes.Buffer
		w, err := segments.NewWriter(&buf, segments.Header{Codec: segments.CodecZstd, Timeline: uint64(k), FirstSeq: end + 1, Created: now.UTC()}, segments.WriterOptions{})
		for _, b := range bs {
			if err == nil {
				err = w.Append(b)
			}
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil {
			return uploaded, fmt.Errorf("promote: build segment %s of the batches received by stream: %w", key, err)
		}
		_, err = store.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true})
		switch {
		case err == nil:
			return uploaded + len(bs), nil
		case !objstore.IsPreconditionFailed(err):
			return uploaded, fmt.Errorf("promote: upload segment %s of the batches received by stream: %w", key, err)
		}
		// The old primary's archiver uploaded that key meanwhile: look again.
	}
	return uploaded, nil
}
