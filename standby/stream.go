package standby

import (
	"cmp"
	"context"
	"errors"
	"math"
	"time"

	"github.com/rockstream/rockstream/segments"
	"github.com/rockstream/rockstream/stream"
)

// The live stream (Options.Stream): batches the archiver serves as it
// reads them, before their segment is sealed. The follow loop applies
// them with the checks of a segment's (continuity through the same
// pending and applyBatches, the column family changes due before each,
// and the frames' CRC in package stream), and only those of the timeline
// it follows, from the writer the manifest names for it: a frame of an
// older epoch (a fenced archiver) or another timeline ends the stream.
// While the stream is connected the bucket is not polled; when it is not,
// the standby reads the bucket as it does without one, from its latest
// sequence (which may be inside a segment: it lists once). The batches
// applied from the stream are kept until a heartbeat says the bucket holds
// them (their bytes are the stream's budget, stream.Client.MaxBytes): a
// promotion uploads those the archive still lacks (promote.Options.Streamed).

// streamFresh is how old the stream's newest frame may be for the standby
// to leave the bucket alone.
const streamFresh = 3 * time.Second

// StreamStatus is what the live stream does, in Status.
type StreamStatus struct {
	URL       string    `json:"url"`
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitempty"`
	Error     string    `json:"error,omitempty"`
	// Batches counts the batches applied from the stream (this run);
	// Connects the streams opened.
	Batches  int64 `json:"batches_applied"`
	Connects int64 `json:"connects"`
	// Unarchived counts the batches applied from the stream that the
	// bucket did not hold at the last heartbeat.
	Unarchived int `json:"unarchived_batches"`
	// ArchiverNext and Archived are from the last heartbeat: what the
	// archiver reads next, and the last sequence the bucket holds.
	ArchiverNext uint64 `json:"archiver_next"`
	Archived     uint64 `json:"archived"`
}

// streamState is the follow loop's side of the stream.
type streamState struct {
	c         *stream.Client
	stale     int64         // frames of connections up to this one are dropped
	held      *stream.Frame // a frame taken while sleeping
	kept      []segments.Batch
	keptBytes int
	connected bool // the last look found it connected and fresh
}

// startStream starts the client of Options.Stream, if any, until ctx ends.
func (s *Standby) startStream(ctx context.Context) {
	c := s.opts.Stream
	if c == nil {
		return
	}
	s.strm.c = c
	c.From = func() (uint32, uint64, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ok := (s.st.State == Following || s.st.State == Promoting) && time.Now().After(s.streamPaused)
		return s.st.Timeline, s.st.Applied + 1, ok
	}
	if c.Logger == nil {
		c.Logger = s.log
	}
	go c.Run(ctx)
}

// streaming reports whether the stream is connected and fresh: the bucket
// is then not polled. When it stops being so, the next GET lists first,
// since the latest sequence may be inside a segment.
func (s *Standby) streaming(f *follower) bool {
	c := s.strm.c
	if c == nil {
		return false
	}
	st := c.Status()
	last := st.Since
	if st.LastAt.After(last) {
		last = st.LastAt
	}
	ok := st.Connected && time.Since(last) < streamFresh
	if s.strm.connected && !ok {
		f.resume = true
		s.log.Info("the live stream is down: reading the bucket", "stream", c.URL, "error", st.Error)
	}
	s.strm.connected = ok
	return ok
}

// next returns the next frame at hand, without waiting.
func (st *streamState) next() (stream.Frame, bool) {
	if f := st.held; f != nil {
		st.held = nil
		return *f, true
	}
	select {
	case f := <-st.c.Frames():
		return f, true
	default:
		return stream.Frame{}, false
	}
}

// drop ends the current stream: its queued frames are dropped, and the
// client connects again from the latest sequence.
func (st *streamState) drop() {
	st.stale = st.c.Conns()
	st.c.Reconnect()
}

// applyStream applies the stream's frames at hand, up to limit (a branch
// point). It reports how many batches it applied.
func (s *Standby) applyStream(ctx context.Context, f *follower, limit uint64) (int, error) {
	st := &s.strm
	if st.c == nil {
		return 0, nil
	}
	g := &s.pend
	g.s, g.tl, g.key = s, f.tl, "of the live stream "+st.c.URL
	defer g.reset()
	applied := s.db.LatestSequence()
	n := 0
	for ctx.Err() == nil {
		fr, ok := st.next()
		if !ok {
			break
		}
		if fr.Conn <= st.stale {
			if fr.Batch != nil {
				st.c.Release(len(fr.Batch.Data))
			}
			continue
		}
		if hb := fr.Heartbeat; hb != nil {
			s.heartbeat(f, hb)
			continue
		}
		b := fr.Batch
		use, err := s.streamUsable(ctx, f, b, applied, limit)
		if !use {
			st.c.Release(len(b.Data))
			refused := errors.Is(err, errStreamRefused)
			if err != nil && !refused {
				return n, cmp.Or(g.apply(ctx), err)
			}
			if refused {
				s.pauseStream(streamPause)
			}
			if refused || b.Seq > applied+1 {
				st.drop()
				break
			}
			continue // applied already
		}
		sb := segments.Batch{Seq: b.Seq, Count: b.Count, Time: b.Time, Data: b.Data}
		if !s.familiesQuiet(f.tl, sb) {
			if err := g.apply(ctx); err != nil {
				return n, err
			}
			if ready, err := s.familiesBefore(ctx, f.tl, sb); err != nil || !ready {
				st.c.Release(len(b.Data))
				st.drop()
				return n, err
			}
		}
		if err := g.add(ctx, sb); err != nil {
			return n, err
		}
		st.kept = append(st.kept, sb)
		st.keptBytes += len(sb.Data)
		if b.Count > 0 {
			applied = b.Next() - 1
		}
		s.update(func(ss *Status) { ss.Head = max(ss.Head, b.Next()-1) })
		s.setBehind(b.Time)
		n++
	}
	err := g.apply(ctx)
	s.mu.Lock()
	s.streamBatches += int64(n)
	s.streamKept = len(st.kept)
	s.mu.Unlock()
	return n, err
}

// streamPause is how long the stream stays off after a frame was refused.
const streamPause = 5 * time.Second

// pauseStream keeps the client from connecting for d.
func (s *Standby) pauseStream(d time.Duration) {
	s.mu.Lock()
	s.streamPaused = time.Now().Add(d)
	s.mu.Unlock()
}

// errStreamRefused: a frame the standby must not apply (logged).
var errStreamRefused = errors.New("frame refused")

// streamUsable decides a batch frame: apply it (true), skip it (false:
// applied already, or past limit), or refuse it (errStreamRefused: another
// timeline, a fenced writer, a gap).
func (s *Standby) streamUsable(ctx context.Context, f *follower, b *stream.Batch, applied, limit uint64) (bool, error) {
	switch {
	case b.Timeline != f.tl:
		s.log.Warn("the live stream serves another timeline: not applying it", "stream_timeline", b.Timeline, "timeline", f.tl)
		return false, errStreamRefused
	case b.Seq <= applied:
		return false, nil
	case b.Seq > applied+1:
		s.log.Info("the live stream skipped sequences: connecting again", "expected", applied+1, "got", b.Seq)
		return false, nil
	case f.ended || b.Seq > limit || b.Count > 0 && b.Next()-1 > limit:
		return false, errStreamRefused // past the branch point: the bucket decides
	}
	w := s.m.Writer
	if w == nil || w.Timeline != f.tl || b.Epoch > w.Epoch {
		// A newer writer, or the manifest is older than the archiver:
		// read it now before anything of that epoch is applied.
		if err := s.checkManifest(ctx, true); err != nil {
			return false, err
		}
		w = s.m.Writer
	}
	if w == nil || w.Timeline != f.tl || b.Epoch != w.Epoch {
		s.log.Warn("the live stream comes from a writer the manifest does not name for this timeline (fenced?): not applying it",
			"stream_timeline", b.Timeline, "stream_epoch", b.Epoch, "writer", writerName(s.m))
		return false, errStreamRefused
	}
	return true, nil
}

// heartbeat notes what the archiver has read, and forgets the batches
// kept that the bucket now holds.
func (s *Standby) heartbeat(f *follower, hb *stream.Heartbeat) {
	if hb.Timeline != f.tl {
		return
	}
	s.trimKept(hb.Archived)
	if hb.Next > 0 {
		s.update(func(ss *Status) { ss.Head = max(ss.Head, hb.Next-1) })
	}
}

// trimKept forgets the batches kept up to sequence archived, which the
// bucket holds, and returns their bytes to the stream's budget.
func (s *Standby) trimKept(archived uint64) {
	st := &s.strm
	if st.c == nil {
		return
	}
	i := 0
	for i < len(st.kept) && st.kept[i].Seq <= archived && (st.kept[i].Count == 0 || st.kept[i].Seq+uint64(st.kept[i].Count)-1 <= archived) {
		st.c.Release(len(st.kept[i].Data))
		st.keptBytes -= len(st.kept[i].Data)
		i++
	}
	if i > 0 {
		st.kept = append(st.kept[:0], st.kept[i:]...)
		s.mu.Lock()
		s.streamKept = len(st.kept)
		s.mu.Unlock()
	}
}

// forgetKept returns every kept batch to the budget (a new timeline).
func (st *streamState) forgetKept() {
	if st.c == nil {
		return
	}
	for _, b := range st.kept {
		st.c.Release(len(b.Data))
	}
	st.kept, st.keptBytes = nil, 0
}

// streamWait is the wait of sleep: until a frame comes, when streaming.
func (s *Standby) streamWait() <-chan stream.Frame {
	if s.strm.c == nil || s.strm.held != nil {
		return nil
	}
	return s.strm.c.Frames()
}

// streamStatus is the stream's part of Status, under s.mu.
func (s *Standby) streamStatus() *StreamStatus {
	c := s.opts.Stream
	if c == nil {
		return nil
	}
	cs := c.Status()
	return &StreamStatus{URL: c.URL, Connected: cs.Connected, Since: cs.Since, Error: cs.Error, Connects: cs.Connects,
		ArchiverNext: cs.Last.Next, Archived: cs.Last.Archived, Batches: s.streamBatches, Unarchived: s.streamKept}
}

// limitOf is the last sequence the standby may apply on f.tl: a child
// timeline's branch point, or none.
func limitOf(s *Standby, f *follower) uint64 {
	if child, ok, err := s.branch(f.tl, s.db.LatestSequence()); err == nil && ok {
		return child.Branch
	}
	return math.MaxUint64
}

// drainStream waits, up to d, until the stream's archiver has nothing the
// standby lacks: a heartbeat sent after the wait began says that what it
// read next is past the standby's latest sequence. A stream that is down
// ends the wait at once: there is nothing to drain (an unplanned failover).
func (s *Standby) drainStream(ctx context.Context, f *follower, d time.Duration) error {
	c := s.strm.c
	if c == nil {
		return nil
	}
	start := time.Now()
	for ctx.Err() == nil && time.Since(start) < d {
		if _, err := s.applyStream(ctx, f, limitOf(s, f)); err != nil {
			return err
		}
		cs := c.Status()
		if !cs.Connected {
			return nil
		}
		if cs.LastAt.After(start) && cs.Last.Next <= s.db.LatestSequence()+1 && s.strm.held == nil && len(c.Frames()) == 0 {
			return nil
		}
		sleepCtx(ctx, 5*time.Millisecond)
	}
	s.log.Warn("the live stream did not drain in time: promoting with what was applied", "waited", d)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
