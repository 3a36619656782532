package restore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// DrillReport says what the drill restored and which comparison it made.
type DrillReport struct {
	// Timeline, Latest and LatestTime are the latest state, restored.
	Timeline   uint32    `json:"timeline"`
	Latest     uint64    `json:"latest"`
	LatestTime time.Time `json:"latest_time,omitzero"`
	// Comparison says, for people, which comparison was made.
	Comparison string `json:"comparison"`
	// Sequence is the state compared; FromBase the base its restore
	// started from, Segments how many segments it replayed.
	Sequence uint64 `json:"sequence"`
	FromBase uint64 `json:"from_base"`
	Segments int    `json:"segments"`
	// Digest is the restored state's (FormatDigest); Want what it was
	// compared with.
	Digest string `json:"digest"`
	Want   string `json:"want"`
	OK     bool   `json:"ok"`
}

// drill restores the latest state into a scratch folder, then compares a
// restore of the newest base's sequence, made from an older base and the
// segments, with that base's recorded digest, or when none is recorded
// with the digest of its checkpoint. The scratch folder is removed.
func (v *verifier) drill(ctx context.Context) error {
	if v.c == nil {
		v.rep.add("", "drill: not run, since status cannot read the archive")
		return nil
	}
	dir, err := os.MkdirTemp(v.opts.ScratchDir, "rockstream-drill-")
	if err != nil {
		return fmt.Errorf("drill: %w", err)
	}
	defer os.RemoveAll(dir)
	d := &DrillReport{}
	v.rep.Drill = d
	plan, err := choosePlan(ctx, v.s, v.c, Options{Logger: v.opts.Logger})
	if err == nil {
		var res Result
		res, err = v.drillRestore(ctx, plan, filepath.Join(dir, "latest"))
		d.Timeline, d.Latest, d.LatestTime = res.Timeline, res.Sequence, res.Time
		os.RemoveAll(filepath.Join(dir, "latest"))
	}
	if err != nil {
		v.rep.add("", "drill: restore the latest state: %v", err)
		return ctx.Err()
	}
	v.drillCompare(ctx, d, dir)
	return ctx.Err()
}

// drillRestore restores plan into dir.
func (v *verifier) drillRestore(ctx context.Context, plan *manifest.Plan, dir string) (Result, error) {
	dst, err := checkDest(dir, false)
	if err != nil {
		return Result{}, err
	}
	opts := Options{Dir: dir, Concurrency: v.opts.Concurrency, Logger: v.opts.Logger}
	return restorePlan(ctx, v.s, v.c, plan, dst, opts)
}

// drillCompare reproduces the newest base of the drill's timeline (the
// newest with a recorded digest, if any) and compares digests.
func (v *verifier) drillCompare(ctx context.Context, d *DrillReport, dir string) {
	b, ok := drillBase(v.m, v.m.Lineage(d.Timeline))
	if !ok {
		d.Comparison = "no base to compare with"
		return
	}
	plan, replayed := v.planWithout(d.Timeline, b)
	got, err := v.restoreDigest(ctx, plan, filepath.Join(dir, "compare"))
	if err != nil {
		v.rep.add(b.FileList, "drill: restore to sequence %d: %v", b.Sequence, err)
		return
	}
	d.Sequence, d.FromBase, d.Segments, d.Digest = b.Sequence, plan.Base.Sequence, len(plan.Steps), got
	d.Want, d.Comparison = b.Digest, describeComparison(b, plan, replayed)
	if b.Digest == "" {
		if d.Want, err = v.baseDigest(ctx, b, filepath.Join(dir, "base")); err != nil {
			v.rep.add(b.FileList, "drill: digest the base's checkpoint: %v", err)
			return
		}
	}
	d.OK = d.Digest == d.Want
	if !d.OK {
		v.rep.add(b.FileList, "drill: %s: the restore gives %s, expected %s", d.Comparison, d.Digest, d.Want)
	}
}

// drillBase is the newest base of the history line that records a digest,
// else the newest base.
func drillBase(m *manifest.Manifest, line []manifest.Piece) (manifest.Base, bool) {
	var best, bestDigest *manifest.Base
	for i, b := range m.Bases {
		if !onLine(line, b) {
			continue
		}
		if best == nil || b.Sequence > best.Sequence {
			best = &m.Bases[i]
		}
		if b.Digest != "" && (bestDigest == nil || b.Sequence > bestDigest.Sequence) {
			bestDigest = &m.Bases[i]
		}
	}
	switch {
	case bestDigest != nil:
		return *bestDigest, true
	case best != nil:
		return *best, true
	}
	return manifest.Base{}, false
}

// planWithout plans a restore of timeline tl to base b's sequence from an
// older base and the segments; replayed is false when no older base
// reaches it, and the plan is then b itself.
func (v *verifier) planWithout(tl uint32, b manifest.Base) (*manifest.Plan, bool) {
	m := *v.m
	m.Bases = slices.DeleteFunc(slices.Clone(v.m.Bases), func(x manifest.Base) bool { return x.Sequence >= b.Sequence })
	if len(m.Bases) > 0 {
		if plan, err := manifest.PlanRestore(&m, v.c.Ranges(), tl, b.Sequence); err == nil {
			return plan, true
		}
	}
	return &manifest.Plan{Timeline: tl, Target: b.Sequence, Base: b}, false
}

func describeComparison(b manifest.Base, plan *manifest.Plan, replayed bool) string {
	how := fmt.Sprintf("restored sequence %d from base %d and %d segments", b.Sequence, plan.Base.Sequence, len(plan.Steps))
	if !replayed {
		how = fmt.Sprintf("restored base %d itself (no older base reaches it, so no replay was compared)", b.Sequence)
	}
	if b.Digest != "" {
		return how + fmt.Sprintf(", compared with the digest recorded for base %d", b.Sequence)
	}
	return how + fmt.Sprintf(", compared with the digest of base %d's checkpoint opened read-only (no base records a digest)", b.Sequence)
}

// restoreDigest restores plan into dir and digests the result.
func (v *verifier) restoreDigest(ctx context.Context, plan *manifest.Plan, dir string) (string, error) {
	if _, err := v.drillRestore(ctx, plan, dir); err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	d, err := digestDir(dir)
	if err != nil {
		return "", err
	}
	return FormatDigest(d), nil
}

// baseDigest downloads base b's files into dir, checked, and digests the
// checkpoint opened read-only.
func (v *verifier) baseDigest(ctx context.Context, b manifest.Base, dir string) (string, error) {
	fl, err := manifest.LoadFileList(ctx, v.s, v.m, b)
	if err != nil {
		return "", err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := fetchFiles(ctx, v.s, fl, dir, v.opts.Concurrency, nil); err != nil {
		return "", err
	}
	d, err := digestDir(dir)
	if err != nil {
		return "", err
	}
	return FormatDigest(d), nil
}
