package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// A WAL gap is recorded in two steps, so that the hole is in the manifest
// before anything else happens (a base can take long, fail, or be cut short
// by a stop):
//
//  1. openHole records the hole with no end yet (To is manifest.MaxSequence):
//     every reader then sees nothing restorable from its first sequence on.
//  2. The base that ends it is taken, and its commit sets the hole's end to
//     the base's sequence in the same compare-and-swap (docs/FORMAT.md,
//     rule 3). Its checkpoint is taken in the loop; its upload and commit
//     run in the background (basebg.go) while the loop reads and seals
//     the batches after it, so that the WAL after it is read while the
//     base uploads (a writer that keeps no WAL deletes it meanwhile). The
//     segments sealed meanwhile wait in the upload queue (uploader.hold)
//     until the base is in: no segment after a base that is not in the
//     manifest reaches the bucket (rule 2: a segment starts where the one
//     before ends, or where a base ends a hole), and reading stops when
//     the queue is full. A new gap meanwhile waits for that base (an
//     abandoned base would leave the hole open for ever under a writer
//     that keeps deleting its WAL), then gets its own hole. A base that
//     fails drops the segments held (they are inside the hole) and is
//     taken again, with a new checkpoint; a stop lets it go on until the
//     stop's deadline, then leaves the hole open: the next start takes
//     the base.

// recoverGap handles a WAL that no longer holds the batch needed next, or
// a hole's base that failed (holeLost): it records the hole (unless one is
// open already: it covers this gap too), takes the checkpoint that ends
// it, starts its upload in the background, and continues after it.
func (a *Archiver) recoverGap(ctx context.Context, cause error) error {
	if err := a.waitBase(ctx); err != nil {
		return err
	}
	a.holeLost = false
	from := a.next
	if a.hole != 0 {
		from = a.hole
		a.log.Warn("the hole's base is not in yet: taking it again", "hole_from", from, "cause", cause)
	} else {
		a.log.Error("the WAL needed next is gone: batches are lost to point-in-time restore; recording the hole and taking a new base",
			"missing_from", from, "cause", cause,
			"fix", "keep more WAL on the writer (WAL_ttl_seconds / WAL_size_limit_MB), write with the WAL on, and keep the archiver running")
		if err := a.openHole(ctx, from, "the WAL was gone before the archiver read it: "+cause.Error()); err != nil {
			return fmt.Errorf("record the hole from %d: %w", from, err)
		}
		a.count(func(s *Stats) { s.Holes++ })
		a.hole = from
	}
	return a.holeBase(ctx, from)
}

// holeBase takes the checkpoint of the base that ends the open hole from
// sequence from (tried again every RetryMax until it is taken, or the
// archiver stops), starts its upload and commit in the background, and
// continues reading after it.
func (a *Archiver) holeBase(ctx context.Context, from uint64) error {
	for attempt := 1; ; attempt++ {
		now := a.opts.Now()
		j, err := a.checkpoint(a.closeHole(from))
		if err == nil && j.seq+1 < from {
			os.RemoveAll(j.dir)
			err = fmt.Errorf("the new base ends at %d, before the hole", j.seq)
		}
		if err == nil {
			a.up.hold(j.seq + 1) // until the base is in
			a.startBase(ctx, j, now, from)
			a.walBytes = 0
			a.count(func(s *Stats) { s.LastSequence = j.seq })
			a.next = j.seq + 1
			if err := a.src.Seek(a.next); err != nil {
				return fmt.Errorf("read the WAL from sequence %d: %w", a.next, err)
			}
			a.log.Warn("the base that ends the hole is uploading; archiving again after it", "hole_from", from, "base", j.seq,
				"missing", fmt.Sprintf("%d..%d", from, j.seq-1), "next_sequence", a.next)
			return nil
		}
		if err := a.holeRetry(ctx, from, attempt, err); err != nil {
			return err
		}
	}
}

// closeHole is the manifest change that a base at or after from makes to
// the open hole from from: its end is the base's sequence.
func (a *Archiver) closeHole(from uint64) func(*manifest.Manifest, manifest.Base) {
	tl := a.writer.Timeline
	return func(m *manifest.Manifest, b manifest.Base) {
		for i, h := range m.Holes {
			if h.Timeline == tl && h.From == from && h.To == manifest.MaxSequence && b.Sequence >= from {
				m.Holes[i].To = b.Sequence
			}
		}
	}
}

// holeRetry logs a failed try at the hole's base and waits before the
// next; a stop or a fence ends the tries.
func (a *Archiver) holeRetry(ctx context.Context, from uint64, attempt int, err error) error {
	if ctx.Err() != nil || errors.Is(err, manifest.ErrFenced) {
		return fmt.Errorf("end the hole from %d with a base: %w", from, err)
	}
	wait := a.opts.RetryMax
	if errors.Is(err, ErrBaseNotYet) {
		wait = min(wait, notYetRetry)
	}
	if !errors.Is(err, ErrBaseNotYet) || attempt%60 == 1 {
		a.log.Error("the base that ends the hole failed; trying again", "hole_from", from, "attempt", attempt,
			"in", wait, "error", err)
	}
	select {
	case <-time.After(wait):
		return nil
	case <-ctx.Done():
		return fmt.Errorf("end the hole from %d with a base: %w", from, ctx.Err())
	}
}

// openHole adds an open hole from sequence from to the manifest, unless
// one starting there is recorded already (this archiver's own, after an
// ambiguous failure, or before a restart).
func (a *Archiver) openHole(ctx context.Context, from uint64, reason string) error {
	tl := a.writer.Timeline
	m, etag, err := manifest.Update(ctx, a.store, a.writerRecord(), func(m *manifest.Manifest) error {
		for _, h := range m.Holes {
			if h.Timeline == tl && h.From == from {
				return nil
			}
		}
		m.Holes = append(m.Holes, manifest.Hole{Timeline: tl, From: from, To: manifest.MaxSequence,
			Detected: a.opts.Now().UTC(), Reason: reason})
		return nil
	})
	if err != nil {
		return err
	}
	a.m, a.etag = m, etag
	a.log.Warn("hole recorded; nothing from its first sequence on is restorable until the base that ends it is in the archive",
		"hole_from", from)
	return nil
}

// endHole takes the base that ends the open hole from sequence from, before
// anything is read (an archiver that starts on an open hole), trying again
// every RetryMax until it is in or the archiver stops or is fenced, and
// continues reading after it.
func (a *Archiver) endHole(ctx context.Context, from uint64) error {
	for attempt := 1; ; attempt++ {
		b, err := a.takeBase(ctx, a.closeHole(from))
		if err == nil && b.Sequence+1 < from {
			err = fmt.Errorf("the new base ends at %d, before the hole", b.Sequence)
		}
		if err == nil {
			return a.afterHole(b, from)
		}
		if err := a.holeRetry(ctx, from, attempt, err); err != nil {
			return err
		}
	}
}

// afterHole continues after the base b that ended the hole from from.
func (a *Archiver) afterHole(b manifest.Base, from uint64) error {
	a.count(func(s *Stats) { s.LastSequence = b.Sequence })
	a.hole = 0
	a.archived(b.Sequence)
	a.next = b.Sequence + 1
	if err := a.src.Seek(a.next); err != nil {
		return fmt.Errorf("read the WAL from sequence %d: %w", a.next, err)
	}
	a.log.Warn("the hole is ended by a base; archiving again", "hole_from", from, "base", b.Sequence,
		"missing", fmt.Sprintf("%d..%d", from, b.Sequence-1), "next_sequence", a.next)
	return nil
}

// writerRecord is the writer that a manifest update is made as: this
// archiver once it has claimed the manifest.
func (a *Archiver) writerRecord() *manifest.Writer {
	if a.claimed {
		return &a.writer
	}
	return nil
}
