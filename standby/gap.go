package standby

import (
	"context"
	"fmt"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/restore"
)

// A follower reads a 404 of the next key as "nothing new yet". If that
// segment is gone (deleted, or lost) while the archive goes on after it,
// the 404 would last for ever and the standby would report no lag. So at
// the first 404 of a run, and while the next key stays missing every
// gapCheckEvery manifest checks (one a minute by default, only while the
// archive is idle or stuck), a LIST after that key looks for a later
// segment; with no hole recorded over the missing one (the manifest is read
// again first), the archive is damaged.

// gapCheckEvery is the number of manifest checks between two listings
// while the next key is missing.
const gapCheckEvery = 12

// gapWatch is how long the next key has been missing.
type gapWatch struct {
	seq    uint64    // the sequence whose segment is missing
	since  time.Time // when it was first missing
	listed time.Time // when the timeline was last listed for it
}

// checkGap lists timeline f.tl when the segment of applied+1 has been
// missing for a while, and fails when a later segment exists.
func (s *Standby) checkGap(ctx context.Context, f *follower, applied uint64) error {
	now := time.Now()
	every := gapCheckEvery * s.opts.ManifestCheck
	first := f.gap.since.IsZero() // the first 404 of this run: list now
	if g := &f.gap; g.seq != applied+1 || first {
		*g = gapWatch{seq: applied + 1, since: now, listed: now}
		if !first {
			return nil
		}
	} else if now.Sub(g.listed) < every {
		return nil
	}
	f.gap.listed = now
	if err := s.checkManifest(ctx, true); err != nil {
		return err
	}
	if err := s.checkHole(f.tl, applied); err != nil {
		return err
	}
	next, err := s.segmentAfter(ctx, f.tl, applied+1)
	if err != nil {
		s.retried("list timeline", err)
		return nil
	}
	return missingBefore(next, f.tl, applied+1)
}

// segmentAfter lists, with one LIST request, the first segment of timeline
// tl whose key sorts after the key of seq.
func (s *Standby) segmentAfter(ctx context.Context, tl uint32, seq uint64) ([]catalog.Segment, error) {
	for info, err := range s.store.List(ctx, manifest.SegmentPrefix(tl), manifest.SegmentKey(tl, seq)) {
		if err != nil {
			return nil, err
		}
		if t, first, err := manifest.ParseSegmentKey(info.Key); err == nil && t == tl {
			return []catalog.Segment{{Segment: manifest.Segment{First: first, Next: first}, Key: info.Key, Timeline: tl}}, nil
		}
	}
	return nil, nil
}

// missingBefore fails when no segment of segs holds seq but one starts
// after it: the segment at seq's key is missing.
func missingBefore(segs []catalog.Segment, tl uint32, seq uint64) error {
	for _, sg := range segs {
		if sg.First > seq {
			return fmt.Errorf("segment %s: %w: it is missing, but the archive goes on with %s (from sequence %d), and no hole is recorded in between",
				manifest.SegmentKey(tl, seq), restore.ErrCorrupt, sg.Key, sg.First)
		}
	}
	return nil
}
