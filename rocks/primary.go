package rocks

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"

	"github.com/linxGnu/grocksdb"
	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/segments"
)

// Primary is the archiver's Source over a database that the program owns
// and has opened read-write itself: library mode. It reads the WAL of the
// program's own handle with the same continuity checks as a Follower, and
// never closes that handle.
//
// Updates, LatestSequence, Checkpoint and Close are safe for concurrent
// use, and with the program's writes. Seek and Next, the Source's reader,
// are used by one goroutine (the archiver's).
type Primary struct {
	mu       sync.Mutex
	db       *grocksdb.DB // the program's; nil once the Primary is closed
	dir      string
	identity string
	updates  map[*Updates]bool

	// The Source's reader, set by Seek.
	cur   *Updates
	from  uint64
	first bool        // no batch read since Seek
	fam   familyWatch // column families created and dropped (familywatch.go)
}

var _ archive.Source = (*Primary)(nil)

// NewPrimary returns a Primary over db, which the program opened read-write
// from dir. dir must be the database's directory (it is checked against
// db): IDENTITY and the OPTIONS files are read there. The program keeps
// db: close the Primary (after the archiver stopped) before closing db.
func NewPrimary(db *grocksdb.DB, dir string) (*Primary, error) {
	if db == nil {
		return nil, fmt.Errorf("rocks: primary of %s: no database handle", dir)
	}
	identity, err := ReadIdentity(dir)
	if err != nil {
		return nil, err
	}
	if err := sameDir(dir, db.Name()); err != nil {
		return nil, err
	}
	p := &Primary{db: db, dir: dir, identity: identity, updates: map[*Updates]bool{}}
	p.fam = newFamilyWatch(dir, dir)
	return p, nil
}

// sameDir checks that dir is the directory that the database was opened
// from.
func sameDir(dir, opened string) error {
	a, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("rocks: primary of %s: %w", dir, err)
	}
	b, err := os.Stat(opened)
	if err != nil || !os.SameFile(a, b) {
		return fmt.Errorf("rocks: primary of %s: the database handle was opened from %s, another directory", dir, opened)
	}
	return nil
}

// Identity is the database's IDENTITY, read at NewPrimary.
func (p *Primary) Identity() (string, error) { return p.identity, nil }

// Refresh does nothing: the program's handle sees its own writes at once.
func (p *Primary) Refresh() error { return nil }

// LatestSequence is the database's last sequence number; 0 once the
// Primary is closed.
func (p *Primary) LatestSequence() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return 0
	}
	return p.db.GetLatestSequenceNumber()
}

// Updates returns an iterator over the batches from sequence from on; from
// 0 is taken as 1. It behaves as Follower.Updates does, without catch-ups:
// a write is visible to Next as soon as the program's Write returns.
func (p *Primary) Updates(from uint64) (*Updates, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return nil, fmt.Errorf("rocks: updates of %s: %w", p.dir, ErrClosed)
	}
	u := &Updates{src: p, next: max(from, 1)}
	p.updates[u] = true
	return u, nil
}

// The Primary's side of walOwner.

func (p *Primary) lockWAL() *grocksdb.DB {
	p.mu.Lock()
	return p.db
}

func (p *Primary) unlockWAL()        { p.mu.Unlock() }
func (p *Primary) walDir() string    { return p.dir }
func (p *Primary) forget(u *Updates) { delete(p.updates, u) }

// Seek makes Next continue with the batch that starts at seq.
func (p *Primary) Seek(seq uint64) error {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
	u, err := p.Updates(seq)
	if err != nil {
		return err
	}
	p.cur, p.from, p.first = u, max(seq, 1), true
	p.fam.pos = max(seq, 1) - 1
	return nil
}

// Next returns the next batch; ok is false when there is none yet. A WAL
// gap is a *GapError that matches both ErrGap and archive.ErrGap. The first
// batch after Seek must start exactly at the sequence sought: one that
// starts before it (the sequence is inside a multi-operation batch) is an
// error, but not a gap.
func (p *Primary) Next() (segments.Batch, bool, error) {
	if p.cur == nil {
		return segments.Batch{}, false, fmt.Errorf("rocks: read wal of %s: Next before Seek", p.dir)
	}
	p.fam.poll()
	b, ok, err := p.cur.Next()
	if err == nil && ok && p.first && b.Seq != p.from {
		return segments.Batch{}, false, fmt.Errorf("rocks: read wal of %s from seq %d: it is inside the batch at seq %d (count %d), not at a batch boundary",
			p.dir, p.from, b.Seq, b.Count)
	}
	if err == nil && ok {
		p.first = false
		err = p.fam.batch(b)
	}
	return forArchive(b, ok, err)
}

// Checkpoint writes a checkpoint of the database into dir, which must not
// exist, and returns its last sequence number: the one that recovery of the
// checkpoint reaches, read in Go from its MANIFEST and WAL files
// (checkpointSequence), never by opening it.
//
// It takes RocksDB's checkpoint as the Follower does: SST files
// hard-linked, the live WAL files copied, no flush, with file deletions held
// off meanwhile, so that the checkpoint of a primary is consistent
// (checkWALCoverage checks it still). Such a checkpoint lacks the writes
// made without the WAL that are still only in the memtables, and RocksDB
// does not notice: Checkpoint reads the program's WAL over the part of the
// checkpoint that its SST files do not hold, and just after it; when the WAL
// has a gap there, it takes the checkpoint again with a flush first
// [TestPrimaryCheckpointUnloggedWrites]. It does not always flush: after a
// flush that drops the newest entries (a Put and its SingleDelete), a
// checkpoint opens at an older sequence, possibly inside a batch, where the
// WAL replayed on open gives the exact one
// [TestPrimaryCheckpointDroppedEntries].
//
// RocksDB puts no IDENTITY file in a checkpoint; Checkpoint copies it, and
// the newest OPTIONS file, from the database's directory, since a restore
// needs both.
func (p *Primary) Checkpoint(dir string) (uint64, error) {
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("rocks: checkpoint into %s: %w", dir, cmp.Or(err, fs.ErrExist))
	}
	for attempt := 1; ; attempt++ {
		seq, err := p.tryCheckpoint(dir, attempt > 1)
		if err == nil {
			return seq, p.watchFrom(dir, seq)
		}
		if attempt == checkpointAttempts || errors.Is(err, ErrClosed) {
			return 0, fmt.Errorf("%w (attempt %d)", err, attempt)
		}
	}
}

// tryCheckpoint takes a checkpoint, flushing first if asked, and returns
// its last sequence. It removes the checkpoint again if it is incomplete or
// anything fails.
func (p *Primary) tryCheckpoint(dir string, flush bool) (seq uint64, err error) {
	if err := p.createCheckpoint(dir, flush); err != nil {
		return 0, err
	}
	defer func() {
		if err == nil {
			return
		}
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = fmt.Errorf("%w; removing it: %w", err, rmErr)
		}
	}()
	if err := checkWALCoverage(dir); err != nil {
		return 0, err
	}
	if err := copyDBMeta(p.dir, dir); err != nil {
		return 0, err
	}
	if seq, err = checkpointSequence(dir); err != nil {
		return 0, err
	}
	return seq, p.checkLogged(dir, seq)
}

func (p *Primary) createCheckpoint(dir string, flush bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return fmt.Errorf("rocks: checkpoint %s: %w", p.dir, ErrClosed)
	}
	cp, err := p.db.NewCheckpoint()
	if err != nil {
		return fmt.Errorf("rocks: checkpoint %s: %w", p.dir, err)
	}
	defer cp.Destroy()
	// RocksDB flushes when the live WAL files reach this size: 0 always
	// does, MaxUint64 never.
	walSizeForFlush := uint64(math.MaxUint64)
	if flush {
		walSizeForFlush = 0
	}
	if err := cp.CreateCheckpoint(dir, walSizeForFlush); err != nil {
		return fmt.Errorf("rocks: checkpoint %s into %s: %w", p.dir, dir, err)
	}
	return nil
}

// checkLogged checks the checkpoint in dir, whose last sequence is seq,
// against the program's WAL: it must hold every batch from the end of the
// checkpoint's flushed part to seq, and the batch after seq when the
// database has one. A gap there is writes made without the WAL, which a
// checkpoint without a flush lacks: in its middle (it opens at seq all the
// same), or right after its end (its seq is behind the database's, and the
// archiver would find the same gap after every new base).
func (p *Primary) checkLogged(dir string, seq uint64) error {
	flushed, err := manifestSequence(dir)
	if err != nil {
		return err
	}
	u, err := p.Updates(min(flushed, seq) + 1)
	if err != nil {
		return err
	}
	defer u.Close()
	for {
		b, ok, err := u.Next()
		switch {
		case errors.Is(err, ErrGap):
			return fmt.Errorf("rocks: checkpoint %s at seq %d lacks writes made without the WAL (%v)", dir, seq, err)
		case err != nil:
			return err
		case !ok || b.Seq > seq:
			return nil
		}
	}
}

// copyDBMeta copies the IDENTITY file and the newest OPTIONS-<number> file
// of the database in dbDir into the checkpoint in dir, unless it has them.
func copyDBMeta(dbDir, dir string) error {
	if err := copyMissing(filepath.Join(dbDir, "IDENTITY"), dir); err != nil {
		return fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
	}
	if err := copyNewestOptions(dbDir, dir); err != nil {
		return fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
	}
	return nil
}

// copyNewestOptions copies the newest OPTIONS file of dbDir into dir.
// RocksDB deletes the older one once it wrote a new one (SetOptions): a
// file gone in between is looked for again.
func copyNewestOptions(dbDir, dir string) (err error) {
	for range 3 {
		var opts string
		if opts, err = newestOptionsFile(dbDir); err != nil {
			return err
		}
		if err = copyMissing(opts, dir); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// copyMissing copies the file src into dir under the same name, unless dir
// has a file of that name.
func copyMissing(src, dir string) error {
	dst := filepath.Join(dir, filepath.Base(src))
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}

// Close releases the iterators of the Primary (the Source's and those of
// Updates), but not the database, which stays the program's. Stop the
// archiver first (its Run has returned), then Close the Primary, then close
// the database: RocksDB requires that no iterator outlives it. Closing twice
// is harmless.
func (p *Primary) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return nil
	}
	for u := range p.updates {
		u.release()
	}
	p.updates, p.db = nil, nil
	return nil
}
