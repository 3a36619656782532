package rocks

import (
	"fmt"
	"os"
	"sync"

	"github.com/linxGnu/grocksdb"
)

// Follower follows a database that another process writes, as a RocksDB
// secondary instance: it reads the writer's files and never changes them,
// and the writer needs no change. It sees the writer's progress at each
// CatchUp. A Follower is safe for concurrent use; an Updates is not.
type Follower struct {
	mu       sync.Mutex
	dir      string
	identity string
	h        *handle // nil once closed
	updates  map[*Updates]bool
}

// OpenFollower opens the database in dbDir as a secondary instance with all
// its column families. scratchDir (created if missing) holds the
// secondary's own files (its info LOG); it must not be shared.
// A dbDir that is missing or holds no database gives ErrNotDatabase.
func OpenFollower(dbDir, scratchDir string) (*Follower, error) {
	identity, err := ReadIdentity(dbDir)
	if err != nil {
		return nil, err
	}
	names, err := listColumnFamilies(dbDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(scratchDir, 0o755); err != nil {
		return nil, fmt.Errorf("rocks: open follower of %s: %w", dbDir, err)
	}
	open := func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		o.SetMaxOpenFiles(-1) // what RocksDB asks of a secondary
		return grocksdb.OpenDbAsSecondaryColumnFamilies(o, dbDir, scratchDir, n, co)
	}
	var h *handle
	// The writer's own options: a secondary replays its WAL, and a merge
	// record needs a merge operator (RocksDB refuses it otherwise).
	if o, lerr := loadFollowerOptions(dbDir); lerr == nil {
		h, err = openOwn(dbDir, o, open)
	} else {
		h, err = openHandle(dbDir, names, newOptions(), open)
	}
	if err != nil {
		return nil, err
	}
	return &Follower{dir: dbDir, identity: identity, h: h, updates: map[*Updates]bool{}}, nil
}

// Identity is the database's IDENTITY, read at OpenFollower.
func (f *Follower) Identity() string { return f.identity }

// CatchUp reads what the writer wrote since the last CatchUp: new WAL
// records, flushes and compactions. Column families that the writer creates
// after OpenFollower are not seen; reopen the Follower for them. A database
// that was deleted and created again in the directory (a new IDENTITY)
// gives ErrReplaced: a secondary does not notice it, and would go on with a
// view of the old database.
func (f *Follower) CatchUp() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return fmt.Errorf("rocks: catch up with %s: %w", f.dir, ErrClosed)
	}
	if err := f.checkIdentity(); err != nil {
		return err
	}
	if err := f.h.db.TryCatchUpWithPrimary(); err != nil {
		return fmt.Errorf("rocks: catch up with %s: %w", f.dir, err)
	}
	return nil
}

func (f *Follower) checkIdentity() error {
	id, err := ReadIdentity(f.dir)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %w", ErrReplaced, err)
	case id != f.identity:
		return fmt.Errorf("%w: %s: identity %s at open, %s now", ErrReplaced, f.dir, f.identity, id)
	}
	return nil
}

// LatestSequence is the last sequence number that the follower has caught
// up to; 0 once closed.
func (f *Follower) LatestSequence() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return 0
	}
	return f.h.latestSequence()
}

// ColumnFamilies lists the column families that the follower opened.
func (f *Follower) ColumnFamilies() []ColumnFamily {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return nil
	}
	return f.h.columnFamilies()
}

// Digest digests the state that the follower has caught up to.
func (f *Follower) Digest() (Digest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return nil, fmt.Errorf("rocks: digest %s: %w", f.dir, ErrClosed)
	}
	return f.h.digest()
}

// Close closes the iterators that are still open, then the follower.
func (f *Follower) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return nil
	}
	for u := range f.updates {
		u.release()
	}
	f.updates = nil
	f.h.close()
	f.h = nil
	return nil
}
