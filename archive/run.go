package archive

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// Run archives until ctx ends or a failure stops it. When ctx ends it
// seals and uploads what it has read (within Options.DrainTimeout) and
// returns nil. A failure that fences it wraps manifest.ErrFenced.
func (a *Archiver) Run(ctx context.Context) error {
	needBase, err := a.start(ctx)
	if err == nil && needBase {
		err = a.firstBase(ctx)
	} else if err == nil {
		err = a.resumeFamilies(ctx) // families.go
	}
	defer func() { a.endBase(ctx.Err() != nil) }() // a hole's base, below (the loop ends its own)
	if err == nil {
		// Any open hole of the timeline: one that starts before where the
		// archive ends had segments uploaded after its base's checkpoint
		// while that base was cut short (hole.go).
		if h, open := a.openHoleAt(0); open {
			a.log.Warn("the archive holds a hole that no base ends yet: taking that base", "hole_from", h.From)
			from := h.From
			if h.From > a.next {
				// The segments before it were not all uploaded: the hole
				// starts where the archive ends (the WAL may have lost them
				// too, and a hole that starts later could not be ended).
				a.log.Warn("the archive ends before the hole starts: the hole now starts where the archive ends",
					"archive_ends", a.next-1, "hole_from", h.From)
				err, from = a.openHole(ctx, a.next, h.Reason), a.next
			}
			if err == nil {
				err = a.endHole(ctx, from)
			}
		}
	}
	if err != nil && ctx.Err() != nil {
		a.log.Info("stopped while starting; nothing was read yet")
		return nil // what a stop interrupted was never committed
	}
	if err != nil {
		return err
	}
	if err := a.src.Seek(a.next); err != nil {
		return fmt.Errorf("read the WAL from sequence %d: %w", a.next, err)
	}
	a.observeHead(true) // the lag against the database from the start (Stats.HeadKnown)
	a.streamStart()
	if a.opts.Stream != nil {
		defer a.opts.Stream.Close()
	}
	a.checkReplay()
	pctx, stopPrunes := context.WithCancel(ctx)
	a.retention = a.startRetention(pctx)
	defer func() { stopPrunes(); <-a.retention.done }()
	for {
		up := a.startUploader(ctx)
		a.sealErr = nil // (no seal runs: the last loop waited for them)
		err = a.loop(ctx, up)
		if werr := a.waitSeals(); err == nil { // sealbg.go
			err = werr
		}
		a.endBase(ctx.Err() != nil)
		if ctx.Err() != nil && err == nil {
			return a.drain(up)
		}
		up.abort()
		if err = a.afterCollision(ctx, err); err != nil {
			return err
		}
	}
}

// afterCollision decides a segment key that another archiver took first:
// fenced if the manifest names another writer now, else (the other is a
// stale writer of the same database, not yet fenced) start again from
// what the bucket holds. Any other error is returned as it is.
func (a *Archiver) afterCollision(ctx context.Context, err error) error {
	var c *collision
	if !errors.As(err, &c) {
		return err
	}
	// Decide even when a stop came meanwhile: the next loop then drains.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.DrainTimeout)
	defer cancel()
	a.etag = "" // read the manifest whole
	if ferr := a.checkFence(ctx); ferr != nil {
		return fmt.Errorf("%v: %w", c, ferr)
	}
	if a.m == nil || a.etag == "" {
		return fmt.Errorf("%v, and the manifest cannot be read to tell who writes", c)
	}
	a.log.Warn("another archiver wrote the next segment; it is stale and will be fenced. Continuing from the bucket", "key", c.key)
	if _, err := a.position(ctx); err != nil {
		return err
	}
	if err := a.src.Seek(a.next); err != nil {
		return fmt.Errorf("read the WAL from sequence %d: %w", a.next, err)
	}
	a.observeHead(true) // the lag against the database from the start (Stats.HeadKnown)
	a.streamStart()
	return nil
}

// building is the segment being filled.
type building struct {
	w       *segments.Writer
	buf     *bytes.Buffer
	opened  time.Time
	batches int
	raw     int64
	// caughtUp: while it was open, a read found nothing new and the
	// database's head was not beyond what was read. Until then the segment
	// is sealed by size only: batches wait in the WAL.
	caughtUp bool
}

// loop reads batches until ctx ends (it then returns nil, having sealed the
// open segment) or a failure.
func (a *Archiver) loop(ctx context.Context, up *uploader) error {
	var cur *building
	lastFence, lastSummary := a.opts.Now(), a.opts.Now()
	a.behind = true // until a segment is sealed in which the reader caught up
	a.resetPending()
	for {
		if ctx.Err() != nil {
			// Stopping: the last segment is queued before the stop's deadline.
			dctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), a.stopDeadline())
			defer cancel()
			return a.seal(dctx, cur, up, true)
		}
		if err := cmp.Or(up.failed(), a.sealFailed()); err != nil {
			return err
		}
		if err := a.retention.failed(); err != nil {
			return fmt.Errorf("the scheduled prune: %w", err)
		}
		now := a.opts.Now()
		if now.Sub(lastFence) >= a.opts.FenceCheck {
			if err := a.checkFence(ctx); err != nil {
				return err
			}
			lastFence = now
		}
		if a.opts.SummaryEvery > 0 && now.Sub(lastSummary) >= a.opts.SummaryEvery {
			a.checkReplay()
			a.summary()
			lastSummary = now
		}
		if err := a.maybeBase(ctx); err != nil {
			return err
		}
		b, ok, err := a.src.Next()
		if err == nil {
			var stop bool
			if cur, stop, err = a.familyChanges(ctx, cur, up); stop {
				continue // families.go; the batch is read again at the next start
			}
		}
		if err == nil && ok && a.alone(cur, b) {
			if err := a.seal(ctx, cur, up, false); err != nil {
				return err
			}
			cur = nil
		}
		if err == nil && ok {
			cur, err = a.add(cur, b)
			a.observeHead(false)
		}
		switch {
		case errors.Is(err, ErrGap):
			if err := a.seal(ctx, cur, up, true); err != nil {
				return err
			}
			cur = nil
			if err := a.recoverGap(ctx, err); err != nil {
				if ctx.Err() != nil {
					continue // stopping: the hole is recorded, the next start ends it
				}
				return err
			}
		case err != nil:
			return fmt.Errorf("read the WAL at sequence %d: %w", a.next, err)
		case ok:
			full := cur.raw >= int64(a.opts.SegmentSize)
			if due := cur.opened.Add(a.opts.SegmentAge); !cur.caughtUp && !now.Before(due) && a.nearHead(due) {
				cur.caughtUp = true // following a steady writer: less than a segment behind
			}
			if full || cur.caughtUp && now.Sub(cur.opened) >= a.opts.SegmentAge {
				if cur, err = a.sealSoon(ctx, cur, up); err != nil {
					return err
				}
			}
		default:
			if cur, err = a.idle(ctx, cur, up); err != nil {
				return err
			}
		}
	}
}

// idle seals a segment that is due, else waits for new batches. A read
// that found nothing while the database's head is beyond what was read
// (the reader waits for a WAL file to be listed) is not caught up: it
// seals nothing by age.
func (a *Archiver) idle(ctx context.Context, cur *building, up *uploader) (*building, error) {
	wait := a.opts.Poll
	a.observeHead(true)
	a.streamPosition()
	if cur != nil && !a.headAhead() {
		cur.caughtUp = true
	}
	if cur != nil && cur.caughtUp {
		due := cur.opened.Add(a.opts.SegmentAge).Sub(a.opts.Now())
		if due > 0 {
			wait = min(wait, due)
		} else if left, err := a.sealSoon(ctx, cur, up); err != nil || left == nil {
			return left, err
		}
		// Else only batches without a sequence: the segment waits for
		// the next batch, a poll away.
	}
	select {
	case <-ctx.Done():
		return cur, nil
	case <-time.After(wait):
	}
	if err := a.src.Refresh(); err != nil {
		return cur, fmt.Errorf("catch up with the database: %w", err)
	}
	return cur, nil
}

// alone reports whether b is a large batch (SegmentSize or more) that
// comes after the batches of an open segment that can be sealed. Such a
// batch gets a segment of its own, sealed right after it (it fills it):
// the batches before it are uploaded without waiting for it; the segment
// that holds it, and so the PUT and the memory that the segment takes
// until then, is about the batch's compressed size and no more; and an
// archiver that stops before that upload starts again at the batch's own
// sequence, the segment's key. The segment writer cuts a batch larger
// than a block into blocks of BlockSize (segments: cut batches).
func (a *Archiver) alone(cur *building, b segments.Batch) bool {
	return cur != nil && len(b.Data) >= a.opts.SegmentSize && cur.w.NextSeq() != cur.w.Header().FirstSeq
}

// add appends b to the open segment, opening one if needed.
func (a *Archiver) add(cur *building, b segments.Batch) (*building, error) {
	switch {
	case b.Seq > a.next:
		return cur, fmt.Errorf("the WAL gave the batch at sequence %d where %d was expected: %w", b.Seq, a.next, ErrGap)
	case b.Seq < a.next:
		return cur, fmt.Errorf("the WAL gave the batch at sequence %d again, after %d", b.Seq, a.next)
	}
	if cur == nil {
		cur = &building{opened: a.opts.Now()}
		a.opened(cur.opened)
		h := segments.Header{Codec: segments.CodecZstd, Timeline: uint64(a.writer.Timeline), FirstSeq: a.next, Created: cur.opened}
		// Sized as the last segment: a buffer that starts small grows
		// to a segment's size (7 MiB for 16 MiB of WAL) by doubling,
		// copying and zeroing as it goes.
		last := int(a.lastSize.Load())
		if last == 0 {
			// None sealed yet (or the first still sealing): a buffer
			// grown by doubling is copied and zeroed at each step, which
			// took a sixth of the archiver's CPU in a catch-up of 136 MB.
			last = a.firstSegmentGuess()
		}
		size := last + last/8
		if len(b.Data) >= a.opts.SegmentSize {
			// A segment of its own: its blocks, stored, take at most a
			// 64th more than the batch (segments.maxStoredLen and headers).
			size = len(b.Data) + len(b.Data)/64 + 1<<20
		}
		cur.buf = bytes.NewBuffer(a.segBufs.get(size))
		var opts segments.WriterOptions
		if a.behind || a.opts.Stream != nil {
			// With a live stream, a block's compression must not hold up
			// the batches read after it either.
			opts.Concurrency = a.opts.Compressors
		}
		w, err := segments.NewWriter(cur.buf, h, opts)
		if err != nil {
			return nil, fmt.Errorf("start a segment at %d: %w", a.next, err)
		}
		cur.w = w
	}
	b.Time = a.opts.Now()
	if h := a.opts.Stream; h != nil {
		// Streamed first: the segment's block may be compressed in the
		// Append. The batch continues the stream (checked above); one that
		// the segment then refuses stops the archiver, and a standby that
		// applied it holds a batch the bucket lacks, as after any stop
		// before an upload.
		h.Publish(b.Seq, b.Count, b.Time, b.Data)
	}
	if err := cur.w.Append(b); err != nil {
		return cur, fmt.Errorf("add the batch at sequence %d to segment %s: %w", b.Seq, manifest.SegmentKey(a.writer.Timeline, cur.w.Header().FirstSeq), err)
	}
	a.next = cur.w.NextSeq()
	cur.batches++
	cur.raw += int64(len(b.Data))
	a.walBytes += int64(len(b.Data))
	a.count(func(s *Stats) {
		s.Batches++
		s.BatchBytes += int64(len(b.Data))
		s.LastSequence = a.next - 1
		a.lag.rawWait += int64(len(b.Data))
	})
	return cur, nil
}

// seal closes the open segment and queues it for upload. A segment whose
// batches use no sequence number stays open (its key would be the next
// segment's), unless final.
func (a *Archiver) seal(ctx context.Context, cur *building, up *uploader, final bool) error {
	if err := a.waitSeals(); err != nil { // sealbg.go: the segments before go first
		return err
	}
	if cur == nil || cur.batches == 0 {
		return nil
	}
	if cur.w.NextSeq() == cur.w.Header().FirstSeq && !final {
		return nil
	}
	if cur.w.NextSeq() == cur.w.Header().FirstSeq {
		a.log.Warn("dropping a segment of batches without operations", "sequence", cur.w.Header().FirstSeq)
		a.dropOpen(cur.raw)
		return nil
	}
	a.behind = !cur.caughtUp
	s, err := a.closeSegment(cur, final)
	if err != nil {
		return err
	}
	return up.queue(ctx, s)
}

// closeSegment closes the segment being filled (its last blocks are
// compressed) and returns it to upload, counting it.
func (a *Archiver) closeSegment(cur *building, final bool) (*sealed, error) {
	if err := cur.w.Close(); err != nil {
		return nil, fmt.Errorf("seal segment at %d: %w", cur.w.Header().FirstSeq, err)
	}
	first := cur.w.Header().FirstSeq
	a.lastSize.Store(int64(min(cur.buf.Len(), a.opts.SegmentSize))) // not that of a segment of one large batch
	s := &sealed{
		key: manifest.SegmentKey(a.writer.Timeline, first), data: cur.buf.Bytes(),
		first: first, next: cur.w.NextSeq(), batches: cur.batches, raw: cur.raw, sealed: a.opts.Now(),
	}
	byAge := cur.raw < int64(a.opts.SegmentSize) && !final
	a.count(func(s *Stats) {
		s.Sealed++
		if byAge {
			s.SealedByAge++
			s.SealedByAgeBytes += cur.raw
		}
	})
	return s, nil
}

// summary logs at info what was archived since the last summary, where
// the archive is, where the database is, and how far the archive lags
// behind it.
func (a *Archiver) summary() {
	s, p := a.Stats(), a.summed
	a.summed = s
	var ago any = "never"
	if !s.LastUpload.IsZero() {
		ago = a.opts.Now().Sub(s.LastUpload).Round(time.Millisecond)
	}
	a.log.Info("archive summary", "timeline", a.writer.Timeline,
		"segments", s.Segments-p.Segments, "puts", s.Segments+s.Retries-p.Segments-p.Retries, "batches", s.Batches-p.Batches,
		"wal_bytes", s.BatchBytes-p.BatchBytes, "uploaded_bytes", s.UploadBytes-p.UploadBytes,
		"retries", s.Retries-p.Retries, "bases", s.Bases-p.Bases, "holes", s.Holes-p.Holes,
		"read_sequence", s.LastSequence, "archived_sequence", s.ArchivedSequence, "head_sequence", s.HeadSequence,
		"lag_sequences", s.LagSequences, "lag_bytes", s.LagBytes, "lag_seconds", roundSeconds(s.LagSeconds),
		"last_upload_ago", ago)
}

// checkFence reads the manifest (a conditional get, 304 when unchanged)
// and fails when another writer took over.
func (a *Archiver) checkFence(ctx context.Context) error {
	m, etag, err := a.readFence(ctx, a.etag, a.writer)
	if m != nil {
		a.m, a.etag = m, etag
	}
	return err
}

// checkFence is the fence check of a base's job, which may run beside the
// loop: it reads the manifest whole and keeps it to itself.
func (j *baseJob) checkFence(ctx context.Context) error {
	_, _, err := j.a.readFence(ctx, "", j.writer)
	return err
}

// readFence reads the manifest unless it still has ETag etag, and fails
// when it names another writer than w. It returns the manifest read (nil
// when unchanged or unreadable); it changes nothing of the Archiver.
func (a *Archiver) readFence(ctx context.Context, etag string, w manifest.Writer) (*manifest.Manifest, string, error) {
	m, etag, err := manifest.Reload(ctx, a.store, etag)
	if err != nil {
		if errors.Is(err, manifest.ErrNoArchive) {
			return nil, "", fenced("the manifest of %s is gone", a.store)
		}
		if errors.Is(err, manifest.ErrInvalid) || errors.Is(err, objstore.ErrAccessDenied) || errors.Is(err, objstore.ErrNoBucket) {
			return nil, "", fmt.Errorf("cannot check the manifest for a new writer, so cannot go on safely: %w", err)
		}
		a.log.Warn("cannot check the manifest for a new writer; will try again", "error", err)
		return nil, "", nil
	}
	if m == nil {
		return nil, etag, nil // unchanged
	}
	if mw := m.Writer; mw == nil || mw.ID != w.ID || mw.Epoch != w.Epoch || mw.Timeline != w.Timeline {
		return m, etag, fenced("the manifest of %s names another writer now (%s)", a.store, describeWriter(mw))
	}
	return m, etag, nil
}

func describeWriter(w *manifest.Writer) string {
	if w == nil {
		return "none"
	}
	return fmt.Sprintf("%s on %s, timeline %d, epoch %d, since %s", w.ID, w.Host, w.Timeline, w.Epoch, w.Since.Format(time.RFC3339))
}

// roundSeconds rounds to milliseconds, for the summary line.
func roundSeconds(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
