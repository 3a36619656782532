package restore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// choosePlan picks the timeline and the target sequence that opts ask for
// and returns the plan that reaches them.
func choosePlan(ctx context.Context, s objstore.Store, c *catalog.Catalog, opts Options) (*manifest.Plan, error) {
	cov, err := manifest.Restorable(c.Manifest, c.Ranges())
	if err != nil {
		return nil, fmt.Errorf("work out the restorable ranges: %w", err)
	}
	if opts.Timeline != 0 {
		if _, ok := c.Manifest.Timeline(opts.Timeline); !ok {
			return nil, fmt.Errorf("%w: the archive has no timeline %d (it has %s)", manifest.ErrNotRestorable, opts.Timeline, timelineIDs(c.Manifest))
		}
	}
	switch {
	case opts.ToSeq != nil:
		return planSeq(c, cov, opts.Timeline, *opts.ToSeq)
	case !opts.ToTime.IsZero():
		return planTime(ctx, s, c, cov, opts.Timeline, opts.ToTime)
	}
	return planLatest(c, cov, opts.Timeline, opts.Logger)
}

// planSeq plans a restore to sequence n on timeline tl, or on the newest
// timeline whose ranges hold n.
func planSeq(c *catalog.Catalog, cov []manifest.Coverage, tl uint32, n uint64) (*manifest.Plan, error) {
	if tl == 0 {
		tl = defaultTimeline(c.Manifest)
		for _, id := range newestFirst(c.Manifest) {
			if holds(cov, id, n) {
				tl = id
				break
			}
		}
	}
	plan, err := manifest.PlanRestore(c.Manifest, c.Ranges(), tl, n)
	if err != nil {
		return nil, withOtherRanges(err, cov, tl)
	}
	return plan, nil
}

// planLatest plans a restore to the end of the last restorable range of
// timeline tl (default: the writer's, else the newest).
func planLatest(c *catalog.Catalog, cov []manifest.Coverage, tl uint32, log *slog.Logger) (*manifest.Plan, error) {
	if tl == 0 {
		tl = defaultTimeline(c.Manifest)
	}
	rs := coverageOf(cov, tl).Ranges
	if len(rs) == 0 {
		return nil, withOtherRanges(fmt.Errorf("timeline %d: %w: nothing is restorable yet (no base reaches it)", tl, manifest.ErrNotRestorable), cov, tl)
	}
	target := rs[len(rs)-1].To
	if last := lastArchived(c, tl); last > target {
		log.Warn("the timeline's last archived batches cannot be restored: a gap without a later base",
			"timeline", tl, "last_archived", last, "restorable_to", target)
	}
	return manifest.PlanRestore(c.Manifest, c.Ranges(), tl, target)
}

// planTime plans a restore to the state archived at time t, on timeline
// tl or on the newest timeline that reaches it. A refusal speaks of tl,
// else of the default timeline.
func planTime(ctx context.Context, s objstore.Store, c *catalog.Catalog, cov []manifest.Coverage, tl uint32, t time.Time) (*manifest.Plan, error) {
	ids, report := []uint32{tl}, tl
	if tl == 0 {
		ids, report = newestFirst(c.Manifest), defaultTimeline(c.Manifest)
	}
	var refusal error
	for _, id := range ids {
		plan, err := planTimeOn(ctx, s, c, id, t)
		if err == nil {
			return plan, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if id == report || refusal == nil {
			refusal = withOtherRanges(err, cov, id)
		}
	}
	return nil, refusal
}

func planTimeOn(ctx context.Context, s objstore.Store, c *catalog.Catalog, tl uint32, t time.Time) (*manifest.Plan, error) {
	seq, err := sequenceAt(ctx, s, c, tl, t)
	if err != nil {
		return nil, err
	}
	plan, err := manifest.PlanRestore(c.Manifest, c.Ranges(), tl, seq)
	if err != nil {
		return nil, fmt.Errorf("restore to %s (sequence %d): %w", t.UTC().Format(time.RFC3339Nano), seq, err)
	}
	return plan, nil
}

// defaultTimeline is the writer's timeline, else the newest.
func defaultTimeline(m *manifest.Manifest) uint32 {
	if m.Writer != nil {
		return m.Writer.Timeline
	}
	return newestFirst(m)[0]
}

// newestFirst lists the timeline ids, highest first.
func newestFirst(m *manifest.Manifest) []uint32 {
	ids := make([]uint32, 0, len(m.Timelines))
	for _, t := range m.Timelines {
		ids = append(ids, t.ID)
	}
	slices.Sort(ids)
	slices.Reverse(ids)
	return ids
}

func timelineIDs(m *manifest.Manifest) string {
	ids := newestFirst(m)
	slices.Reverse(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	return "timelines " + strings.Join(parts, ", ")
}

func coverageOf(cov []manifest.Coverage, tl uint32) manifest.Coverage {
	for _, c := range cov {
		if c.Timeline == tl {
			return c
		}
	}
	return manifest.Coverage{Timeline: tl}
}

// holds reports whether a range of timeline tl holds n.
func holds(cov []manifest.Coverage, tl uint32, n uint64) bool {
	for _, r := range coverageOf(cov, tl).Ranges {
		if r.From <= n && n <= r.To {
			return true
		}
	}
	return false
}

// withOtherRanges adds the ranges of the other timelines to a refusal, so
// that the message shows everything that can be restored.
func withOtherRanges(err error, cov []manifest.Coverage, tl uint32) error {
	var others []string
	for _, c := range cov {
		if c.Timeline != tl {
			others = append(others, fmt.Sprintf("timeline %d: %s", c.Timeline, manifest.RangesText(c.Ranges)))
		}
	}
	if len(others) == 0 {
		return err
	}
	return fmt.Errorf("%w (other timelines: %s)", err, strings.Join(others, "; "))
}

// lastArchived is the last sequence that timeline tl's own segments hold.
func lastArchived(c *catalog.Catalog, tl uint32) uint64 {
	segs := c.Segments[tl]
	if len(segs) == 0 || segs[len(segs)-1].Next == 0 {
		return 0
	}
	return segs[len(segs)-1].Next - 1
}

// onLine reports whether base b belongs to the history line.
func onLine(line []manifest.Piece, b manifest.Base) bool {
	for _, p := range line {
		if b.Timeline == p.Timeline && b.Sequence <= p.To {
			return true
		}
	}
	return false
}
