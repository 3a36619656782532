package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
)

// CatchUpPlan is what CatchUp replays: the segments of one timeline after
// the database's sequence that follow on from it without a gap, up to a
// limit.
type CatchUpPlan struct {
	Plan *manifest.Plan // Base.Sequence is the database's; Steps and CFChanges after it
	// Bytes is the size of the plan's segment objects.
	Bytes int64
}

// PlanCatchUp plans the replay of timeline tl's archived batches after
// sequence from into a database that holds tl's history up to from (a
// standby's), up to the last segment that follows on without a gap, not
// the segment that ends the timeline (its end marker is the follow path's
// to read), and never past limit (a branch point; 0: none). The plan has no steps when
// nothing follows on from from.
func PlanCatchUp(ctx context.Context, s objstore.Store, m *manifest.Manifest, tl uint32, from, limit uint64) (*CatchUpPlan, error) {
	segs, err := catalog.After(ctx, s, m, tl, from)
	if err != nil {
		return nil, err
	}
	plan := &manifest.Plan{Timeline: tl, Target: from, Base: manifest.Base{Timeline: tl, Sequence: from}}
	cp := &CatchUpPlan{Plan: plan}
	next := from + 1
	for _, sg := range segs {
		if sg.First > next || limit > 0 && next > limit || sg.End {
			break // a gap, a hole, a timeline's end marker: the standby's own path reads it
		}
		stop := sg.Next - 1
		if limit > 0 && stop > limit {
			stop = limit
		}
		plan.Steps = append(plan.Steps, manifest.Step{Timeline: tl, Key: sg.Key, After: next - 1, StopAt: stop})
		cp.Bytes += sg.Size
		plan.Target, next = stop, stop+1
	}
	plan.CFChanges = m.CFChangesBetween(m.Lineage(tl), from, plan.Target)
	return cp, nil
}

// CatchUpOptions tune CatchUp.
type CatchUpOptions struct {
	// Concurrency is how many segments are read ahead (default 4).
	Concurrency int
	// Operators are the application's own merge operators (library mode).
	Operators *rocks.Operators
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// CatchUp replays the batches of cp into the database in dir, which must be
// closed and at cp's base sequence, by the replayer of restores
// (rocks.Replayer's direct path: the batches written without the WAL into
// memtables that are sorted when they flush, segments read ahead), which
// is much faster than one write per batch with the WAL. Column families
// created or dropped in between are created or dropped at their place.
// The families flush together and the database's own options are kept
// aside while it is open with the bulk load's (rocks.ReplayOptions.InPlace),
// so a crash half-way leaves the database at one sequence, with its own
// options, from which it can go on. It stops before the first batch with two-phase-commit markers
// (rocks.ReplayOptions.StopAtTxn), which is the caller's to apply, and
// when ctx ends; either way what it replayed is flushed and the database
// closed at a batch boundary, with its own options. The Result says where
// the database is (Sequence) and what was replayed.
func CatchUp(ctx context.Context, s objstore.Store, dir string, cp *CatchUpPlan, o CatchUpOptions) (Result, error) {
	plan := cp.Plan
	res := Result{Dir: dir, Timeline: plan.Timeline, Base: plan.Base, Sequence: plan.Base.Sequence}
	if len(plan.Steps) == 0 {
		return res, nil
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	start := time.Now()
	rep, err := rocks.NewReplayer(dir, rocks.ReplayOptions{Operators: o.Operators, ChunkBytes: replayChunkBytes,
		Recovery: replayRecovery, StopAtTxn: true, InPlace: true})
	if err != nil {
		return res, fmt.Errorf("catch up %s: %w", dir, err)
	}
	defer rep.Close()
	if got := rep.Sequence(); got != plan.Base.Sequence {
		return res, fmt.Errorf("catch up %s: the database opens at sequence %d, not at %d", dir, got, plan.Base.Sequence)
	}
	fam := &familyChanges{pending: plan.CFChanges}
	err = applySteps(ctx, rep, s, plan.Steps, plan.Target, o.Concurrency, &res, nil, fam)
	reached := rep.Next() - 1
	if err == nil {
		err = fam.upTo(rep, reached)
	}
	// What was added is flushed whatever stopped the replay: every batch
	// added was checked before it was taken.
	if ferr := rep.Finish(reached); ferr != nil {
		return res, fmt.Errorf("catch up %s: %w", dir, errors.Join(err, ferr))
	}
	res.Sequence = reached
	res.Replay = time.Since(start)
	if err != nil {
		return res, err
	}
	// As after a restore's replay: RocksDB may come back behind the
	// sequence reached (see finish).
	fplan := *plan
	fplan.Target, fplan.Steps = reached, stepsUpTo(plan.Steps, reached)
	if err := finish(ctx, s, &fplan, dir, &res, Options{Operators: o.Operators, Logger: o.Logger}); err != nil {
		return res, fmt.Errorf("catch up %s: %w", dir, err)
	}
	return res, nil
}

// stepsUpTo are the parts of steps up to sequence seq.
func stepsUpTo(steps []manifest.Step, seq uint64) []manifest.Step {
	var out []manifest.Step
	for _, st := range steps {
		if st.After >= seq {
			break
		}
		st.StopAt = min(st.StopAt, seq)
		out = append(out, st)
	}
	return out
}
