package archive

import (
	"context"
	"errors"
	"fmt"
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
//     rule 3). A base that fails is tried again every RetryMax; a stop
//     leaves the hole open, and the next start takes the base.

// recoverGap handles a WAL that no longer holds the batch needed next:
// it records the hole, takes the base that ends it, and continues after
// the base.
func (a *Archiver) recoverGap(ctx context.Context, cause error) error {
	if err := a.waitBase(ctx); err != nil {
		return err
	}
	from := a.next
	a.log.Error("the WAL needed next is gone: batches are lost to point-in-time restore; recording the hole and taking a new base",
		"missing_from", from, "cause", cause,
		"fix", "keep more WAL on the writer (WAL_ttl_seconds / WAL_size_limit_MB), write with the WAL on, and keep the archiver running")
	if err := a.openHole(ctx, from, "the WAL was gone before the archiver read it: "+cause.Error()); err != nil {
		return fmt.Errorf("record the hole from %d: %w", from, err)
	}
	a.count(func(s *Stats) { s.Holes++ })
	return a.endHole(ctx, from)
}

// openHole adds an open hole from sequence from to the manifest, unless
// one starting there is recorded already (this archiver's own, after an
// ambiguous failure, or before a restart). An open hole that starts after
// from is made to start at from instead: two would overlap.
func (a *Archiver) openHole(ctx context.Context, from uint64, reason string) error {
	tl := a.writer.Timeline
	m, etag, err := manifest.Update(ctx, a.store, a.writerRecord(), func(m *manifest.Manifest) error {
		for i, h := range m.Holes {
			if h.Timeline == tl && h.From == from {
				return nil
			}
			if h.Timeline == tl && h.To == manifest.MaxSequence && h.From > from {
				m.Holes[i].From = from
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

// endHole takes the base that ends the open hole from sequence from, trying
// again every RetryMax until it is in or the archiver stops or is fenced,
// and continues reading after it.
func (a *Archiver) endHole(ctx context.Context, from uint64) error {
	tl := a.writer.Timeline
	closeHole := func(m *manifest.Manifest, b manifest.Base) {
		for i, h := range m.Holes {
			if h.Timeline == tl && h.From == from && h.To == manifest.MaxSequence && b.Sequence >= from {
				m.Holes[i].To = b.Sequence
			}
		}
	}
	for attempt := 1; ; attempt++ {
		b, err := a.takeBase(ctx, closeHole)
		if err == nil && b.Sequence+1 < from {
			err = fmt.Errorf("the new base ends at %d, before the hole", b.Sequence)
		}
		if err == nil {
			return a.afterHole(b, from)
		}
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
		case <-ctx.Done():
			return fmt.Errorf("end the hole from %d with a base: %w", from, ctx.Err())
		}
	}
}

// afterHole continues after the base b that ended the hole from from.
func (a *Archiver) afterHole(b manifest.Base, from uint64) error {
	a.count(func(s *Stats) { s.LastSequence = b.Sequence })
	a.archived(b.Sequence)
	a.next = b.Sequence + 1
	if err := a.src.Seek(a.next); err != nil {
		return fmt.Errorf("read the WAL from sequence %d: %w", a.next, err)
	}
	a.streamStart()
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
