package standby

import (
	"bytes"

	"github.com/rockstream/rockstream/segments"
)

// A batch that uses no sequence (a transaction's prepare or rollback, a
// batch of log data only) shares its Seq with the batch after it, so the
// sequence the database reached does not say whether it was applied: a
// reader that goes on "after the latest sequence" (the live stream, once it
// connects again; the segment after the stream; applySegment reads from
// the latest sequence on) brings it again. A prepare applied twice is a
// transaction prepared again before its commit, which the apply refuses
// as a corrupt batch. So the standby remembers the batches without a
// sequence that it applied at the Seq where the database is now, and
// skips the same bytes at that Seq: two such batches with the same bytes
// are the same batch (RocksDB refuses a second prepare under a pending
// transaction's name; log data changes nothing). A restart forgets them,
// as it forgets the prepares they held (txns.go reads those again).
type zeroSpan struct {
	seq  uint64   // the Seq they share
	data [][]byte // the batches applied there, in order
}

// next is the Seq at which the next batch must start: after the batches
// gathered, or after the database's latest sequence.
func (p *pending) next() uint64 {
	if n := len(p.bs); n > 0 {
		return p.bs[n-1].Seq + uint64(p.bs[n-1].Count)
	}
	return p.s.db.LatestSequence() + 1
}

// redelivered says whether b, about to be added, is a batch without a
// sequence that was applied (or gathered) at the same Seq already.
func (p *pending) redelivered(b segments.Batch) bool {
	z := &p.s.zero
	if b.Count != 0 || b.Seq != z.seq || b.Seq != p.next() {
		return false
	}
	for _, d := range z.data {
		if bytes.Equal(d, b.Data) {
			return true
		}
	}
	return false
}

// noteAdded remembers b, just gathered, when it uses no sequence.
func (p *pending) noteAdded(b segments.Batch) {
	z := &p.s.zero
	if b.Count != 0 {
		return
	}
	if z.seq != b.Seq {
		z.seq, z.data = b.Seq, z.data[:0]
	}
	z.data = append(z.data, bytes.Clone(b.Data))
}
