package archive_test

import (
	"math/rand"
	"sync/atomic"
	"testing"
	"time"
)

// TestZeroSpanSegmentAged: a segment whose batches use no sequence number
// (a transaction's prepare that waits for its commit) stays open past its
// age, since its key would be the next segment's; it is sealed with the
// batch after it, and the archive holds both. It was dropped when its age
// came while the archiver waited for more: the prepare was lost, and a
// restore met the commit without it.
func TestZeroSpanSegmentAged(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(81))
	src.write(rng, 30)
	var offset atomic.Int64 // the archiver's clock runs ahead by this
	opts := testOptions(t, "w")
	opts.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	r := start(t, src, s, opts)
	waitFor(t, "the archive", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })

	read := r.a.Stats().Batches
	src.writeBatch(0, 200) // a prepare: no sequence
	waitFor(t, "the prepare read", func() bool { return r.a.Stats().Batches == read+1 })
	offset.Store(int64(time.Hour)) // its segment is due now
	n := src.nextCalls()
	waitFor(t, "the archiver to wait twice more", func() bool { return src.nextCalls() >= n+2 })
	src.write(rng, 5) // its commit, and more
	waitFor(t, "the batches after it", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	sameBatches(t, archived(t, s, 1), src.since(firstBase(t, s, 1).Sequence))
}
