package prune

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"
)

// DueRecord is, in a dry run, a pending record whose wait is over: what
// its sweep would delete now and what it would keep, judged as the sweep
// judges, against the archive as it is (a real run judges again after
// its own phase 1, and before each delete).
type DueRecord struct {
	Record      string   `json:"record"`
	Delete      []Object `json:"delete"`
	DeleteBytes int64    `json:"delete_bytes"`
	// Gone counts the objects already gone.
	Gone int `json:"gone"`
	// Kept are the objects that the sweep would keep, with why.
	Kept []Object `json:"kept,omitempty"`
}

// wouldSweep reports, in a dry run, the records whose wait is over with
// what their sweep would do (Due), and the others (Waiting).
func (r *runner) wouldSweep(ctx context.Context) error {
	now := r.opts.Now()
	for _, rec := range r.records {
		due := rec.due(r.opts.Grace)
		if now.Before(due) {
			r.rep.Waiting = append(r.rep.Waiting, Waiting{Record: rec.key, Objects: len(rec.Objects), Due: due})
			continue
		}
		d, err := r.judgeDue(ctx, rec)
		if err != nil {
			return fmt.Errorf("prune %s: judge what the sweep of %s would delete: %w", r.s, rec.key, err)
		}
		r.rep.Due = append(r.rep.Due, d)
	}
	return nil
}

// judgeDue judges the objects of rec against the view that the plan was
// made from, and looks at each SST file to delete as the sweep does (one
// written within the grace stays). It changes nothing.
func (r *runner) judgeDue(ctx context.Context, rec record) (DueRecord, error) {
	var (
		sw    Sweep
		carry []Object
	)
	del := r.judgeAll(r.scanned, rec, recordObjects(rec), &sw, &carry)
	if err := Check(r.scanned, r.scanned.Manifest, del); err != nil {
		return DueRecord{}, err
	}
	d := DueRecord{Record: rec.key}
	for _, o := range del {
		if o.Kind == KindSST {
			stays, err := r.sstStays(ctx, &o, r.recordGrace(rec), &sw, &carry)
			if err != nil {
				return DueRecord{}, err
			}
			if stays {
				continue
			}
		}
		d.Delete = append(d.Delete, o)
		d.DeleteBytes += o.Size
	}
	d.Gone, d.Kept = sw.Gone, sw.Kept
	return d, nil
}

// recordObjects are the objects of rec in the order a sweep deletes them:
// file lists, other base files, SST files, segments.
func recordObjects(rec record) []Object {
	objs := make([]Object, len(rec.Objects))
	for i, o := range rec.Objects {
		objs[i] = Object{Key: o.Key, Kind: kindOf(o.Key), Why: o.Why}
	}
	slices.SortStableFunc(objs, func(a, b Object) int { return cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]) })
	return objs
}

// recordGrace is the grace that the sweep of rec keeps young SST files
// for: the longer of this run's and the record's own.
func (r *runner) recordGrace(rec record) time.Duration {
	return max(r.opts.Grace, graceOf(rec.NotBefore.Sub(rec.Created)))
}
