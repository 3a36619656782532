package rocks

import (
	"time"

	"github.com/rockstream/rockstream/archive"
)

var (
	_ archive.HeadReader = (*FollowerSource)(nil)
	_ archive.HeadReader = (*Primary)(nil)
)

// Head is where the database's WAL ends (WALTail.Head): its last complete
// batch's sequence, and the bytes of WAL files that Next has yet to read up
// to it.
//
// The database's MANIFEST can record a later sequence than any WAL file
// holds (the family watch reads it): writes made without the WAL and
// flushed, or a WAL kept in another folder than the one read (wal_dir).
// The head is then that sequence, so that the lag says the archive is
// behind, never a quiet 0, and a warning names the likely causes.
func (s *FollowerSource) Head() (archive.Head, error) {
	h, behind, err := s.tail.Head()
	if err != nil {
		return archive.Head{}, err
	}
	seq := h.Sequence
	if f := s.fam.flushed; f <= seq {
		s.aheadSince = time.Time{}
	} else {
		seq = f
		now := s.now()
		if s.aheadSince.IsZero() {
			s.aheadSince = now // a writer with manual_wal_flush can be ahead of its WAL file for a moment
		}
		if now.Sub(s.aheadSince) >= headWarnAfter && now.Sub(s.warnedHead) >= headWarnEvery {
			s.warnedHead = now
			s.fam.log.Warn("the database's MANIFEST records a later sequence than any WAL file the archiver reads: those writes are not in the archive",
				"manifest_sequence", f, "wal_head", h.Sequence, "wal_dir", s.walDir,
				"fix", "if the writer keeps its WAL elsewhere, give --wal-dir; writes made with disableWAL are archived only as a hole and the base after it")
		}
	}
	return archive.Head{Sequence: seq, Bytes: behind, Known: seq > 0}, nil
}

// Head warns of a MANIFEST ahead of the WAL once it has been ahead for
// headWarnAfter, and then at most every headWarnEvery.
const (
	headWarnAfter = 30 * time.Second
	headWarnEvery = time.Minute
)

// Head is the database's latest sequence (the program's handle knows it);
// the bytes behind it are not known.
func (p *Primary) Head() (archive.Head, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.db == nil {
		return archive.Head{}, nil
	}
	return archive.Head{Sequence: p.db.GetLatestSequenceNumber(), Bytes: -1, Known: true}, nil
}
