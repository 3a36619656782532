package archive

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/prune"
)

// retention runs the archiver's scheduled prunes (Options.Retention) in a
// goroutine of their own, so that a prune never holds up the segments.
type retention struct {
	done chan struct{}
	mu   sync.Mutex
	err  error // a fence, which stops the archiver
}

// startRetention starts the prunes: one now, then one every
// RetentionInterval, until ctx ends. Without a retention policy it does
// nothing.
func (a *Archiver) startRetention(ctx context.Context) *retention {
	r := &retention{done: make(chan struct{})}
	if a.opts.Retention == nil {
		close(r.done)
		return r
	}
	go func() {
		defer close(r.done)
		for {
			if err := a.pruneOnce(ctx); err != nil {
				r.mu.Lock()
				r.err = err
				r.mu.Unlock()
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(a.opts.RetentionInterval):
			}
		}
	}()
	return r
}

// failed returns the fence that stopped the prunes, if any.
func (r *retention) failed() error {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// pruneOnce prunes the archive as its writer. A failure is logged and
// left to the next interval; only a fence is returned.
func (a *Archiver) pruneOnce(ctx context.Context) error {
	opts := *a.opts.Retention
	w := a.writer
	opts.As = &w
	if opts.Logger == nil {
		opts.Logger = a.log
	}
	if opts.Now == nil {
		opts.Now = a.opts.Now
	}
	rep, err := prune.Run(ctx, a.store, opts)
	deleted, bytes := swept(rep)
	a.count(func(s *Stats) { s.PrunedObjects += deleted; s.PrunedBytes += bytes })
	switch {
	case ctx.Err() != nil:
		return nil
	case errors.Is(err, manifest.ErrFenced):
		return err
	case err != nil:
		a.count(func(s *Stats) { s.PruneErrors++ })
		a.log.Error("the prune failed; the next try is at the next retention interval", "error", err, "interval", a.opts.RetentionInterval)
		return nil
	}
	a.count(func(s *Stats) { s.Prunes++ })
	a.log.Info("prune done", "policy", rep.Policy, "kept_bases", len(rep.Kept), "dropped_bases", len(rep.Dropped),
		"scheduled", len(rep.Scheduled), "swept_records", len(rep.Swept), "deleted", deleted, "deleted_bytes", bytes,
		"waiting_records", len(rep.Waiting))
	return nil
}

// swept counts what the sweeps of rep deleted: a prune that failed may
// have deleted some before (rep is nil when it did nothing).
func swept(rep *prune.Report) (deleted, bytes int64) {
	if rep == nil {
		return 0, 0
	}
	for _, sw := range rep.Swept {
		deleted += int64(sw.Deleted)
		bytes += sw.DeletedBytes
	}
	return deleted, bytes
}
