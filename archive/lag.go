package archive

import (
	"time"
)

// Head is where the database's WAL ends, as a Source sees it.
type Head struct {
	// Sequence is the last sequence of the newest complete batch.
	Sequence uint64
	// Bytes is how many bytes of WAL the Source has yet to read up to that
	// batch; negative when it cannot tell.
	Bytes int64
	// Known is false when the Source has not seen the WAL's end yet.
	Known bool
}

// HeadReader is a Source that can tell where the database's WAL ends. The
// archiver then reports its lag against the database rather than against
// what it has read, and knows that it is behind even when a read finds
// nothing for a moment. Head is called between reads, on the archiver's
// goroutine, as often as once per batch: it must cost nothing most of the
// time.
type HeadReader interface {
	Head() (Head, error)
}

// headEvery is the least time between two calls of Head while batches come.
const headEvery = 10 * time.Millisecond

// lag is what the archiver tracks of its lag behind the database.
type lag struct {
	head      Head
	headAt    time.Time   // the last call of Head
	ahead     time.Time   // since when the head is beyond what was read; zero: not
	pending   []time.Time // when the first batch of each segment not uploaded yet was read, oldest first
	rawWait   int64       // batch bytes read and not uploaded yet
	headError bool        // Head failed: logged once
	seen      bool        // Head has told where the WAL ends at least once
}

// observeHead asks the source where the WAL ends, at most every headEvery
// unless force, and records it.
func (a *Archiver) observeHead(force bool) {
	hr, ok := a.src.(HeadReader)
	if !ok {
		return
	}
	now := a.opts.Now()
	if !force && now.Sub(a.lag.headAt) < headEvery && !now.Before(a.lag.headAt) {
		return
	}
	a.lag.headAt = now
	h, err := hr.Head()
	if err != nil {
		if !a.lag.headError {
			a.log.Warn("cannot tell where the database's WAL ends; the lag is against what was read", "error", err)
			a.lag.headError = true
		}
		return
	}
	read := a.next - 1
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lag.seen = a.lag.seen || h.Known
	switch {
	case !h.Known:
		a.lag.head = Head{}
	case h.Sequence > read:
		if a.lag.ahead.IsZero() {
			a.lag.ahead = now
		}
		a.lag.head = h
	default:
		a.lag.ahead = time.Time{}
		a.lag.head = Head{Sequence: read, Known: true}
	}
}

// headAhead reports whether the WAL holds batches that were not read yet,
// as the last look at the head showed: a head beyond what was read, with
// WAL bytes before it. (A head without bytes, the latest sequence of a
// program's handle, can be ahead of its WAL: writes with disableWAL.)
func (a *Archiver) headAhead() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lag.head.Known && a.lag.head.Sequence >= a.next && a.lag.head.Bytes > 0
}

// nearHead reports whether the reader follows the database rather than
// catches up on a backlog, as the last look at the head showed: less than
// one segment (SegmentSize) of WAL was left to read, and the reader has not
// read past that head since (a look older than what was read says nothing
// of the backlog now). A writer that writes without pause never lets a read
// find nothing new; within a segment of its head, the archiver still seals
// by age, so that the lag stays one segment age. With a backlog it seals by
// size.
//
// Only a look taken after since counts (the loop passes the time the open
// segment became due by age), so that a reader that catches up on a
// backlog seals at most a segment or two by age at its very end.
func (a *Archiver) nearHead(since time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.lag.head
	return h.Known && h.Bytes >= 0 && a.lag.headAt.After(since) && h.Sequence+1 >= a.next && h.Bytes < int64(a.opts.SegmentSize)
}

// opened records that a segment's first batch was read now.
func (a *Archiver) opened(t time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lag.pending = append(a.lag.pending, t)
}

// uploaded records that the oldest segment not uploaded is, with raw bytes
// of batches.
func (a *Archiver) uploaded(raw int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.lag.pending) > 0 {
		a.lag.pending = a.lag.pending[1:]
	}
	a.lag.rawWait -= raw
}

// dropOpen forgets the open segment, dropped without an upload.
func (a *Archiver) dropOpen(raw int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := len(a.lag.pending); n > 0 {
		a.lag.pending = a.lag.pending[:n-1]
	}
	a.lag.rawWait -= raw
}

// resetPending forgets the segments not uploaded: the loop starts again
// and reads them again.
func (a *Archiver) resetPending() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.lag.pending, a.lag.rawWait = nil, 0
}

// lagStats fills the lag fields of s, with a.mu held.
func (a *Archiver) lagStats(s *Stats) {
	l := &a.lag
	s.HeadKnown = l.seen
	s.HeadSequence = max(s.LastSequence, l.head.Sequence)
	s.LagSequences = s.HeadSequence - min(s.HeadSequence, s.ArchivedSequence)
	s.LagBytes = max(l.rawWait, 0)
	if l.head.Known && l.head.Sequence > s.LastSequence && l.head.Bytes > 0 {
		s.LagBytes += l.head.Bytes
	}
	since := l.ahead
	if len(l.pending) > 0 && (since.IsZero() || l.pending[0].Before(since)) {
		since = l.pending[0]
	}
	s.LagSeconds = 0
	if !since.IsZero() {
		s.LagSeconds = max(a.opts.Now().Sub(since).Seconds(), 0)
	}
}
