package standby

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/rocks"
)

// TakeoverOptions say how a program that runs a Standby in-process goes on
// as the primary after a promotion (library mode).
type TakeoverOptions struct {
	// Open opens the promoted database's folder read-write, with the
	// program's own options and column families, and returns the handle.
	// The program owns it: it closes it after Primary.Close. Its options
	// must keep the WAL files that a flush frees (WAL_ttl_seconds or
	// WAL_size_limit_MB) until the archiver has read them. Required.
	Open func(dir string) (*grocksdb.DB, error)
	// Archive tunes the in-process archiver. Its WriterID is always the
	// promotion's (the Options.WriterID of the standby that promoted, also
	// after a restart); WorkDir defaults to .NAME.rockstream
	// beside the folder, as `rockstream archive` takes it.
	Archive archive.Options
}

// Primary is a promoted standby that the program runs as its primary: DB
// is open read-write in the program, and an archiver ships its writes
// in-process (over rocks.Primary) on the promotion's timeline.
type Primary struct {
	// DB is the handle that TakeoverOptions.Open returned.
	DB *grocksdb.DB
	// Result is the promotion.
	Result promote.Result

	arch   *archive.Archiver
	src    *rocks.Primary
	cancel context.CancelFunc
	done   chan struct{}
	err    error // the archiver's, once done is closed
	once   sync.Once
	closed error // Close's
}

// TakeOver opens the promoted database with opts.Open and starts archiving
// it in-process on the new timeline, without a restart of the program. Call
// it once Run has returned nil after a promotion (Promote, or POST
// /promote): Promoted reports it. The archiver runs until Close or until
// ctx ends. On an error the database is closed again.
func (s *Standby) TakeOver(ctx context.Context, opts TakeoverOptions) (*Primary, error) {
	res, ok := s.Promoted()
	select {
	case <-s.done:
	default:
		ok = false
	}
	switch {
	case !ok:
		return nil, errors.New("standby: take over: the standby has not been promoted (or Run has not returned yet)")
	case opts.Open == nil:
		return nil, errors.New("standby: take over: no TakeoverOptions.Open to open the database with")
	}
	db, err := opts.Open(s.opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("standby: take over: open the promoted database %s: %w", s.opts.Dir, err)
	}
	p, err := s.startPrimary(ctx, db, res, opts.Archive)
	if err != nil {
		db.Close()
		return nil, err
	}
	return p, nil
}

// startPrimary checks db and starts its archiver.
func (s *Standby) startPrimary(ctx context.Context, db *grocksdb.DB, res promote.Result, ao archive.Options) (*Primary, error) {
	dir := s.opts.Dir
	src, err := rocks.NewPrimary(db, dir)
	if err != nil {
		return nil, fmt.Errorf("standby: take over %s: %w", dir, err)
	}
	if seq := src.LatestSequence(); seq < res.Branch {
		src.Close()
		return nil, fmt.Errorf("standby: take over %s: the database opened at sequence %d, before the promotion's branch point %d", dir, seq, res.Branch)
	}
	ao.WriterID, ao.ClaimEpoch = res.WriterID, s.ClaimEpoch()
	if ao.WorkDir == "" {
		ao.WorkDir = archive.DefaultWorkDir(dir)
	}
	if ao.Logger == nil {
		ao.Logger = s.log
	}
	a, err := archive.New(src, s.store, ao)
	if err != nil {
		src.Close()
		return nil, fmt.Errorf("standby: take over %s: %w", dir, err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	p := &Primary{DB: db, Result: res, arch: a, src: src, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.err = a.Run(runCtx)
	}()
	s.log.Info("promoted: archiving in-process", "db", dir, "timeline", res.Timeline, "writer", ao.WriterID)
	return p, nil
}

// Archiver is the in-process archiver, for its Stats.
func (p *Primary) Archiver() *archive.Archiver { return p.arch }

// Done is closed when the archiver has stopped: after Close, or by itself
// on a failure (fenced by a later promotion, for one), which Err returns.
func (p *Primary) Done() <-chan struct{} { return p.done }

// Err is the archiver's error once Done is closed, else nil.
func (p *Primary) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Close stops the archiver, which first uploads what it has read (as on
// SIGTERM), waits for it, and releases its reader of the WAL. It returns
// the archiver's error. DB stays open: the program closes it after Close.
func (p *Primary) Close() error {
	p.once.Do(func() {
		p.cancel()
		<-p.done
		p.closed = p.err
		if err := p.src.Close(); err != nil && p.closed == nil {
			p.closed = err
		}
	})
	return p.closed
}
