package standby

import (
	"bytes"
	"context"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// batch builds a write batch of records with a header count and a span.
func txnBatch(seq uint64, count, span uint32, records ...byte) segments.Batch {
	data := binary.LittleEndian.AppendUint64(nil, seq)
	data = binary.LittleEndian.AppendUint32(data, count)
	return segments.Batch{Seq: seq, Count: span, Time: time.Unix(1, 0), Data: append(data, records...)}
}

var (
	plainRec = []byte{0x01, 1, 'k', 1, 'v'}
	// prepareRec prepares transaction x (0x78) with one put.
	prepareRec = []byte{0x09, 0x01, 1, 'a', 1, 'v', 0x0A, 1, 'x'}
)

func putSegment(t *testing.T, store objstore.Store, batches ...segments.Batch) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Timeline: 1, FirstSeq: batches[0].Seq}, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	key := manifest.SegmentKey(1, batches[0].Seq)
	if _, err := store.Put(context.Background(), key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return key
}

// TestStepPrepared: a prepare uses no sequence, so one at StopAt+1 belongs
// before the standby's start when it ends its segment (the next segment,
// where the standby starts, does not hold it), unless a branch point is
// there; inside the segment that holds StopAt+1 it is the standby's own to
// apply.
func TestStepPrepared(t *testing.T) {
	store, _ := fileStore(t)
	s := &Standby{store: store, log: quiet()}
	tail := putSegment(t, store, txnBatch(5, 1, 1, plainRec...), txnBatch(6, 1, 0, prepareRec...))
	committed := putSegment(t, store, txnBatch(25, 1, 0, prepareRec...), txnBatch(25, 0, 1, 0x0B, 1, 'x'))
	inside := putSegment(t, store, txnBatch(15, 1, 1, plainRec...), txnBatch(16, 1, 0, prepareRec...), txnBatch(16, 1, 1, plainRec...))
	cases := []struct {
		name string
		key  string
		tail bool
		want []string
	}{
		{"prepare ending the segment", tail, true, []string{"x"}},
		{"at a branch point", tail, false, nil},
		{"inside the segment", inside, true, nil},
		{"a commit that ends the step", committed, true, nil},
	}
	for _, c := range cases {
		after := map[string]uint64{tail: 4, inside: 14, committed: 24}[c.key]
		var txns rocks.Txns
		st := manifest.Step{Timeline: 1, Key: c.key, After: after, StopAt: after + 1}
		if err := s.stepPrepared(context.Background(), &txns, st, c.tail); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if got := txns.Pending(); !slices.Equal(got, c.want) {
			t.Errorf("%s: prepared %v, want %v", c.name, got, c.want)
		}
	}
}
