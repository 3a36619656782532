package rocks

import "github.com/rockstream/rockstream/archive"

var (
	_ archive.HeadReader = (*FollowerSource)(nil)
	_ archive.HeadReader = (*Primary)(nil)
)

// Head is where the database's WAL ends (WALTail.Head): its last complete
// batch's sequence, and the bytes of WAL files that Next has yet to read up
// to it.
func (s *FollowerSource) Head() (archive.Head, error) {
	h, behind, err := s.tail.Head()
	if err != nil {
		return archive.Head{}, err
	}
	return archive.Head{Sequence: h.Sequence, Bytes: behind, Known: h.Sequence > 0}, nil
}

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
