package rocks

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Batch is one WriteBatch of the WAL.
type Batch struct {
	Seq uint64 // sequence number of its first operation
	// Count is exactly the number of sequence numbers the batch uses: 0 for
	// log data only, and for a two-phase-commit prepare or rollback; the
	// header's count plus the prepared count for a commit (Txns).
	Count uint32
	Data  []byte // the WriteBatch representation; owned by the caller
}

// Next is the sequence number that the batch after this one starts at.
func (b Batch) Next() uint64 { return b.Seq + uint64(b.Count) }

// headerSize is the WriteBatch header: fixed64 sequence, fixed32 count.
const headerSize = 12

// Record tags of the WriteBatch format (RocksDB db/dbformat.h).
const (
	tagDeletion           = 0x00
	tagValue              = 0x01
	tagMerge              = 0x02
	tagLogData            = 0x03
	tagCFDeletion         = 0x04
	tagCFValue            = 0x05
	tagCFMerge            = 0x06
	tagSingleDeletion     = 0x07
	tagCFSingleDeletion   = 0x08
	tagNoop               = 0x0D
	tagCFRangeDeletion    = 0x0E
	tagRangeDeletion      = 0x0F
	tagCFBlobIndex        = 0x10
	tagBlobIndex          = 0x11
	tagWideColumnEntity   = 0x16
	tagCFWideColumnEntity = 0x17
	maxKnownRecordType    = tagCFWideColumnEntity
)

// recordShape says how a supported record is laid out after its tag.
type recordShape struct {
	cf     bool // a varint32 column family id follows the tag
	slices int  // length-prefixed slices that follow
	counts bool // the record uses a sequence number
}

// shapes lists the records that Apply writes. Merge needs the source's merge
// operator, blob index needs BlobDB, wide columns are not replayed: those are
// ErrUnsupported. Transaction markers are resolved by Txns before
// (txn.go): what Apply writes holds none.
var shapes = map[byte]recordShape{
	tagDeletion:         {slices: 1, counts: true},
	tagValue:            {slices: 2, counts: true},
	tagLogData:          {slices: 1},
	tagCFDeletion:       {cf: true, slices: 1, counts: true},
	tagCFValue:          {cf: true, slices: 2, counts: true},
	tagSingleDeletion:   {slices: 1, counts: true},
	tagCFSingleDeletion: {cf: true, slices: 1, counts: true},
	tagNoop:             {},
	tagCFRangeDeletion:  {cf: true, slices: 2, counts: true},
	tagRangeDeletion:    {slices: 2, counts: true},
}

var unsupportedNames = map[byte]string{
	tagMerge: "merge", tagCFMerge: "merge", tagBlobIndex: "blob index", tagCFBlobIndex: "blob index",
	tagWideColumnEntity: "wide-column entity", tagCFWideColumnEntity: "wide-column entity",
}

// batchHeader returns the sequence and count that a WriteBatch's header holds.
func batchHeader(data []byte) (seq uint64, count uint32, err error) {
	if len(data) < headerSize {
		return 0, 0, fmt.Errorf("%w: %d bytes, shorter than its header", ErrCorrupt, len(data))
	}
	return binary.LittleEndian.Uint64(data), binary.LittleEndian.Uint32(data[8:]), nil
}

// checkBatch decodes every record of a WriteBatch, so that a malformed or
// unsupported batch is refused before RocksDB writes it to its WAL: RocksDB
// logs a batch before it decodes it, and a database whose WAL holds a bad
// batch no longer opens. It assumes the bytewise comparator (the only one
// this package opens databases with). hasCF says whether a column family id
// exists.
func checkBatch(data []byte, hasCF func(uint32) bool) (seq uint64, count uint32, err error) {
	seq, count, _, err = checkBatchRanges(data, hasCF)
	return seq, count, err
}

// checkBatchRanges is checkBatch, and says whether the batch holds an
// empty range deletion (begin == end), which RocksDB's inserter applies
// without taking a sequence.
func checkBatchRanges(data []byte, hasCF func(uint32) bool) (seq uint64, count uint32, emptyRange bool, err error) {
	seq, count, err = batchHeader(data)
	if err != nil {
		return 0, 0, false, err
	}
	var found uint32
	for off := headerSize; off < len(data); {
		next, counts, empty, err := checkRecord(data, off, hasCF)
		if err != nil {
			return 0, 0, false, err
		}
		if counts {
			found++
		}
		emptyRange = emptyRange || empty
		off = next
	}
	if found != count {
		return 0, 0, false, fmt.Errorf("%w: header counts %d records, found %d", ErrCorrupt, count, found)
	}
	return seq, count, emptyRange, nil
}

// checkRecord checks the record at off and returns the offset after it;
// empty says it is an empty range deletion.
func checkRecord(data []byte, off int, hasCF func(uint32) bool) (next int, counts, empty bool, err error) {
	tag := data[off]
	shape, ok := shapes[tag]
	if !ok {
		return 0, false, false, unsupported(tag, off)
	}
	off++
	if shape.cf {
		id, n := binary.Uvarint(data[off:])
		if n <= 0 || id > 1<<32-1 {
			return 0, false, false, fmt.Errorf("%w: bad column family id at offset %d", ErrCorrupt, off)
		}
		if !hasCF(uint32(id)) {
			return 0, false, false, fmt.Errorf("%w: column family id %d is not open", ErrUnsupported, id)
		}
		off += n
	}
	var slices [2][]byte
	for i := 0; i < shape.slices; i++ {
		if slices[i], off, err = readSlice(data, off); err != nil {
			return 0, false, false, err
		}
	}
	if tag == tagRangeDeletion || tag == tagCFRangeDeletion {
		switch bytes.Compare(slices[0], slices[1]) {
		case 1: // RocksDB refuses it only after logging it.
			return 0, false, false, fmt.Errorf("%w: range deletion ends before it begins at offset %d", ErrCorrupt, off)
		case 0:
			return off, shape.counts, true, nil
		}
	}
	return off, shape.counts, false, nil
}

// readSlice reads a varint32 length and that many bytes.
func readSlice(data []byte, off int) (s []byte, next int, err error) {
	n, w := binary.Uvarint(data[off:])
	if w <= 0 || n > uint64(len(data)-off-w) {
		return nil, 0, fmt.Errorf("%w: bad slice at offset %d", ErrCorrupt, off)
	}
	next = off + w + int(n)
	return data[off+w : next], next, nil
}

func unsupported(tag byte, off int) error {
	name, ok := unsupportedNames[tag]
	switch {
	case ok:
	case tag <= maxKnownRecordType:
		name = "transaction marker or timestamp"
	default:
		return fmt.Errorf("%w: unknown record type 0x%02x at offset %d", ErrCorrupt, tag, off)
	}
	return fmt.Errorf("%w: %s record (type 0x%02x) at offset %d", ErrUnsupported, name, tag, off)
}
