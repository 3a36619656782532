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
//     rule 3).
//
// Only the base's checkpoint is taken in the loop (tried again every
// RetryMax, or every second while the Source cannot give a whole one yet).
// The loop then reads the WAL on from the checkpoint's sequence while the
// base is uploaded in the background, as a periodic base is (basebg.go):
// a large database's upload must not stop the reading, or the WAL that the
// writer keeps for a short while would be gone again when it ends, and
// every hole would make the next. The segments sealed meanwhile are
// restorable once the base is in. A new gap meanwhile waits for that base
// (recoverGap), then records its own hole. Until the base is in, every
// base taken ends the hole (holeFrom): one that fails is taken again after
// RetryMax; a new gap after such a failure records no second hole (the
// open one covers it) and takes a new checkpoint; a stop leaves the hole
// open for the next start, which takes the base again (Run). The segments
// uploaded after a checkpoint whose base never committed are then inside
// the hole that a later base ends: no restore reaches them (docs/FORMAT.md,
// rule 3; verify counts them; a prune deletes them with the bases before
// the hole).

// recoverGap handles a WAL that no longer holds the batch needed next:
// it records the hole (unless one that no base ends yet covers it), takes
// the checkpoint of the base that ends it, and reads on after it while the
// base is uploaded.
func (a *Archiver) recoverGap(ctx context.Context, cause error) error {
	if err := a.waitBase(ctx); err != nil {
		return err
	}
	from := a.next
	if a.holeFrom != 0 && a.holeFrom <= from {
		a.log.Error("the WAL needed next is gone again before the base that ends the hole was in: taking that base again",
			"missing_from", from, "hole_from", a.holeFrom, "cause", cause,
			"fix", "keep more WAL on the writer (WAL_ttl_seconds / WAL_size_limit_MB), write with the WAL on, and keep the archiver running")
		return a.endHole(ctx, a.holeFrom)
	}
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
	a.holeFrom = from
	a.log.Warn("hole recorded; nothing from its first sequence on is restorable until the base that ends it is in the archive",
		"hole_from", from)
	return nil
}

// holeCloser is the change that a base's commit makes to end the open hole
// from sequence from: its end becomes the base's sequence.
func (a *Archiver) holeCloser(from uint64) func(*manifest.Manifest, manifest.Base) {
	tl := a.writer.Timeline
	return func(m *manifest.Manifest, b manifest.Base) {
		for i, h := range m.Holes {
			if h.Timeline == tl && h.From == from && h.To == manifest.MaxSequence && b.Sequence >= from {
				m.Holes[i].To = b.Sequence
			}
		}
	}
}

// endHole takes the checkpoint of the base that ends the open hole from
// sequence from, trying again every RetryMax until it has one or the
// archiver stops, reads on after it, and uploads the base in the
// background.
func (a *Archiver) endHole(ctx context.Context, from uint64) error {
	a.holeFrom = from
	for attempt := 1; ; attempt++ {
		started := a.opts.Now()
		j, err := a.checkpoint(a.holeCloser(from))
		if err == nil && j.seq+1 < from {
			os.RemoveAll(j.dir)
			err = fmt.Errorf("the new base ends at %d, before the hole", j.seq)
		}
		if err == nil {
			if err := a.afterHole(j.seq, from); err != nil {
				os.RemoveAll(j.dir)
				return err
			}
			a.lastBase, a.walBytes = started, 0
			a.startBase(ctx, j, started) // basebg.go
			a.bg.hole = from
			return nil
		}
		if ctx.Err() != nil {
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

// afterHole reads on after seq, the sequence of the checkpoint of the base
// that ends the hole from from.
func (a *Archiver) afterHole(seq, from uint64) error {
	a.count(func(s *Stats) { s.LastSequence = seq })
	a.archived(seq)
	a.next = seq + 1
	if err := a.src.Seek(a.next); err != nil {
		return fmt.Errorf("read the WAL from sequence %d: %w", a.next, err)
	}
	a.streamStart()
	a.log.Warn("archiving again after the hole; the base that ends it is uploaded in the background", "hole_from", from, "base", seq,
		"missing", fmt.Sprintf("%d..%d", from, seq-1), "next_sequence", a.next)
	return nil
}

// holeEnded notes that the base at seq, which ended the hole from from, is
// in.
func (a *Archiver) holeEnded(from, seq uint64) {
	if a.holeFrom == from {
		a.holeFrom = 0
	}
	a.log.Warn("the hole is ended by a base; the archive is restorable again from the base on", "hole_from", from, "base", seq)
}

// writerRecord is the writer that a manifest update is made as: this
// archiver once it has claimed the manifest.
func (a *Archiver) writerRecord() *manifest.Writer {
	if a.claimed {
		return &a.writer
	}
	return nil
}
