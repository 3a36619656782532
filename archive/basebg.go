package archive

import (
	"context"
	"errors"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// A periodic base (BaseInterval, BaseWALBytes) does not stop the reading
// and sealing of segments. Its checkpoint is taken in the loop (fast: hard
// links and a copy of the live WAL; the Source is used by one goroutine),
// then a goroutine of its own uploads, commits and checks it (a baseJob,
// which works only on what it was handed) while the loop goes on. At most
// one runs at a time; the loop takes in its result at its next turn.
//
// The base's commit and the loop's manifest updates (holes, column family
// changes) are each a compare-and-swap of a freshly loaded manifest, so
// neither loses the other's. The loop does not install the manifest that
// the base's commit wrote (it may have written a newer one meanwhile): it
// reads the manifest again, conditionally, when it takes in the result.
//
// A WAL gap waits for the background base first (a periodic base's upload
// is cancelled, a commit under way is finished; a hole's base is let
// finish, hole.go): the new hole's base follows it. A stop
// cancels the upload at once and waits for a commit under way until the
// stop's deadline; Run returns only after the goroutine ended.

// bgBase is the base being archived in the background.
type bgBase struct {
	seq        uint64
	started    time.Time
	stopUpload context.CancelFunc // a stop, a gap: abandon the upload
	stopAll    context.CancelFunc // the stop's deadline: abandon the commit too
	done       chan baseResult
	hole       uint64 // the first sequence of the hole that it ends; 0: none
}

// maybeBase starts a base when one is due: BaseInterval after the last,
// or after BaseWALBytes of batches. While one runs, it takes in its result
// if it is there, without waiting. A failed base is logged and tried again
// after RetryMax, unless the archiver was fenced.
func (a *Archiver) maybeBase(ctx context.Context) error {
	if a.bg != nil {
		select {
		case r := <-a.bg.done:
			return a.baseEnded(ctx, r)
		default:
			return nil
		}
	}
	now := a.opts.Now()
	if now.Sub(a.lastBase) < a.opts.BaseInterval && a.walBytes < a.opts.BaseWALBytes {
		return nil
	}
	a.log.Info("taking a base", "since_last", now.Sub(a.lastBase).Round(1e9).String(), "wal_bytes_since_last", a.walBytes)
	a.lastBase, a.walBytes = now, 0
	var extra func(*manifest.Manifest, manifest.Base)
	if a.holeFrom != 0 { // hole.go: the base that ends it failed before
		extra = a.holeCloser(a.holeFrom)
	}
	j, err := a.checkpoint(extra)
	if err != nil {
		return a.baseFailed(ctx, now, err)
	}
	a.startBase(ctx, j, now)
	a.bg.hole = a.holeFrom
	return nil
}

// startBase runs job j in a goroutine of its own.
func (a *Archiver) startBase(ctx context.Context, j *baseJob, now time.Time) {
	cctx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	uctx, stopUpload := context.WithCancel(ctx)
	bg := &bgBase{seq: j.seq, started: now, stopUpload: stopUpload, stopAll: stopAll, done: make(chan baseResult, 1)}
	a.lists = nil // the job's until it gives it back
	go func() {
		bg.done <- j.run(uctx, cctx)
	}()
	a.bg = bg
}

// baseEnded takes in the result of the background base.
func (a *Archiver) baseEnded(ctx context.Context, r baseResult) error {
	bg := a.bg
	a.bg = nil
	bg.stopUpload()
	bg.stopAll()
	a.lists = r.lists
	if r.err != nil {
		return a.baseFailed(ctx, bg.started, r.err)
	}
	a.lastBase = r.committed
	a.log.Info("the base in the background is in", "sequence", r.b.Sequence, "took", r.committed.Sub(bg.started).Round(time.Millisecond))
	if bg.hole != 0 {
		a.holeEnded(bg.hole, r.b.Sequence) // hole.go
	}
	if ctx.Err() != nil {
		return nil
	}
	// The manifest now names the base: read it again (one conditional
	// get), rather than install the commit's, which may be older than
	// what the loop wrote since.
	return a.checkFence(ctx)
}

// baseFailed logs a failed base and sets the next try RetryMax after the
// try that started at started. A fence is returned; a stop is no failure.
func (a *Archiver) baseFailed(ctx context.Context, started time.Time, err error) error {
	if ctx.Err() != nil {
		return nil // stopping: the loop drains what it read
	}
	if errors.Is(err, manifest.ErrFenced) {
		return err
	}
	// Try again after RetryMax, not a whole interval later: a store
	// outage during a base must not postpone the next one by a day.
	retry := min(a.opts.RetryMax, a.opts.BaseInterval)
	if a.holeFrom != 0 && errors.Is(err, ErrBaseNotYet) {
		retry = min(retry, notYetRetry) // the hole waits for it (hole.go)
	}
	a.lastBase = started.Add(retry - a.opts.BaseInterval)
	a.log.Error("the base failed; trying again", "in", retry, "error", err)
	return nil
}

// waitBase waits for the background base, if any, before the loop takes a
// base of its own (a WAL gap's): a periodic base's upload is abandoned (a
// commit under way is finished), a hole's base is let finish. A stop
// meanwhile waits for it until the stop's deadline.
func (a *Archiver) waitBase(ctx context.Context) error {
	if a.bg == nil {
		return nil
	}
	if a.bg.hole == 0 {
		a.log.Info("abandoning the base in the background for the one a hole needs", "sequence", a.bg.seq)
		a.bg.stopUpload()
	} else {
		// A hole's base is let finish: it ends that hole, and the segments
		// read after its checkpoint are restorable once it is in.
		a.log.Info("waiting for the base that ends the hole before the next hole", "sequence", a.bg.seq, "hole_from", a.bg.hole)
	}
	select {
	case r := <-a.bg.done:
		return a.baseEnded(ctx, r)
	case <-ctx.Done():
		a.endBase(true)
		return nil
	}
}

// endBase ends the background base, if any, when the loop has returned (a
// stop or a failure): its upload is abandoned at once, a commit under way
// is finished until the stop's deadline (after a failure, DrainTimeout),
// then abandoned too. It returns once the goroutine ended.
func (a *Archiver) endBase(stopping bool) {
	bg := a.bg
	if bg == nil {
		return
	}
	bg.stopUpload()
	deadline := time.Now().Add(a.opts.DrainTimeout)
	if stopping {
		deadline = a.stopDeadline()
	}
	var r baseResult
	select {
	case r = <-bg.done:
	case <-time.After(time.Until(deadline)):
		bg.stopAll()
		r = <-bg.done
	}
	a.bg = nil
	bg.stopAll()
	a.lists = r.lists
	if r.err == nil {
		a.lastBase = r.committed
		if bg.hole != 0 {
			a.holeEnded(bg.hole, r.b.Sequence)
		}
		return
	}
	a.log.Warn("the base in the background was abandoned; it is taken again after the next start", "sequence", bg.seq, "error", r.err)
}
