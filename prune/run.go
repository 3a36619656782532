package prune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// maxAttempts bounds the plans that a prune makes when the manifest keeps
// changing under it.
const maxAttempts = 20

// Options tune Run.
type Options struct {
	// Policy says which bases to keep. Required.
	Policy Policy
	// Grace is how long the objects of dropped bases stay after the
	// manifest stopped naming them, so that a restore or standby that
	// started before finishes: 0 deletes them in the same run.
	Grace time.Duration
	// DryRun plans and reports, and changes nothing.
	DryRun bool
	// As, when set, is the archiver the prune runs for: it prunes only
	// while the manifest names As as its writer, and fails with
	// manifest.ErrFenced otherwise.
	As *manifest.Writer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

func (o *Options) defaults() error {
	if err := o.Policy.Validate(); err != nil {
		return err
	}
	if o.Grace < 0 {
		return fmt.Errorf("grace %s: want 0 or more", o.Grace)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Report is what a prune did (or, in a dry run, would do).
type Report struct {
	Location string    `json:"location"`
	Policy   string    `json:"policy"`
	Grace    string    `json:"grace"`
	Now      time.Time `json:"now"`
	DryRun   bool      `json:"dry_run"`
	// Kept and Dropped are the bases, with why.
	Kept    []BaseChoice `json:"kept"`
	Dropped []BaseChoice `json:"dropped"`
	// Scheduled are the objects put in new pending records (Records).
	Scheduled      []Object `json:"scheduled"`
	ScheduledBytes int64    `json:"scheduled_bytes"`
	Records        []string `json:"records,omitempty"`
	// AlreadyPending counts deletable objects that earlier records hold.
	AlreadyPending int `json:"already_pending"`
	// Swept are the records whose grace was over, and Waiting the others.
	Swept   []Sweep   `json:"swept"`
	Waiting []Waiting `json:"waiting"`
	Notes   []string  `json:"notes,omitempty"`
	// Before and After are the restorable ranges of each timeline.
	Before []manifest.Coverage `json:"restorable_before"`
	After  []manifest.Coverage `json:"restorable_after"`
	// Attempts is the number of plans made (more than one when the
	// manifest changed concurrently).
	Attempts int `json:"attempts"`
}

// Waiting is a pending record whose grace is not over.
type Waiting struct {
	Record  string    `json:"record"`
	Objects int       `json:"objects"`
	Due     time.Time `json:"due"`
}

// Run prunes the archive in s: phase 1 drops the bases that the policy
// does not keep from the manifest (one compare-and-swap, planned again
// when the manifest changed) and writes a pending record of what to
// delete; phase 2 sweeps every record whose grace is over, judging each
// object again against the archive as it is then.
func Run(ctx context.Context, s objstore.Store, opts Options) (*Report, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	r := &runner{s: s, opts: opts, log: opts.Logger, cache: listCache{}}
	return r.run(ctx)
}

// runner is one Run.
type runner struct {
	s     objstore.Store
	opts  Options
	log   *slog.Logger
	cache listCache
	rep   *Report
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	o := r.opts
	r.rep = &Report{Location: r.s.String(), Policy: o.Policy.String(), Grace: FormatDuration(o.Grace), Now: o.Now().UTC(), DryRun: o.DryRun}
	records, err := loadRecords(ctx, r.s, nil)
	if err != nil {
		return nil, err
	}
	pl, err := r.plan(ctx, records)
	if err != nil {
		return nil, err
	}
	r.fill(pl)
	if o.DryRun {
		r.waiting(records)
		return r.rep, nil
	}
	if len(pl.Delete) > 0 {
		written, err := writeRecords(ctx, r.s, pl, o.Now())
		for _, w := range written {
			r.rep.Records = append(r.rep.Records, w.key)
			r.log.Info("prune: scheduled", "record", w.key, "objects", len(w.Objects), "due", w.due(o.Grace))
		}
		if err != nil {
			return r.rep, fmt.Errorf("prune: the bases are dropped, but the record of their objects could not be written (a later prune finds them again): %w", err)
		}
		records = append(records, written...)
	}
	return r.rep, r.sweepAll(ctx, records)
}

// plan scans the archive, plans, and commits the manifest without the
// dropped bases, planning again when another write came first.
func (r *runner) plan(ctx context.Context, records []record) (*Plan, error) {
	o := r.opts
	for attempt := 1; ; attempt++ {
		r.rep.Attempts = attempt
		v, err := scan(ctx, r.s, pendingKeys(records), r.cache)
		if err != nil {
			return nil, fmt.Errorf("prune %s: %w", r.s, err)
		}
		if o.As != nil && !sameWriter(v.Manifest.Writer, o.As) {
			return nil, fmt.Errorf("prune %s: %w: the manifest names another writer now", r.s, manifest.ErrFenced)
		}
		pl, err := MakePlan(v, o.Policy, o.Now(), o.Grace)
		if err != nil {
			return nil, fmt.Errorf("prune %s: %w", r.s, err)
		}
		if o.DryRun || !pl.DropsBases {
			return pl, nil
		}
		_, err = manifest.Commit(ctx, r.s, v.ETag, pl.Manifest)
		if err == nil {
			r.log.Info("prune: dropped bases from the manifest", "dropped", len(pl.Dropped), "kept", len(pl.Kept))
			return pl, nil
		}
		again := errors.Is(err, manifest.ErrConflict) || errors.Is(err, manifest.ErrFenced)
		if !again || attempt == maxAttempts {
			return nil, fmt.Errorf("prune %s: drop %d bases from the manifest: %w", r.s, len(pl.Dropped), err)
		}
		r.log.Info("prune: the manifest changed meanwhile; planning again", "attempt", attempt)
		if err := pause(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// fill copies the plan into the report.
func (r *runner) fill(pl *Plan) {
	rep := r.rep
	rep.Kept, rep.Dropped, rep.Scheduled = pl.Kept, pl.Dropped, pl.Delete
	rep.ScheduledBytes, rep.AlreadyPending, rep.Notes = pl.Bytes(), pl.Pending, pl.Notes
	rep.Before, rep.After = pl.Before, pl.After
}

// waiting lists the records whose grace is not over.
func (r *runner) waiting(records []record) {
	for _, rec := range records {
		r.rep.Waiting = append(r.rep.Waiting, Waiting{Record: rec.key, Objects: len(rec.Objects), Due: rec.due(r.opts.Grace)})
	}
}

func sameWriter(a, b *manifest.Writer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Timeline == b.Timeline && a.Epoch == b.Epoch && a.ID == b.ID
}

// pause waits a little longer at each attempt, up to 200 ms.
func pause(ctx context.Context, attempt int) error {
	t := time.NewTimer(min(time.Duration(attempt)*10*time.Millisecond, 200*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
