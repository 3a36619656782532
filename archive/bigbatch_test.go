package archive_test

import (
	"context"
	"math/rand"
	"testing"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/segments"
)

// writeBatch appends one batch of count operations and size bytes of data.
func (m *memSource) writeBatch(count uint32, size int) segments.Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := m.lastSeqLocked() + 1
	payload := make([]byte, size-12)
	for i := range payload {
		payload[i] = byte('a' + i%7 + i/4096%5)
	}
	b := segments.Batch{Seq: seq, Count: count, Data: batchData(seq, count, payload)}
	m.batches = append(m.batches, b)
	return b
}

// TestLargeBatch archives a batch larger than a segment block
// (segments.DefaultMaxBlockSize) between small ones: it goes on, the batch
// has a segment of its own, cut into blocks, that reads back whole, and a
// restart goes on after it.
func TestLargeBatch(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(3))
	src.write(rng, 50)
	opts := testOptions(t, "writer-a")
	r := start(t, src, s, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	src.write(rng, 30)
	big := src.writeBatch(100, segments.DefaultMaxBlockSize+5<<20)
	src.write(rng, 30)
	waitFor(t, "the archive to catch up", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	r = start(t, src, s, opts)
	src.write(rng, 30)
	waitFor(t, "the archive to catch up after a restart", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	base := firstBase(t, s, 1)
	var want []segments.Batch
	for _, b := range src.batches {
		if b.Seq >= base.Sequence {
			want = append(want, b)
		}
	}
	sameBatches(t, archived(t, s, 1), want)

	ctx := context.Background()
	m, _, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := catalog.Timeline(ctx, s, m, 1)
	if err != nil {
		t.Fatal(err)
	}
	alone := false
	for _, sg := range segs {
		if sg.First == big.Seq {
			alone = sg.Next == big.Seq+uint64(big.Count)
			if sg.Size > int64(len(big.Data)) {
				t.Errorf("segment %s of the large batch is %d bytes, above the batch's %d", sg.Key, sg.Size, len(big.Data))
			}
		}
	}
	if !alone {
		t.Errorf("the batch at %d has no segment of its own: %+v", big.Seq, segs)
	}
}
