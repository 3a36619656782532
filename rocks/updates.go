package rocks

import (
	"fmt"
	"slices"

	"github.com/linxGnu/grocksdb"
)

// walOwner is a database whose WAL an Updates reads: a Follower or a
// Primary. It keeps track of its open Updates, so that closing it releases
// their iterators first.
type walOwner interface {
	// lockWAL locks the owner and returns its database; nil once closed.
	lockWAL() *grocksdb.DB
	unlockWAL()
	// walDir is the database directory, for error messages.
	walDir() string
	// forget drops a closed Updates; the caller holds the lock.
	forget(u *Updates)
}

// Updates reads the WAL of a database, batch by batch, and checks that the
// batches are contiguous: RocksDB may silently start at a later batch when
// the one asked for is gone, or skip over sequences written without the
// WAL; Updates returns a *GapError (ErrGap) instead. Follower.Updates reads
// a followed database, Primary.Updates the program's own.
//
// The first batch covers from: it starts at from or, when from is inside a
// multi-operation batch, before it (Seq < from < Seq+Count). Callers that
// only resume right after a batch (the archiver) should treat Seq != from
// on the first batch as their own error. Every later batch starts exactly at
// the previous batch's Next().
//
// Updates keeps one RocksDB WAL iterator open across calls: creating one
// reads the WAL file that holds from up to from. When the database has no
// more batches (a Follower: none that it has caught up to), Next returns
// ok=false; after new writes (a Follower: after a CatchUp), Next continues
// (re-creating the iterator only when the writer moved to a new WAL file,
// once per WAL file).
// An Updates is used by one goroutine at a time; Close it, or close the
// Follower or Primary, to release it.
type Updates struct {
	src     walOwner
	it      *grocksdb.WalIterator // nil until the first Next
	next    uint64                // the sequence to cover (first batch) or start at
	started bool                  // a batch was returned
	err     error                 // sticky
	opened  int                   // iterators created, for tests
}

// Updates returns an iterator over the batches from sequence from on; from
// 0 is taken as 1, the first sequence of a database.
func (f *Follower) Updates(from uint64) (*Updates, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return nil, fmt.Errorf("rocks: updates of %s: %w", f.dir, ErrClosed)
	}
	u := &Updates{src: f, next: max(from, 1)}
	f.updates[u] = true
	return u, nil
}

// The Follower's side of walOwner.

func (f *Follower) lockWAL() *grocksdb.DB {
	f.mu.Lock()
	if f.h == nil {
		return nil
	}
	return f.h.db
}

func (f *Follower) unlockWAL()        { f.mu.Unlock() }
func (f *Follower) walDir() string    { return f.dir }
func (f *Follower) forget(u *Updates) { delete(f.updates, u) }

// Next returns the next batch, or ok=false when the database has no more
// batch yet (a Follower: call CatchUp, then Next again). An error is final.
func (u *Updates) Next() (b Batch, ok bool, err error) {
	db := u.src.lockWAL()
	defer u.src.unlockWAL()
	if u.err == nil && db == nil {
		u.err = fmt.Errorf("rocks: updates of %s: %w", u.src.walDir(), ErrClosed)
	}
	if u.err != nil {
		return Batch{}, false, u.err
	}
	if u.next > db.GetLatestSequenceNumber() {
		return Batch{}, false, nil
	}
	b, err = u.read(db)
	if err != nil {
		u.err = err
		u.release()
		return Batch{}, false, err
	}
	return b, true, nil
}

// read returns the batch at u.next, which db has (a Follower: has caught
// up to).
func (u *Updates) read(db *grocksdb.DB) (Batch, error) {
	if u.advance() {
		return u.take(db)
	}
	if err := u.reopen(db); err != nil {
		return Batch{}, err
	}
	return u.take(db)
}

// advance moves the open iterator (valid, on the batch last returned) to
// the next batch. Next calls it only once the database is past that batch,
// so the iterator reads on in its WAL file; at the end of a file that the
// writer has moved on from, it turns invalid (status TryAgain: RocksDB
// lists the WAL files when the iterator is created) and read creates a new
// one.
func (u *Updates) advance() bool {
	if u.it == nil {
		return false
	}
	u.it.Next()
	return u.it.Valid()
}

// reopen replaces the iterator by one created at u.next.
func (u *Updates) reopen(db *grocksdb.DB) error {
	u.release()
	it, err := db.GetUpdatesSince(u.next)
	if err != nil {
		return fmt.Errorf("rocks: read wal of %s from seq %d: %w", u.src.walDir(), u.next, err)
	}
	u.it, u.opened = it, u.opened+1
	if it.Valid() {
		return nil
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("rocks: read wal of %s from seq %d: %w", u.src.walDir(), u.next, err)
	}
	return &GapError{Dir: u.src.walDir(), Expected: u.next, Latest: db.GetLatestSequenceNumber()}
}

// take returns the batch that the iterator is on, after checking that it
// continues the batches before it.
func (u *Updates) take(db *grocksdb.DB) (Batch, error) {
	wb, seq := u.it.GetBatch()
	defer wb.Destroy()
	b := Batch{Seq: seq, Count: uint32(wb.Count()), Data: slices.Clone(wb.Data())}
	if !u.continues(b) {
		return Batch{}, &GapError{Dir: u.src.walDir(), Expected: u.next, Got: b.Seq, Latest: db.GetLatestSequenceNumber()}
	}
	u.next, u.started = b.Next(), true
	return b, nil
}

// continues says whether b is the batch that must come at u.next.
func (u *Updates) continues(b Batch) bool {
	if b.Seq == u.next {
		return true
	}
	return !u.started && b.Seq < u.next && u.next < b.Next()
}

// Close releases the iterator. Closing twice is harmless.
func (u *Updates) Close() error {
	u.src.lockWAL()
	defer u.src.unlockWAL()
	u.release()
	if u.err == nil {
		u.err = fmt.Errorf("rocks: updates of %s: %w", u.src.walDir(), ErrClosed)
	}
	u.src.forget(u)
	return nil
}

// release destroys the RocksDB iterator; the caller holds the owner's lock.
func (u *Updates) release() {
	if u.it != nil {
		u.it.Destroy()
		u.it = nil
	}
}
