package standby

import (
	"context"
	"fmt"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// currentTimeline is the timeline a standby follows to: the writer's, else
// the newest, as restore picks for the latest state.
func currentTimeline(m *manifest.Manifest) uint32 {
	if m.Writer != nil {
		return m.Writer.Timeline
	}
	var newest uint32
	for _, t := range m.Timelines {
		newest = max(newest, t.ID)
	}
	return newest
}

// childOnPath returns the child of tl on the way from tl to the current
// timeline. ok is false when tl is the current timeline; err is set when tl
// is not in the current timeline's history.
func childOnPath(m *manifest.Manifest, tl uint32) (child manifest.Timeline, ok bool, err error) {
	cur, found := m.Timeline(currentTimeline(m))
	for found && cur.ID != tl {
		child = cur
		ok = true
		if cur.Parent == 0 {
			found = false
			break
		}
		cur, found = m.Timeline(cur.Parent)
	}
	if !found {
		return child, false, fmt.Errorf("%w: the followed timeline %d is not in the history of the archive's current timeline %d",
			ErrRebuild, tl, currentTimeline(m))
	}
	return child, ok, nil
}

// checkManifest reads the manifest again when it is due (or when force),
// with a conditional GET, and checks what the standby depends on.
func (s *Standby) checkManifest(ctx context.Context, force bool) error {
	if !force && time.Since(s.read) < s.opts.ManifestCheck {
		return nil
	}
	m, etag, err := manifest.Reload(ctx, s.store, s.etag)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		if isStoreError(err) {
			s.retried("read the manifest", err)
			return nil
		}
		return fmt.Errorf("standby: %s from %s: %w", manifest.ManifestKey, s.store, err)
	}
	s.read = time.Now()
	if m == nil {
		return nil
	}
	if m.Identity != s.m.Identity {
		return fmt.Errorf("standby: %s from %s: %w: the identity changed from %q to %q",
			manifest.ManifestKey, s.store, ErrOtherArchive, s.m.Identity, m.Identity)
	}
	s.m, s.etag = m, etag
	return nil
}

// checkHole stops at a hole that the manifest records where the standby
// must go on.
func (s *Standby) checkHole(tl uint32, applied uint64) error {
	for _, h := range s.m.Holes {
		if h.Timeline == tl && h.From <= applied+1 && applied+1 <= h.To {
			return fmt.Errorf("segment %s: %w: the archive lacks sequences %d to %d of timeline %d (%s)",
				manifest.SegmentKey(tl, applied+1), ErrRebuild, h.From, h.To, tl, h.Reason)
		}
	}
	return nil
}

// branch returns the sequence after which the standby must leave tl for
// its child on the current path (and the child), or ok false when tl is
// current. A standby that has applied past it must be rebuilt.
func (s *Standby) branch(tl uint32, applied uint64) (child manifest.Timeline, ok bool, err error) {
	child, ok, err = childOnPath(s.m, tl)
	if err != nil || !ok {
		return child, ok, err
	}
	if applied > child.Branch {
		return child, ok, fmt.Errorf("%w: it has applied timeline %d up to sequence %d, but the archive's timeline %d branched from it at %d; its batches after %d are not in the archive's history",
			ErrRebuild, tl, applied, child.ID, child.Branch, child.Branch)
	}
	return child, ok, nil
}

// waitChild reports a followed timeline that ended (its end marker was
// read) while the manifest names no child: a promotion elsewhere that wrote
// its marker but has not committed its timeline, or never will (it was cut
// short). A promotion commits right after its marker, so this is normal
// for a moment; past Options.ManifestCheck the standby must not look
// healthy: its state is Ended, with the reason, and it logs a warning then
// and every minute. It follows the child once the manifest names one
// (checkManifest reads it at every poll while ended).
func (s *Standby) waitChild(f *follower, applied uint64) {
	if time.Since(f.endedAt) < s.opts.ManifestCheck || !f.endedLog.IsZero() && time.Since(f.endedLog) < time.Minute {
		return
	}
	f.endedLog = time.Now()
	marker := manifest.SegmentKey(f.tl, applied+1)
	msg := fmt.Sprintf("timeline %d ended at %d, no child timeline committed yet", f.tl, applied)
	s.update(func(st *Status) {
		if st.State == Following {
			st.State = Ended
		}
		st.Reason = msg + " (end marker " + marker + "): a promotion elsewhere wrote its marker and did not commit; " +
			"run that promotion again, or promote this standby"
	})
	s.log.Warn(msg, "marker", marker, "what_to_do", "a promotion was cut short between its end marker and its commit: run it again, or promote this standby")
}
