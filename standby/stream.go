package standby

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/rockstream/rockstream/catalog"
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
	c     *stream.Client
	stale int64         // frames of connections up to this one are dropped
	held  *stream.Frame // a frame taken while sleeping
	// kept are the batches applied from the stream that the bucket may
	// lack, in order, each with the epoch of the writer that last sent it.
	kept      []keptBatch
	connected bool // the last look found it connected and fresh
}

// keptBatch is a batch applied from the stream, and the epoch of the
// writer whose stream last held it.
type keptBatch struct {
	segments.Batch
	epoch uint64
}

// startStream starts the client of Options.Stream, if any, until ctx ends.
// A standby whose database is ahead of the bucket (it applied batches from
// the stream before a restart, which it no longer holds) streams again only
// once the bucket holds its start: the transactions prepared before the run
// are read from the bucket (txns.go), and a prepare that only the stream
// brought would be missing.
func (s *Standby) startStream(ctx context.Context, tl uint32) {
	c := s.opts.Stream
	if c == nil {
		return
	}
	s.strm.c = c
	var end uint64 // not known (a store error): after the next segment applied
	if last, _, err := catalog.LastSegment(ctx, s.store, s.m, tl, s.from); err == nil {
		if t, ok := s.m.Timeline(tl); ok {
			end = t.Branch
		}
		for _, b := range s.m.Bases {
			if b.Timeline == tl && b.Sequence <= s.from {
				end = max(end, b.Sequence)
			}
		}
		if last != nil && !last.End {
			end = max(end, last.Next-1)
		} else if last != nil {
			end = max(end, last.First-1)
		}
	}
	s.bucketHolds(end)
	if end < s.from {
		s.log.Info("the database is ahead of the bucket (batches applied from the stream before a restart): streaming again once the bucket holds them",
			"applied", s.from, "bucket", end)
	}
	c.Identity = s.m.Identity
	c.From = func() (uint32, uint64, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		ok := (s.st.State == Following || s.st.State == Promoting) && time.Now().After(s.streamPaused) && s.bucketEnd >= s.from
		from := s.st.Applied + 1
		if s.streamFrom != 0 {
			// From the first batch the bucket may lack: the standby
			// checks that the primary still holds what it applied.
			from = s.streamFrom
		}
		return s.st.Timeline, from, ok
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
		if fr.Conn <= st.stale || s.streamIsPaused() {
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
		if err == nil && !use && b.Seq <= applied {
			err = st.check(b.Seq, b.Count, b.Data, b.Epoch)
		}
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
		if g.redelivered(sb) { // redeliver.go: a prepare applied already
			st.c.Release(len(b.Data))
			continue
		}
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
		st.kept = append(st.kept, keptBatch{sb, b.Epoch})
		if b.Count > 0 {
			applied = b.Next() - 1
		}
		s.update(func(ss *Status) { ss.Head = max(ss.Head, b.Next()-1) })
		s.setBehind(b.Time)
		n++
	}
	err := g.apply(ctx)
	if n > 0 {
		// The database may now end inside a segment: the next read of the
		// bucket finds the segment that holds applied+1 (findContaining)
		// rather than taking a missing key as one pruned. streaming sets
		// this too when it sees the stream go down, but only if it saw it
		// up: a stream whose frames never stopped until it ended (a
		// standby that fell behind it) was never seen up, and the standby
		// stopped with ErrRebuild (exit 5) under a writer at full speed.
		f.resume = true
	}
	s.mu.Lock()
	s.streamBatches += int64(n)
	s.mu.Unlock()
	s.keptChanged()
	return n, err
}

// check compares a batch at or below the latest sequence, from the stream
// (of the writer epoch) or a segment (epoch 0), with the batch kept at its
// sequence, if any: a primary that lost writes this standby applied from
// the stream (a crash before they were synced) and wrote others at the
// same sequences has diverged from it. A match records the epoch that
// holds it.
func (st *streamState) check(seq uint64, count uint32, data []byte, epoch uint64) error {
	i := sort.Search(len(st.kept), func(i int) bool { return st.kept[i].Seq >= seq })
	if i == len(st.kept) || st.kept[i].Seq != seq {
		return nil // not applied from the stream, or already in the bucket
	}
	for ; i < len(st.kept) && st.kept[i].Seq == seq; i++ { // a prepare and its batch share a Seq
		if k := &st.kept[i]; k.Count == count && bytes.Equal(k.Data, data) {
			if epoch != 0 {
				k.epoch = epoch
			}
			return nil
		}
	}
	return fmt.Errorf("%w: the primary no longer holds the batch at sequence %d that this standby applied from its live stream "+
		"(it lost writes that were not on its disk yet, and wrote others at the same sequences): this standby is ahead of it on "+
		"another history; rebuild it from an empty folder", ErrRebuild, seq)
}

// keptChanged publishes where the next stream starts: the first kept
// batch (0: after the latest sequence).
func (s *Standby) keptChanged() {
	var from uint64
	if len(s.strm.kept) > 0 {
		from = s.strm.kept[0].Seq
	}
	s.mu.Lock()
	s.streamKept, s.streamFrom = len(s.strm.kept), from
	s.mu.Unlock()
}

// streamIsPaused reports a stream kept off (pauseStream).
func (s *Standby) streamIsPaused() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return time.Now().Before(s.streamPaused)
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
	s.trimKept(hb.Archived, hb.Epoch)
	if w := s.m.Writer; w != nil && w.Timeline == f.tl && w.Epoch == hb.Epoch {
		s.bucketHolds(hb.Archived)
	}
	if hb.Next > 0 {
		s.update(func(ss *Status) { ss.Head = max(ss.Head, hb.Next-1) })
	}
}

// trimKept forgets the batches kept up to sequence archived, which the
// bucket holds, and returns their bytes to the stream's budget: those of
// the writer epoch only (a heartbeat's), or any (epoch 0: a segment's,
// whose batches were compared with them as they were skipped).
func (s *Standby) trimKept(archived, epoch uint64) {
	st := &s.strm
	if st.c == nil {
		return
	}
	i := 0
	for ; i < len(st.kept); i++ {
		k := st.kept[i]
		if k.Seq > archived || k.Count > 0 && k.Seq+uint64(k.Count)-1 > archived || epoch != 0 && k.epoch != epoch {
			break
		}
		st.c.Release(len(k.Data))
	}
	if i > 0 {
		st.kept = append(st.kept[:0], st.kept[i:]...)
		s.keptChanged()
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
	st.kept = nil
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
// read next is past the standby's latest sequence. It ends sooner when a
// connection tried after the wait began failed: the primary is down, and
// there is nothing to drain (an unplanned failover).
func (s *Standby) drainStream(ctx context.Context, f *follower, d time.Duration) error {
	c := s.strm.c
	if c == nil {
		return nil
	}
	start := time.Now()
	c.Hurry()
	for ctx.Err() == nil && time.Since(start) < d {
		if _, err := s.applyStream(ctx, f, limitOf(s, f)); err != nil {
			return err
		}
		cs := c.Status()
		if !cs.Connected && cs.FailedAt.After(start) {
			s.log.Info("the live stream is down: promoting with what was applied", "error", cs.Error)
			return nil
		}
		if cs.Connected && cs.LastAt.After(start) && cs.Last.Next <= s.db.LatestSequence()+1 && s.strm.held == nil && len(c.Frames()) == 0 {
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

// aheadOfBucket reports a database past what the bucket is known to hold.
func (s *Standby) aheadOfBucket(applied uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.strm.c != nil && s.bucketEnd < applied
}

// bucketHolds records that the bucket holds the batches up to seq.
func (s *Standby) bucketHolds(seq uint64) {
	s.mu.Lock()
	s.bucketEnd = max(s.bucketEnd, seq)
	s.mu.Unlock()
}

// batches are the kept batches, for the promotion.
func (st *streamState) batches() []segments.Batch {
	bs := make([]segments.Batch, len(st.kept))
	for i, k := range st.kept {
		bs[i] = k.Batch
	}
	return bs
}
