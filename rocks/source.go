package rocks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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
// neither a replay of every write into memtables nor their memory. A
// checkpoint (a base) needs no RocksDB instance either: CopyCheckpoint reads
// the MANIFEST in Go and copies and links the files it names. A RocksDB
// secondary instance is opened only when Follower asks for one.
//
// A FollowerSource is used by one goroutine at a time (the Archiver's).
type FollowerSource struct {
	dir, scratch string
	walDir       string // where its WAL files are: dir, or the wal_dir of its OPTIONS
	identity     string
	tail         *WALTail
	f            *Follower // kept open only once Follower was called
	checked      time.Time // the last look at IDENTITY
	now          func() time.Time
	last         CopiedCheckpoint // what the last Checkpoint copied
	fam          familyWatch      // column families created and dropped (familywatch.go)
	// unflushed is the last Checkpoint's ErrUnflushed, given again while
	// the MANIFEST stays as it was then (unflushedAt, manifestStamp).
	unflushed   error
	unflushedAt string
	warnedHead  time.Time // the last warning of a MANIFEST ahead of the WAL (Head)
	aheadSince  time.Time // since when the MANIFEST is ahead of the WAL; zero: it is not
}

var _ archive.Source = (*FollowerSource)(nil)

// identityCheckInterval is how often Refresh reads the IDENTITY file again,
// to notice a database deleted and created again in the same directory
// (db_bench does that), whose new WAL files would otherwise just look like
// files that never come.
const identityCheckInterval = time.Second

// NewFollowerSource follows the database in dbDir, its WAL files in the
// wal_dir that its newest OPTIONS file names (dbDir when none). scratchDir
// (created if missing, not shared) holds the files of the secondary
// instance that Follower opens: its info LOG.
func NewFollowerSource(dbDir, scratchDir string) (*FollowerSource, error) {
	return NewFollowerSourceWAL(dbDir, "", scratchDir)
}

// NewFollowerSourceWAL is NewFollowerSource with the folder of the WAL
// files given (the archiver's --wal-dir); "" reads it from the OPTIONS file.
func NewFollowerSourceWAL(dbDir, walDir, scratchDir string) (*FollowerSource, error) {
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
	if walDir == "" {
		if walDir, err = walDirOf(dbDir); err != nil {
			return nil, err
		}
	}
	tail, err := NewWALTail(walDir)
	if err != nil {
		return nil, err
	}
	s := &FollowerSource{dir: dbDir, walDir: walDir, scratch: scratchDir, identity: identity, tail: tail, now: time.Now}
	s.fam = newFamilyWatch(dbDir, walDir)
	return s, nil
}

// Follower returns a secondary instance of the database, for reads: it is
// opened at the first call and kept until Close. It is nil when the
// database cannot be opened. An open secondary holds memtables and table
// readers, and keeps the writer's deleted files on disk until its next
// catch-up; it aborts on a TransactionDB's WAL and crashes on an integrated
// BlobDB database (RocksDB 7.8.3).
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
func (s *FollowerSource) Seek(seq uint64) error {
	s.fam.pos = max(seq, 1) - 1 // the family watch places what it finds after the batches read
	return s.tail.Seek(seq)
}

// Next returns the next batch. A WAL gap matches archive.ErrGap as well as
// ErrGap; a seq given to Seek that is inside a batch is an error, not a gap.
// Once the family watch started (FamilyChanges), each batch is looked at
// for the column families it names.
func (s *FollowerSource) Next() (segments.Batch, bool, error) {
	s.fam.poll()
	b, ok, err := s.tail.NextShared() // archive.Source: valid until the next call
	if err == nil && ok {
		err = s.fam.batch(b)
	}
	return forArchive(b, ok, err)
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

// Checkpoint writes a checkpoint into dir with CopyCheckpoint: no RocksDB
// instance at all (a secondary instance aborts on a TransactionDB's 2PC
// markers and crashes on an integrated BlobDB database; a read-only open
// aborts on a MANIFEST that tracks WALs), files copied and linked while the
// writer goes on, and the sequence read in Go. A database that was replaced
// is ErrReplaced. LastCheckpoint says what the last one copied.
func (s *FollowerSource) Checkpoint(dir string) (uint64, error) {
	if err := s.checkIdentity(); err != nil {
		return 0, err
	}
	// After ErrUnflushed, only a flush (a MANIFEST that changed) can make a
	// whole checkpoint: until then the same answer, without a copy.
	stamp, _ := manifestStamp(s.dir)
	if s.unflushed != nil && stamp != "" && stamp == s.unflushedAt {
		return 0, s.unflushed
	}
	s.unflushed = nil
	res, err := CopyCheckpoint(s.dir, s.walDir, dir)
	if errors.Is(err, ErrUnflushed) {
		s.unflushed, s.unflushedAt = fmt.Errorf("%w: %w", archive.ErrBaseNotYet, err), stamp
		return 0, s.unflushed
	}
	if err != nil {
		return 0, err
	}
	s.last = res
	s.watchFrom(res)
	return res.Seq, nil
}

// ReplayNeeds lists the options of the database's newest OPTIONS file that
// rockstream cannot replay by itself (archive.ReplayChecker): a merge
// operator or comparator of the application's own.
func (s *FollowerSource) ReplayNeeds() ([]string, error) {
	findings, _, err := InspectOptions(s.dir, nil)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(findings))
	for i, f := range findings {
		out[i] = f.String()
	}
	return out, nil
}

// manifestStamp names the state of the database's MANIFEST: the file
// CURRENT names, and its size. A flush or compaction changes it.
func manifestStamp(dbDir string) (string, error) {
	cur, err := os.ReadFile(filepath.Join(dbDir, "CURRENT"))
	if err != nil {
		return "", err
	}
	name := strings.TrimSpace(string(cur))
	fi, err := os.Stat(filepath.Join(dbDir, name))
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d", name, fi.Size()), nil
}

// LastCheckpoint says what the last Checkpoint copied (its retries, WAL
// files, bytes).
func (s *FollowerSource) LastCheckpoint() CopiedCheckpoint { return s.last }

// walDirOf returns where the database in dbDir has its WAL files: the
// wal_dir of its newest OPTIONS file, or dbDir when that is empty. A
// relative wal_dir (relative to the writer's working directory, which the
// archiver cannot know) is an error.
func walDirOf(dbDir string) (string, error) {
	path, err := newestOptionsFile(dbDir)
	if errors.Is(err, fs.ErrNotExist) {
		return dbDir, nil // a database of RocksDB before 4.x; no wal_dir then
	}
	if err != nil {
		return "", err
	}
	opts, err := readDBOptions(path)
	if err != nil {
		return "", err
	}
	dir := strings.TrimSpace(opts["wal_dir"])
	switch {
	case dir == "":
		return dbDir, nil
	case !filepath.IsAbs(dir):
		return "", fmt.Errorf("rocks: follow %s: %s sets a relative wal_dir %q: give the writer an absolute one", dbDir, path, dir)
	}
	return dir, nil
}
