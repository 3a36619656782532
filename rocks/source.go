package rocks

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/segments"
)

// FollowerSource is the archiver's Source for a database that another
// process writes: the sidecar. It never changes the database's files, and
// the writer needs no change.
//
// It reads the batches from the WAL files themselves, with a WALTail: no
// RocksDB instance follows the writer between bases, so following costs
// neither a replay of every write into memtables nor their memory.
// A RocksDB secondary instance is opened only for a checkpoint (a base),
// and closed after it: kept open, it would hold memtables and table
// readers that nothing uses until the next base (a day, or 4 GiB of WAL,
// later), and the writer's SST and WAL files that it still has open would
// stay on disk after the writer deletes them, until its next catch-up. A
// fresh secondary is also exactly up to date, which a checkpoint needs.
//
// A FollowerSource is used by one goroutine at a time (the Archiver's).
type FollowerSource struct {
	dir, scratch string
	identity     string
	tail         *WALTail
	f            *Follower // kept open only once Follower was called
	checked      time.Time // the last look at IDENTITY
	now          func() time.Time
}

var _ archive.Source = (*FollowerSource)(nil)

// identityCheckInterval is how often Refresh reads the IDENTITY file again,
// to notice a database deleted and created again in the same directory
// (db_bench does that), whose new WAL files would otherwise just look like
// files that never come.
const identityCheckInterval = time.Second

// NewFollowerSource follows the database in dbDir. scratchDir (created if
// missing, not shared) holds the files of the secondary instance that
// Checkpoint opens: its info LOG.
func NewFollowerSource(dbDir, scratchDir string) (*FollowerSource, error) {
	identity, err := ReadIdentity(dbDir)
	if err != nil {
		return nil, err
	}
	if _, err := listColumnFamilies(dbDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(scratchDir, 0o755); err != nil {
		return nil, fmt.Errorf("rocks: follow %s: %w", dbDir, err)
	}
	tail, err := NewWALTail(dbDir)
	if err != nil {
		return nil, err
	}
	return &FollowerSource{dir: dbDir, scratch: scratchDir, identity: identity, tail: tail, now: time.Now}, nil
}

// Follower returns a secondary instance of the database, for reads: it is
// opened at the first call and kept until Close, and Checkpoint then uses
// it (after a CatchUp) instead of opening one of its own. It is nil when
// the database cannot be opened. Note what an open secondary costs (see
// FollowerSource).
func (s *FollowerSource) Follower() *Follower {
	if s.f == nil {
		f, err := OpenFollower(s.dir, s.scratch)
		if err != nil {
			return nil
		}
		s.f = f
	}
	return s.f
}

// Close releases the WAL files and the follower, if open.
func (s *FollowerSource) Close() error {
	s.tail.Close()
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// Identity is the database's IDENTITY, read when the source was created.
func (s *FollowerSource) Identity() (string, error) { return s.identity, nil }

// Refresh looks at the IDENTITY file again, at most every
// identityCheckInterval: a database that was replaced is ErrReplaced. New
// batches need nothing else: Next looks at the WAL files.
func (s *FollowerSource) Refresh() error {
	if s.now().Sub(s.checked) < identityCheckInterval {
		return nil
	}
	return s.checkIdentity()
}

func (s *FollowerSource) checkIdentity() error {
	id, err := ReadIdentity(s.dir)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrReplaced, err)
	case id != s.identity:
		return fmt.Errorf("%w: %s: identity %s when the archiver started, %s now", ErrReplaced, s.dir, s.identity, id)
	}
	s.checked = s.now()
	return nil
}

// Seek makes Next continue at seq.
func (s *FollowerSource) Seek(seq uint64) error { return s.tail.Seek(seq) }

// Next returns the next batch. A WAL gap matches archive.ErrGap as well as
// ErrGap; a seq given to Seek that is inside a batch is an error, not a gap.
func (s *FollowerSource) Next() (segments.Batch, bool, error) {
	return forArchive(s.tail.Next())
}

// forArchive turns a WAL reader's answer into an archive.Source's: a gap
// matches archive.ErrGap too, so that the archiver records a hole.
func forArchive(b Batch, ok bool, err error) (segments.Batch, bool, error) {
	if errors.Is(err, ErrGap) {
		return segments.Batch{}, false, fmt.Errorf("%w: %w", archive.ErrGap, err)
	}
	if err != nil || !ok {
		return segments.Batch{}, false, err
	}
	return segments.Batch{Seq: b.Seq, Count: b.Count, Data: b.Data}, true, nil
}

// Checkpoint writes a checkpoint into dir, with the database's IDENTITY
// and newest OPTIONS file, which a secondary's checkpoint lacks. It opens a
// secondary instance for it (or catches up the one that Follower opened),
// closes it before it opens the checkpoint to read its last sequence, so
// that the two replays of the WAL into memtables do not add up, and hands
// the memory back after each. A database that was replaced is ErrReplaced.
func (s *FollowerSource) Checkpoint(dir string) (uint64, error) {
	if err := s.checkIdentity(); err != nil {
		return 0, err
	}
	if s.f != nil {
		if err := s.f.CatchUp(); err != nil {
			return 0, err
		}
		if err := s.f.checkpointFiles(dir); err != nil {
			return 0, err
		}
	} else if err := s.checkpointFiles(dir); err != nil {
		return 0, err
	}
	// The OPTIONS file first: the checkpoint is opened with the
	// database's own options (a merge in its WAL needs the merge operator).
	if err := copyDBMeta(s.dir, dir); err != nil {
		return 0, err
	}
	seq, err := checkpointSequence(dir)
	releaseMemory()
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// checkpointFiles writes the checkpoint with a secondary instance of its
// own, up to date by construction, and closes it.
func (s *FollowerSource) checkpointFiles(dir string) error {
	f, err := OpenFollower(s.dir, s.scratch)
	if err != nil {
		return err
	}
	defer releaseMemory()
	defer f.Close()
	if f.Identity() != s.identity {
		return fmt.Errorf("%w: %s: identity %s when the archiver started, %s now", ErrReplaced, s.dir, s.identity, f.Identity())
	}
	return f.checkpointFiles(dir)
}
