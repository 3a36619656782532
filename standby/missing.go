package standby

import (
	"context"
	"fmt"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// missing follows how long the next segment's key has stayed missing.
type missing struct {
	seq    uint64        // the sequence whose segment is missing
	next   time.Time     // when to look for later data next
	every  time.Duration // the interval after that look
	looked bool          // the first miss of this run was looked into
}

// checkMissing notes a GET that found no segment at applied+1. When the key
// has stayed missing for Options.MissingCheck, and then at intervals that
// double up to ten times that, it looks for later data (missingFor): a
// segment that was pruned or deleted never comes, and the standby must not
// wait for it silently. The first miss of a run is looked into at once
// (one LIST per start: here, or by the restart's listing in findContaining,
// which sets looked), so that a segment deleted while the standby was
// stopped, or one it meets right after its start, stops it without a wait.
func (s *Standby) checkMissing(ctx context.Context, f *follower, applied uint64) error {
	now, m := time.Now(), &f.missing
	if m.seq != applied+1 || m.next.IsZero() {
		first := !m.looked
		*m = missing{seq: applied + 1, next: now.Add(s.opts.MissingCheck), every: s.opts.MissingCheck, looked: true}
		if first {
			return s.missingFor(ctx, f.tl, applied)
		}
		return nil
	}
	if now.Before(m.next) {
		return nil
	}
	m.every = min(2*m.every, 10*s.opts.MissingCheck)
	m.next = now.Add(m.every)
	return s.missingFor(ctx, f.tl, applied)
}

// missingFor fails with ErrRebuild when the segment at applied+1 of
// timeline tl is missing although the archive holds later data of the
// standby's history: a later segment of tl (one LIST, after the missing
// key), or a child timeline that branches from tl after applied. Store
// errors are retried at the next check.
func (s *Standby) missingFor(ctx context.Context, tl uint32, applied uint64) error {
	key := manifest.SegmentKey(tl, applied+1)
	later, err := catalog.FirstAfter(ctx, s.store, tl, key)
	if err != nil {
		if ctx.Err() == nil && !isStoreError(err) {
			return fmt.Errorf("standby: %w", err)
		}
		if ctx.Err() == nil {
			s.retried("list the segments after "+key, err)
		}
		return nil
	}
	return s.missingGiven(ctx, tl, applied, later)
}

// missingGiven is missingFor once the first segment key of tl after the
// missing one is known (later; "" for none). The archiver uploads a
// timeline's segments in order, so the key is checked once more (a HEAD)
// after the evidence of later data: if it is still missing, it will never
// come.
func (s *Standby) missingGiven(ctx context.Context, tl uint32, applied uint64, later string) error {
	key := manifest.SegmentKey(tl, applied+1)
	if later == "" {
		if child, ok, _ := childOnPath(s.m, tl); ok && child.Branch > applied {
			later = fmt.Sprintf("timeline %d branches from timeline %d at sequence %d", child.ID, tl, child.Branch)
		}
	}
	if later == "" {
		return nil // nothing archived after it yet
	}
	_, err := s.store.Head(ctx, key)
	switch {
	case err == nil:
		return nil // it came meanwhile: the next GET takes it
	case !objstore.IsNotFound(err):
		if ctx.Err() == nil {
			s.retried("head "+key, err)
		}
		return nil
	}
	s.log.Error("the next segment is missing, but the archive holds later data", "key", key, "later", later)
	return fmt.Errorf("segment %s is missing from %s, but the archive holds later data (%s): it was pruned or deleted, "+
		"and the standby at sequence %d of timeline %d cannot go on: %w (empty %s and start the standby again: it restores the newest base)",
		key, s.store, later, applied, tl, ErrRebuild, s.opts.Dir)
}
