package standby

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// defaultCatchUpBytes is Options.CatchUpBytes' default: below it the
// follow path takes about as long as the catch-up's opens and flushes.
const defaultCatchUpBytes = 32 << 20

// catchUpEvery bounds how often a standby that keeps finding its next
// segments waiting lists its timeline to weigh a catch-up (tests lower it).
var catchUpEvery = 30 * time.Second

// maybeCatchUp weighs a catch-up when the standby may be behind: before
// it applies the first segment of a run (a restart, maybe behind a
// backlog), and after two segments in a row were found at their first GET
// (it falls behind), if the last look was catchUpEvery ago or more. Never
// with a live stream, which brings what comes as it comes. done says that
// it caught up (the segment at hand is then behind the database).
func (s *Standby) maybeCatchUp(ctx context.Context, f *follower, limit uint64) (done bool, err error) {
	if s.opts.CatchUpBytes < 0 || s.strm.c != nil || f.hits < 2 && f.applied > 0 ||
		!f.catchUpAt.IsZero() && time.Since(f.catchUpAt) < catchUpEvery {
		return false, nil
	}
	f.catchUpAt = time.Now()
	done, err = s.catchUp(ctx, f.tl, limit)
	if done {
		// As after a restart: the next batch may sit inside a segment.
		f.resume, f.hits = true, 0
	}
	return done, err
}

// catchUp replays, when the standby is behind by at least
// Options.CatchUpBytes of segments on its timeline (up to the branch point
// limit, MaxUint64 for none), the segments that follow on from its
// sequence as a restore does (restore.CatchUp: written without the WAL into
// memtables sorted when they flush, the families flushed together, segments
// read ahead), which is several times faster than the follow path (one
// write per run of batches with the WAL, into skiplist memtables). It stops
// before the first batch with two-phase-commit markers, a column family
// change is made at its place, and the follow path goes on from where it
// ends, as after a restart. The database is closed meanwhile and opened
// again after; a crash half-way leaves it at the families' last atomic
// flush, from which the next start goes on. A listing that fails leaves the
// backlog to the follow path. done says whether it replayed anything.
func (s *Standby) catchUp(ctx context.Context, tl uint32, limit uint64) (done bool, err error) {
	from := s.db.LatestSequence()
	if limit == math.MaxUint64 {
		limit = 0
	}
	cp, err := restore.PlanCatchUp(ctx, s.store, s.m, tl, from, limit)
	if err != nil {
		s.retried("list the segments to catch up with", err)
		return false, nil
	}
	if len(cp.Plan.Steps) == 0 || cp.Bytes < s.opts.CatchUpBytes {
		return false, nil
	}
	s.log.Info("catching up", "timeline", tl, "from", from, "to", cp.Plan.Target,
		"segments", len(cp.Plan.Steps), "segment_bytes", cp.Bytes)
	s.update(func(st *Status) {
		st.State, st.Timeline, st.Applied = CatchingUp, tl, from
		st.Head = max(st.Head, cp.Plan.Target)
	})
	if err := s.db.Close(); err != nil {
		return false, fmt.Errorf("standby: close %s to catch up: %w", s.opts.Dir, err)
	}
	s.db = nil
	res, err := restore.CatchUp(ctx, s.store, s.opts.Dir, cp, restore.CatchUpOptions{Operators: s.opts.Operators, Logger: s.log})
	db, oerr := rocks.OpenWritable(s.opts.Dir, rocks.Options{Own: true, Operators: s.opts.Operators})
	if oerr != nil {
		return false, errors.Join(err, fmt.Errorf("open the standby database %s: %w", s.opts.Dir, oerr))
	}
	s.db = db
	if err != nil && ctx.Err() == nil {
		return false, fmt.Errorf("standby: %w", err)
	}
	// What a restart forgets, the catch-up does too: the prepares that the
	// database held in memory (read again from the history when one
	// commits), the batches without a sequence applied at its sequence,
	// its column families.
	s.from, s.txnsRead, s.zero, s.famOpen = s.db.LatestSequence(), false, zeroSpan{}, nil
	s.update(func(st *Status) {
		st.State, st.Batches = Following, st.Batches+res.Batches
		st.Segments += int64(res.Segments)
	})
	if res.Batches > 0 {
		s.applied(segments.Batch{Time: res.Time}) // the applied sequence, its time, the lag clock
	}
	s.log.Info("caught up", "applied", s.from, "batches", res.Batches, "segments", res.Segments,
		"batch_bytes", res.BatchBytes, "took", res.Replay.Round(time.Millisecond),
		"mb_per_s", fmt.Sprintf("%.1f", float64(res.BatchBytes)/1e6/max(res.Replay.Seconds(), 1e-3)))
	return true, nil
}
