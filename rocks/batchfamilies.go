package rocks

import (
	"encoding/binary"
	"fmt"
)

// familyShapes says, for every record type of RocksDB 7.8's WriteBatch
// (ReadRecordFromWriteBatch, db/write_batch.cc), whether a column family id
// follows the tag and how many length-prefixed slices come after it. It
// holds the records that Apply refuses too (merge, blob index, wide
// columns, transaction markers): a batch names a family whatever it does
// with it. keyed is a record of a key, in the default column family unless cf; ok
// is a record type that RocksDB 7.8 reads. An array: it is looked up for
// every record of every batch the sidecar reads.
var familyShapes = [tagCFWideColumnEntity + 1]struct {
	ok, cf, keyed bool
	slices        int
}{
	tagDeletion: {ok: true, keyed: true, slices: 1}, tagValue: {ok: true, keyed: true, slices: 2}, tagMerge: {ok: true, keyed: true, slices: 2},
	tagLogData: {ok: true, slices: 1}, tagCFDeletion: {ok: true, cf: true, keyed: true, slices: 1},
	tagCFValue: {ok: true, cf: true, keyed: true, slices: 2}, tagCFMerge: {ok: true, cf: true, keyed: true, slices: 2},
	tagSingleDeletion: {ok: true, keyed: true, slices: 1}, tagCFSingleDeletion: {ok: true, cf: true, keyed: true, slices: 1},
	0x09: {ok: true}, 0x0A: {ok: true, slices: 1}, 0x0B: {ok: true, slices: 1}, 0x0C: {ok: true, slices: 1}, // begin, end prepare; commit; rollback
	tagNoop: {ok: true}, tagCFRangeDeletion: {ok: true, cf: true, keyed: true, slices: 2}, tagRangeDeletion: {ok: true, keyed: true, slices: 2},
	tagCFBlobIndex: {ok: true, cf: true, keyed: true, slices: 2}, tagBlobIndex: {ok: true, keyed: true, slices: 2},
	0x12: {ok: true}, 0x13: {ok: true}, 0x15: {ok: true, slices: 2}, // begin persisted prepare, begin unprepare; commit with timestamp
	tagWideColumnEntity: {ok: true, keyed: true, slices: 2}, tagCFWideColumnEntity: {ok: true, cf: true, keyed: true, slices: 2},
}

// BatchFamilies returns the column family ids that a WriteBatch
// representation names, each once, in the order of their first record. A
// record without an id is the default column family's (0). A batch that
// cannot be read is ErrCorrupt, with the offset.
func BatchFamilies(data []byte) ([]uint32, error) {
	if _, _, err := batchHeader(data); err != nil {
		return nil, err
	}
	var ids []uint32
	seen := func(id uint32) bool {
		for _, x := range ids {
			if x == id {
				return true
			}
		}
		return false
	}
	for off := headerSize; off < len(data); {
		tag := data[off]
		if int(tag) >= len(familyShapes) || !familyShapes[tag].ok {
			return nil, fmt.Errorf("%w: unknown record type 0x%02x at offset %d", ErrCorrupt, tag, off)
		}
		shape := familyShapes[tag]
		off++
		id := uint32(0)
		if shape.cf {
			v, n := binary.Uvarint(data[off:])
			if n <= 0 || v > 1<<32-1 {
				return nil, fmt.Errorf("%w: bad column family id at offset %d", ErrCorrupt, off)
			}
			id, off = uint32(v), off+n
		}
		if shape.keyed && !seen(id) {
			ids = append(ids, id)
		}
		for i := 0; i < shape.slices; i++ {
			var err error
			if _, off, err = readSlice(data, off); err != nil {
				return nil, err
			}
		}
	}
	return ids, nil
}
