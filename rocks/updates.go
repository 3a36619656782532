package rocks

import (
	"fmt"
	"slices"

	"github.com/linxGnu/grocksdb"
)

// Updates reads the WAL of a followed database, batch by batch, and checks
// that the batches are contiguous: RocksDB may silently start at a later
// batch when the one asked for is gone, or skip over sequences written
// without the WAL; Updates returns a *GapError (ErrGap) instead.
//
// The first batch covers from: it starts at from or, when from is inside a
// multi-operation batch, before it (Seq < from < Seq+Count). Callers that
// only resume right after a batch (the archiver) should treat Seq != from
// on the first batch as their own error. Every later batch starts exactly at
// the previous batch's Next().
//
// Updates keeps one RocksDB WAL iterator open across calls: creating one
// reads the WAL file that holds from up to from. When the follower has no
// more batches, Next returns ok=false; after a CatchUp, Next continues
// (re-creating the iterator only when the writer moved to a new WAL file,
// once per WAL file).
// An Updates is used by one goroutine at a time; Close it, or close the
// Follower, to release it.
type Updates struct {
	f       *Follower
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
	u := &Updates{f: f, next: max(from, 1)}
	f.updates[u] = true
	return u, nil
}

// Next returns the next batch, or ok=false when the follower has caught up
// to no more batch (call CatchUp, then Next again). An error is final.
func (u *Updates) Next() (b Batch, ok bool, err error) {
	u.f.mu.Lock()
	defer u.f.mu.Unlock()
	if u.err == nil && u.f.h == nil {
		u.err = fmt.Errorf("rocks: updates of %s: %w", u.f.dir, ErrClosed)
	}
	if u.err != nil {
		return Batch{}, false, u.err
	}
	if u.next > u.f.h.latestSequence() {
		return Batch{}, false, nil
	}
	b, err = u.read()
	if err != nil {
		u.err = err
		u.release()
		return Batch{}, false, err
	}
	return b, true, nil
}

// read returns the batch at u.next, which the follower has caught up to.
func (u *Updates) read() (Batch, error) {
	if u.advance() {
		return u.take()
	}
	if err := u.reopen(); err != nil {
		return Batch{}, err
	}
	return u.take()
}

// advance moves the open iterator (valid, on the batch last returned) to
// the next batch. Next calls it only once the follower has caught up past
// that batch, so the iterator reads on in its WAL file; at the end of a
// file that the writer has moved on from, it turns invalid (status
// TryAgain: RocksDB lists the WAL files when the iterator is created) and
// read creates a new one.
func (u *Updates) advance() bool {
	if u.it == nil {
		return false
	}
	u.it.Next()
	return u.it.Valid()
}

// reopen replaces the iterator by one created at u.next.
func (u *Updates) reopen() error {
	u.release()
	it, err := u.f.h.db.GetUpdatesSince(u.next)
	if err != nil {
		return fmt.Errorf("rocks: read wal of %s from seq %d: %w", u.f.dir, u.next, err)
	}
	u.it, u.opened = it, u.opened+1
	if it.Valid() {
		return nil
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("rocks: read wal of %s from seq %d: %w", u.f.dir, u.next, err)
	}
	return &GapError{Dir: u.f.dir, Expected: u.next, Latest: u.f.h.latestSequence()}
}

// take returns the batch that the iterator is on, after checking that it
// continues the batches before it.
func (u *Updates) take() (Batch, error) {
	wb, seq := u.it.GetBatch()
	defer wb.Destroy()
	b := Batch{Seq: seq, Count: uint32(wb.Count()), Data: slices.Clone(wb.Data())}
	if !u.continues(b) {
		return Batch{}, &GapError{Dir: u.f.dir, Expected: u.next, Got: b.Seq, Latest: u.f.h.latestSequence()}
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
	u.f.mu.Lock()
	defer u.f.mu.Unlock()
	u.release()
	if u.err == nil {
		u.err = fmt.Errorf("rocks: updates of %s: %w", u.f.dir, ErrClosed)
	}
	delete(u.f.updates, u)
	return nil
}

// release destroys the RocksDB iterator; the caller holds u.f.mu.
func (u *Updates) release() {
	if u.it != nil {
		u.it.Destroy()
		u.it = nil
	}
}
