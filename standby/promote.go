package standby

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/promote"
)

// The states of a promotion: Promoting while it runs (POST /promote and
// Promote accepted it), Promoted once committed: the database is then
// closed, for the application to open read-write. A promotion that fails
// goes back to Following, with Status.PromoteError.
const (
	Promoting State = "promoting"
	Promoted  State = "promoted"
)

// ErrNotFollowing: Promote was called while the standby does not follow
// (bootstrapping, stopped or failed).
var ErrNotFollowing = errors.New("the standby is not following the archive")

// promoteTimeout bounds a promotion once it writes to the archive; a stop
// of Run does not end it sooner.
const promoteTimeout = time.Minute

// errPromoted ends the follow loop after a promotion.
var errPromoted = errors.New("promoted")

type promoteReply struct {
	res promote.Result
	err error
}

type promoteRequest struct {
	reply chan promoteReply // buffered
}

// DefaultWriterID is the writer ID that `rockstream archive --db DIR` takes
// by default: HOSTNAME:absolute DIR. A promoted standby uses it unless
// Options.WriterID says otherwise, so that the archiver that follows it
// continues the new timeline.
func DefaultWriterID(dir string) string {
	host, _ := os.Hostname()
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return host + ":" + dir
}

// Promote asks the running standby to become the primary: it applies what
// the archive holds, stops following, promotes its database's sequence
// (promote.Promote, with Options.WriterID as the new writer), and closes the
// database. Run then returns nil, and Promoted returns the result. On an
// error the standby goes on following.
//
// ctx bounds the wait only. Once the follow loop has taken the request,
// the promotion runs to its end even if ctx ends (a client of POST
// /promote that disconnects or times out): stopping between the end marker
// and the commit would leave the old primary fenced and no new timeline.
// Its outcome is then in Status (State, Promotion, PromoteError).
// Likewise a stop of Run (its ctx) while the promotion writes to the
// archive waits for it (for up to a minute): Run then returns nil after a
// promotion that committed, and an error after one that failed.
func (s *Standby) Promote(ctx context.Context) (promote.Result, error) {
	req := &promoteRequest{reply: make(chan promoteReply, 1)}
	if st := s.Status().State; st != Following && st != Ended {
		return promote.Result{}, fmt.Errorf("%w: it is %s", ErrNotFollowing, st)
	}
	select {
	case s.promoteReq <- req:
	case <-s.done:
		return promote.Result{}, fmt.Errorf("%w: it stopped", ErrNotFollowing)
	case <-ctx.Done():
		return promote.Result{}, ctx.Err()
	}
	select {
	case r := <-req.reply:
		return r.res, r.err
	case <-ctx.Done():
		return promote.Result{}, ctx.Err()
	}
}

// Promoted returns the promotion's result once Run returned after one.
func (s *Standby) Promoted() (promote.Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Promotion == nil {
		return promote.Result{}, false
	}
	return *s.st.Promotion, true
}

// ClaimEpoch is the epoch that the archiver of the new primary claims as
// it is (archive.Options.ClaimEpoch): the promotion's, when this Run made
// it, so that the manifest keeps the epoch the promotion reported; 0 (the
// next epoch) after a restart, when the promotion is found in the folder or
// the archive.
func (s *Standby) ClaimEpoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.promotedHere || s.st.Promotion == nil {
		return 0
	}
	return s.st.Promotion.Epoch
}

// handlePromote runs a promotion inside the follow loop. It returns
// errPromoted after a success (the reply waits for the database's close),
// nil after a failure that was answered, or an error that stops Run.
func (s *Standby) handlePromote(ctx context.Context, f *follower, req *promoteRequest) error {
	start := time.Now()
	was := s.Status().State
	s.update(func(st *Status) { st.State, st.PromoteError = Promoting, "" })
	known := s.knownTimelines()
	if err := s.drainAll(ctx, f); err != nil {
		s.promoteFailed(req, was, err)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := s.raced(f.tl, known); err != nil {
		s.promoteFailed(req, was, err)
		return nil
	}
	// A planned failover: the old primary's archiver still serves its
	// stream; what it read and the standby lacks is applied first.
	if err := s.drainStream(ctx, f, s.opts.StreamDrain); err != nil {
		s.promoteFailed(req, was, err)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if s.strm.c != nil {
		s.pauseStream(time.Hour) // nothing more from the old primary
		s.strm.drop()
	}
	drained := time.Since(start)
	applied := s.db.LatestSequence()
	s.log.Info("promoting", "timeline", f.tl, "applied", applied, "writer", s.opts.WriterID)
	// From here the promotion writes to the archive: a stop (Run's ctx)
	// must not cut it between the end marker and the commit.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), promoteTimeout)
	defer cancel()
	res, err := promote.Promote(pctx, s.store, promote.Options{
		Timeline: f.tl, Applied: applied, WriterID: s.opts.WriterID, Streamed: s.strm.batches(),
		Drain: func(ctx context.Context) (uint64, error) {
			err := s.drainAll(ctx, f)
			return s.db.LatestSequence(), err
		},
	})
	if err != nil {
		s.pauseStream(0) // following again: the stream too
		s.update(func(st *Status) { st.Errors++ })
		s.log.Error("promotion failed", "timeline", f.tl, "applied", applied, "error", err)
		s.promoteFailed(req, was, err)
		if ctx.Err() != nil {
			return fmt.Errorf("standby: stopped while promoting, and the promotion failed: %w (if it says the old timeline is fenced, "+
				"no new timeline was committed: promote again, with 'rockstream promote --from %s %s' or by POST /promote once the standby runs again)",
				err, s.store, s.opts.Dir)
		}
		return nil
	}
	res.Timings.Drain += drained
	res.Timings.Total += drained
	s.setPromoted(res)
	s.mu.Lock()
	s.pending, s.st.Applied, s.promotedHere = req, res.Branch, true
	s.mu.Unlock()
	s.log.Info("promoted", "timeline", res.Timeline, "branch", res.Branch, "epoch", res.Epoch, "marker", res.Marker,
		"stream_only_batches", res.StreamOnly)
	return errPromoted
}

// promoteFailed answers a promotion that failed, and shows its error in
// the status, which goes back to the state before (following or ended).
func (s *Standby) promoteFailed(req *promoteRequest, was State, err error) {
	s.update(func(st *Status) {
		if st.State == Promoting {
			st.State = was
		}
		st.PromoteError = err.Error()
	})
	req.reply <- promoteReply{err: err}
}

// drainAll applies segments until a round finds nothing new.
func (s *Standby) drainAll(ctx context.Context, f *follower) error {
	// The manifest read now: the column family changes recorded up to the
	// end are applied (step).
	if err := s.checkManifest(ctx, true); err != nil {
		return err
	}
	for ctx.Err() == nil {
		progressed, err := s.step(ctx, f)
		if err != nil {
			return err
		}
		if !progressed {
			return nil
		}
	}
	return ctx.Err()
}

// youngTimeline is how recent a promotion must be for a second one to be
// taken for a race with it.
const youngTimeline = 10 * time.Second

// raced refuses to promote timeline tl when another promotion made it just
// now: the drain followed it past the timelines known when the request
// came, or it was committed less than youngTimeline ago. Two promotions
// asked at once (two operators, a retried script) then give one primary,
// and the second is told so, instead of failing over from the node that
// has just become the primary.
func (s *Standby) raced(tl uint32, known map[uint32]bool) error {
	t, ok := s.m.Timeline(tl)
	if !ok || t.Parent == 0 {
		return nil
	}
	age := time.Since(t.Created)
	if known[tl] && age >= youngTimeline {
		return nil
	}
	return fmt.Errorf("promote: %w: timeline %d was already promoted %s ago: this standby now follows its child timeline %d, "+
		"written by %s (if that is the failover you wanted, nothing is left to do; to fail over from timeline %d, "+
		"check that its primary is down and promote again after %s)",
		manifest.ErrFenced, t.Parent, age.Round(time.Millisecond), tl, writerName(s.m), tl, youngTimeline)
}

// knownTimelines are the timelines of the manifest as the standby last
// read it (at most Options.ManifestCheck old) when a promotion request
// comes: a timeline that the drain then finds beyond them was committed by
// a promotion racing this one. A timeline committed just before the request
// (within ManifestCheck) is taken for a race too: the safe side, and the
// refusal says what to do.
func (s *Standby) knownTimelines() map[uint32]bool {
	known := make(map[uint32]bool, len(s.m.Timelines))
	for _, t := range s.m.Timelines {
		known[t.ID] = true
	}
	return known
}

func writerName(m *manifest.Manifest) string {
	if m == nil || m.Writer == nil {
		return "none"
	}
	return m.Writer.ID
}

// setPromoted records the promotion res in the status.
func (s *Standby) setPromoted(res promote.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.State, s.st.Timeline, s.st.Reason = Promoted, res.Timeline, ""
	s.st.Promotion = &res
}

// promotedFolder handles a folder whose record says that its database was
// promoted (the standby's process restarted after a promotion): it is a
// primary, which the standby must not open, since the application may
// have it open. It returns errPromoted, and Promoted reports p, when the
// archive still has the promoted timeline as a current one; ErrRebuild
// when a later promotion fenced it.
func (s *Standby) promotedFolder(p *promotionDoc) error {
	dir, since := s.opts.Dir, p.Since.Format(time.RFC3339)
	if _, ok := s.m.Timeline(p.Timeline); !ok {
		return fmt.Errorf("standby into %s: %w: it records its promotion to timeline %d (writer %s, since %s), which the archive %s does not hold: "+
			"empty the folder and start the standby again", dir, ErrRebuild, p.Timeline, p.WriterID, since, s.store)
	}
	for _, c := range s.m.Timelines {
		if c.Parent == p.Timeline {
			return fmt.Errorf("standby into %s: %w: it was promoted to the primary of timeline %d since %s, but timeline %d branched from it at %d "+
				"(a later promotion fenced it): to make it a standby of the new primary, empty the folder and start the standby again",
				dir, ErrRebuild, p.Timeline, since, c.ID, c.Branch)
		}
	}
	s.setPromoted(p.result())
	s.log.Info("the folder is a promoted primary, not a standby: not following", "dir", dir, "timeline", p.Timeline,
		"since", since, "parent", p.Parent, "branch", p.Branch, "writer", p.WriterID)
	return errPromoted
}

// ownPromotion reports a promotion of this standby that committed but was
// not recorded in the folder (a crash in between): the archive's writer is
// Options.WriterID, on a child of tl that branches at or below the
// database's sequence.
func (s *Standby) ownPromotion(tl uint32) (promote.Result, bool) {
	w := s.m.Writer
	if w == nil || w.ID != s.opts.WriterID {
		return promote.Result{}, false
	}
	t, ok := s.m.Timeline(w.Timeline)
	if !ok || t.Parent != tl || t.Branch > s.db.LatestSequence() {
		return promote.Result{}, false
	}
	return promote.Result{Timeline: t.ID, Parent: tl, Branch: t.Branch, Epoch: w.Epoch, WriterID: w.ID,
		Marker: manifest.SegmentKey(tl, t.Branch+1)}, true
}

// closePromoted records the promotion res that ownPromotion found, and
// closes the database.
func (s *Standby) closePromoted(res promote.Result) error {
	s.log.Warn("this standby's promotion committed but was not recorded in its folder: recording it", "dir", s.opts.Dir,
		"timeline", res.Timeline, "branch", res.Branch, "writer", res.WriterID)
	err := RecordPromotion(s.opts.Dir, res)
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", s.opts.Dir, cerr)
	}
	s.setPromoted(res)
	return err
}
