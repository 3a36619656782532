package rocks

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Two-phase-commit markers of the WriteBatch format (db/dbformat.h): a
// database recovers them only when opened with allow_2pc (db/write_batch.cc
// MemTableInserter::MarkBeginPrepare returns NotSupported otherwise).
const (
	tagBeginPrepareXID          = 0x09
	tagEndPrepareXID            = 0x0A
	tagCommitXID                = 0x0B
	tagRollbackXID              = 0x0C
	tagBeginPersistedPrepareXID = 0x12
	tagBeginUnprepareXID        = 0x13
	tagCommitXIDAndTimestamp    = 0x15
)

var twoPCTags = map[byte]bool{
	tagBeginPrepareXID: true, tagEndPrepareXID: true, tagCommitXID: true, tagRollbackXID: true,
	tagBeginPersistedPrepareXID: true, tagBeginUnprepareXID: true, tagCommitXIDAndTimestamp: true,
}

// replayShapes are the records that a replay by recovery takes: those of
// Apply, merges (in a column family with a merge operator), and the
// two-phase-commit markers (db/write_batch.cc ReadRecordFromWriteBatch).
var replayShapes = func() map[byte]recordShape {
	m := map[byte]recordShape{
		tagMerge:                    {slices: 2, counts: true},
		tagCFMerge:                  {cf: true, slices: 2, counts: true},
		tagBeginPrepareXID:          {},
		tagBeginPersistedPrepareXID: {},
		tagBeginUnprepareXID:        {},
		tagEndPrepareXID:            {slices: 1},
		tagCommitXID:                {slices: 1},
		tagRollbackXID:              {slices: 1},
		tagCommitXIDAndTimestamp:    {slices: 2},
	}
	for t, s := range shapes {
		m[t] = s
	}
	return m
}()

// batchScan is what scanBatch found in a batch.
type batchScan struct {
	seq          uint64
	count        uint32
	twoPC        bool   // it holds two-phase-commit markers
	emptyRangeAt bool   // its last counted record is an empty range deletion
	emptyRanges  uint32 // its counted empty range deletions (begin == end)
	badRange     bool   // a range deletion ends before it begins (bytewise)
	merge        bool   // it holds merges
	prepare      []byte // the xid of its prepared section (EndPrepare)
	commit       []byte // the xid it commits (Commit)
	rollback     bool   // it holds a Rollback marker
}

// scanBatch decodes every record of a batch for a replay by recovery, so
// that a batch that the database cannot recover is refused before it is
// written to a WAL file: a malformed one (ErrCorrupt), a column family
// that hasCF does not know, a merge in a column family without a merge
// operator, a record that recovery would not replay here (ErrUnsupported).
// The record count is checked against the header unless the batch holds
// two-phase-commit markers (whose sequence accounting differs).
func scanBatch(data []byte, hasCF, hasMerge func(uint32) bool) (batchScan, error) {
	var s batchScan
	var err error
	if s.seq, s.count, err = batchHeader(data); err != nil {
		return s, err
	}
	var found uint32
	for off := headerSize; off < len(data); {
		r, err := scanRecord(data, off, hasCF, hasMerge)
		if err != nil {
			return s, err
		}
		s.twoPC = s.twoPC || r.twoPC
		s.badRange = s.badRange || r.badRange
		s.merge = s.merge || r.merge
		switch r.tag {
		case tagEndPrepareXID:
			s.prepare = r.xid
		case tagCommitXID, tagCommitXIDAndTimestamp:
			s.commit = r.xid
		case tagRollbackXID:
			s.rollback = true
		}
		if r.counts {
			found++
			s.emptyRangeAt = r.emptyRange
			if r.emptyRange {
				s.emptyRanges++
			}
		}
		off = r.next
	}
	if found != s.count && !s.twoPC {
		return s, fmt.Errorf("%w: header counts %d records, found %d", ErrCorrupt, s.count, found)
	}
	return s, nil
}

// scanned is one record that scanRecord read.
type scanned struct {
	next       int
	counts     bool
	twoPC      bool
	emptyRange bool
	badRange   bool
	merge      bool
	tag        byte
	xid        []byte // of a two-phase-commit marker
}

func scanRecord(data []byte, off int, hasCF, hasMerge func(uint32) bool) (scanned, error) {
	tag := data[off]
	shape, ok := replayShapes[tag]
	if !ok {
		return scanned{}, unsupported(tag, off)
	}
	r := scanned{counts: shape.counts, twoPC: twoPCTags[tag], tag: tag}
	off++
	var cf uint32
	if shape.cf {
		id, n := binary.Uvarint(data[off:])
		if n <= 0 || id > 1<<32-1 {
			return r, fmt.Errorf("%w: bad column family id at offset %d", ErrCorrupt, off)
		}
		if cf = uint32(id); !hasCF(cf) {
			return r, fmt.Errorf("%w: column family id %d is not in the database", ErrUnsupported, id)
		}
		off += n
	}
	r.merge = tag == tagMerge || tag == tagCFMerge
	if r.merge && !hasMerge(cf) {
		return r, fmt.Errorf("%w: merge record (type 0x%02x) at offset %d in column family id %d, which has no merge operator in the database's options", ErrUnsupported, tag, off-1, cf)
	}
	var sl [2][]byte
	var err error
	for i := 0; i < shape.slices; i++ {
		if sl[i], off, err = readSlice(data, off); err != nil {
			return r, err
		}
	}
	if r.twoPC && shape.slices > 0 {
		r.xid = sl[shape.slices-1] // CommitXIDAndTimestamp: the timestamp, then the xid
	}
	if tag == tagRangeDeletion || tag == tagCFRangeDeletion {
		r.emptyRange = bytes.Equal(sl[0], sl[1])
		r.badRange = bytes.Compare(sl[0], sl[1]) > 0
	}
	r.next = off
	return r, nil
}
