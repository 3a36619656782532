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

// RecordedTimeline is the timeline that the standby in dir follows: from its
// STANDBY-TIMELINE file, else the current timeline of m.
func RecordedTimeline(dir string, m *manifest.Manifest) (uint32, error) {
	return readTimeline(dir, m)
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
	if s.promoted == nil {
		return promote.Result{}, false
	}
	return *s.promoted, true
}

// handlePromote runs a promotion inside the follow loop. It returns
// errPromoted after a success (the reply waits for the database's close),
// nil after a failure that was answered, or an error that stops Run.
func (s *Standby) handlePromote(ctx context.Context, f *follower, req *promoteRequest) error {
	start := time.Now()
	was := s.Status().State
	s.update(func(st *Status) { st.State, st.PromoteError = Promoting, "" })
	if err := s.drainAll(ctx, f); err != nil {
		s.promoteFailed(req, was, err)
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	drained := time.Since(start)
	applied := s.db.LatestSequence()
	s.log.Info("promoting", "timeline", f.tl, "applied", applied, "writer", s.opts.WriterID)
	// From here the promotion writes to the archive: a stop (Run's ctx)
	// must not cut it between the end marker and the commit.
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), promoteTimeout)
	defer cancel()
	res, err := promote.Promote(pctx, s.store, promote.Options{
		Timeline: f.tl, Applied: applied, WriterID: s.opts.WriterID,
		Drain: func(ctx context.Context) (uint64, error) {
			err := s.drainAll(ctx, f)
			return s.db.LatestSequence(), err
		},
	})
	if err != nil {
		s.retried("promote", err)
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
	s.mu.Lock()
	s.promoted, s.pending = &res, req
	s.st.State, s.st.Timeline, s.st.Applied, s.st.Reason = Promoted, res.Timeline, res.Branch, ""
	s.st.Promotion = &res
	s.mu.Unlock()
	s.log.Info("promoted", "timeline", res.Timeline, "branch", res.Branch, "epoch", res.Epoch, "marker", res.Marker)
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
