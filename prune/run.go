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
	// Due, in a dry run only, are the records whose grace is over, with
	// what their sweep would delete and keep (Swept stays empty).
	Due   []DueRecord `json:"due,omitempty"`
	Notes []string    `json:"notes,omitempty"`
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
	s       objstore.Store
	opts    Options
	log     *slog.Logger
	cache   listCache
	records []record // the pending records as last read
	scanned *View    // the view last read
	rep     *Report
}

func (r *runner) run(ctx context.Context) (*Report, error) {
	o := r.opts
	r.rep = &Report{Location: r.s.String(), Policy: o.Policy.String(), Grace: FormatDuration(o.Grace), Now: o.Now().UTC(), DryRun: o.DryRun}
	pl, err := r.plan(ctx)
	if pl == nil {
		return nil, err
	}
	r.fill(pl)
	if o.DryRun {
		return r.rep, r.wouldSweep(ctx)
	}
	if err != nil {
		// The records that are due are swept all the same, so that one
		// failure never holds up the others.
		r.log.Error("prune: phase 1 failed; sweeping the due records all the same", "error", err)
	}
	return r.rep, errors.Join(err, r.sweepAll(ctx))
}

// view scans the archive and then reads the pending records, in that
// order: a drop that the scanned manifest shows has its record in the
// listing, because a prune writes the record before its commit.
func (r *runner) view(ctx context.Context) (*View, error) {
	v, err := scan(ctx, r.s, r.cache)
	if err != nil {
		return nil, err
	}
	if r.records, err = loadRecords(ctx, r.s, r.records); err != nil {
		return nil, err
	}
	v.Pending = pendingKeys(r.records, r.opts.Grace)
	r.scanned = v
	return v, nil
}

// plan scans the archive, plans, writes the records of what to delete
// and then commits the manifest without the dropped bases, planning again
// when another write came first. A record whose commit lost stays: it
// names objects that the manifest still needs, which its sweep keeps, and
// it never shortens a later record's wait (a key waits for every record
// that holds it). An error with a plan is either a record that could not
// be written (nothing was dropped: the plan says so in its notes), or,
// after the bases were dropped, records written again after a slow commit
// that failed (see afterCommit: the first records stand).
func (r *runner) plan(ctx context.Context) (*Plan, error) {
	o := r.opts
	for attempt := 1; ; attempt++ {
		r.rep.Attempts = attempt
		v, err := r.view(ctx)
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
		if o.DryRun || (!pl.DropsBases && len(pl.Delete) == 0) {
			return pl, nil
		}
		created := o.Now()
		if err := r.schedule(ctx, pl.Delete, created); err != nil {
			pl.nothingDone(fmt.Sprintf("nothing was dropped or scheduled: the record of what to delete could not be written (%v)", err))
			return pl, fmt.Errorf("prune %s: write the record of what to delete (nothing was dropped from the manifest): %w", r.s, err)
		}
		if !pl.DropsBases {
			return pl, nil
		}
		if ids := objstore.KeyIDs(r.s); len(ids) > 0 {
			pl.Manifest.AddKeyID(ids[0]) // the record was written with it
		}
		_, err = manifest.Commit(ctx, r.s, v.ETag, pl.Manifest)
		if err == nil {
			r.log.Info("prune: dropped bases from the manifest", "dropped", len(pl.Dropped), "kept", len(pl.Kept))
			return pl, r.afterCommit(ctx, pl, created)
		}
		again := errors.Is(err, manifest.ErrConflict) || errors.Is(err, manifest.ErrFenced)
		if !again || attempt == maxAttempts {
			return nil, fmt.Errorf("prune %s: drop %d bases from the manifest: %w", r.s, len(pl.Dropped), err)
		}
		r.log.Info("prune: the manifest changed meanwhile; planning again", "attempt", attempt)
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("the records of attempt %d stay though its commit lost to another write: their sweep keeps what the manifest still names", attempt))
		if err := pause(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// schedule writes records of objs, created at created.
func (r *runner) schedule(ctx context.Context, objs []Object, created time.Time) error {
	w := wait(r.opts.Grace)
	written, err := writeRecords(ctx, r.s, objs, r.opts.Policy, created, w)
	for _, rec := range written {
		r.rep.Records = append(r.rep.Records, rec.key)
		r.log.Info("prune: scheduled", "record", rec.key, "objects", len(rec.Objects), "not_before", rec.NotBefore)
	}
	return err
}

// afterCommit writes the plan's records again when the commit took longer
// than the allowance that their not_before holds for it: a key waits for
// every record that holds it, so the objects then wait a whole grace after
// the commit. Should the process die before, the first records still
// hold them, ending early by what the commit took beyond the allowance.
func (r *runner) afterCommit(ctx context.Context, pl *Plan, created time.Time) error {
	took := r.opts.Now().Sub(created)
	if r.opts.Grace == 0 || took <= min(r.opts.Grace, commitAllowance) {
		return nil
	}
	r.log.Warn("prune: the manifest commit took longer than its allowance; writing the records again", "took", took, "allowance", min(r.opts.Grace, commitAllowance))
	if err := r.schedule(ctx, pl.Delete, r.opts.Now()); err != nil {
		return fmt.Errorf("prune %s: the bases are dropped, but the records written after the slow commit failed (the first ones stand): %w", r.s, err)
	}
	return nil
}

// fill copies the plan into the report.
func (r *runner) fill(pl *Plan) {
	rep := r.rep
	rep.Kept, rep.Dropped, rep.Scheduled = pl.Kept, pl.Dropped, pl.Delete
	rep.ScheduledBytes, rep.AlreadyPending, rep.Notes = pl.Bytes(), pl.Pending, append(rep.Notes, pl.Notes...)
	rep.Before, rep.After = pl.Before, pl.After
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
