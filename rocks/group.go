package rocks

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/linxGnu/grocksdb"
)

// groupBytes bounds the records that one group gathers before it is
// written (a batch larger than that is written alone).
const groupBytes = 4 << 20

// batchGroup gathers consecutive plain batches (no transaction markers)
// into one write batch: the first batch's header (its sequence), the
// records of each in order, and the sum of their counts. Written at once,
// RocksDB gives each record the sequence it had in the source, as one
// write per batch would (the write path numbers a batch's records from its
// first sequence, one per counted record), so the memtables end up the
// same; it saves the per-write cost (the write queue, a WAL record and a
// system call per batch when the WAL is on), which is most of the cost of
// small batches. Readers see the group appear at once.
type batchGroup struct {
	buf   []byte
	count uint64 // records counted by the headers
	n     int    // batches
	first uint64 // the first batch's sequence
}

// fits says whether a batch of size bytes with count records can join the
// group without passing its bounds (an empty group takes any batch).
func (g *batchGroup) fits(size int, count uint32) bool {
	return g.n == 0 || len(g.buf)+size-headerSize <= groupBytes && g.count+uint64(count) <= math.MaxUint32
}

// add appends a plain batch (its header already checked) that starts
// where the group ends.
func (g *batchGroup) add(data []byte) {
	seq := binary.LittleEndian.Uint64(data)
	count := binary.LittleEndian.Uint32(data[8:])
	if g.n == 0 {
		g.buf = append(g.buf[:0], data...)
		g.first = seq
	} else {
		g.buf = append(g.buf, data[headerSize:]...)
	}
	g.count += uint64(count)
	g.n++
	binary.LittleEndian.PutUint32(g.buf[8:], uint32(g.count))
}

// write writes the group, checks that the database then ends at the
// group's last sequence, and empties it. An empty group writes nothing.
func (g *batchGroup) write(db *grocksdb.DB, wo *grocksdb.WriteOptions, dir string) error {
	if g.n == 0 {
		return nil
	}
	first, last, n := g.first, g.first+g.count-1, g.n
	g.n, g.count = 0, 0
	wb := grocksdb.WriteBatchFrom(g.buf)
	err := db.Write(wo, wb)
	wb.Destroy()
	if len(g.buf) > 2*groupBytes {
		g.buf = nil // one large batch: do not keep its buffer
	}
	if err != nil {
		return fmt.Errorf("rocks: write to %s the %d batches from sequence %d: %w", dir, n, first, err)
	}
	if got := db.GetLatestSequenceNumber(); got != last {
		return fmt.Errorf("rocks: write to %s the %d batches from sequence %d: the database ends at %d, want %d", dir, n, first, got, last)
	}
	return nil
}
