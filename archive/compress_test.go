package archive_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// TestCompressorsSameSegments archives the same batches twice, with blocks
// compressed in flight (Options.Compressors 2) and on the reading
// goroutine (-1), on a clock that stands still: the two archives hold the
// same segments, byte for byte, several of them of several blocks.
func TestCompressorsSameSegments(t *testing.T) {
	all, _ := backlog(5 << 20)
	var got [2]map[string][]byte
	for i, n := range []int{-1, 2} {
		src := newMemSource(all.identity)
		src.batches = all.batches[:1] // the first base holds the first batch
		store := newStore(t)
		opts := testOptions(t, "w")
		opts.SegmentSize, opts.SegmentAge, opts.Compressors = 2<<20, time.Hour, n
		clock := time.Unix(1_800_000_000, 0)
		opts.Now = func() time.Time { return clock }
		r := start(t, src, store, opts)
		waitFor(t, "the first base", func() bool { return r.a.Stats().LastSequence >= src.lastSeq() })
		src.mu.Lock()
		src.batches = all.batches
		src.mu.Unlock()
		waitFor(t, "the backlog read", func() bool { return r.a.Stats().LastSequence >= src.lastSeq() })
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
		got[i] = segmentObjects(t, store)
	}
	seq, inFlight := got[0], got[1]
	if len(seq) < 3 || len(inFlight) != len(seq) {
		t.Fatalf("%d segments on the reading goroutine, %d with blocks in flight; want the same, at least 3", len(seq), len(inFlight))
	}
	multi := 0
	for key, want := range seq {
		if !bytes.Equal(inFlight[key], want) {
			t.Errorf("segment %s: %d bytes with blocks in flight, %d without, first difference at byte %d",
				key, len(inFlight[key]), len(want), firstDiff(inFlight[key], want))
		}
		if _, tr, err := segments.ReadTrailer(bytes.NewReader(want), int64(len(want))); err != nil {
			t.Errorf("segment %s: %v", key, err)
		} else if tr.BlockCount >= 2 {
			multi++
		}
	}
	if multi < 2 {
		t.Errorf("%d segments of several blocks, want at least 2: the test would not show blocks in flight", multi)
	}
}

// segmentObjects reads every segment of a store.
func segmentObjects(t *testing.T, s objstore.Store) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	for info, err := range s.List(ctx, manifest.SegmentsPrefix, "") {
		if err != nil {
			t.Fatal(err)
		}
		rc, _, err := s.Get(ctx, info.Key, objstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		out[info.Key] = b
	}
	return out
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
