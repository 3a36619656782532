package restore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// TestPrefetchMemoryPerSegment starts the read-ahead of a plan of 100,000
// segments and checks that it costs (almost) nothing per planned segment:
// only the fetches under way hold memory. A week of 1 s segments is about
// 600,000 of them.
func TestPrefetchMemoryPerSegment(t *testing.T) {
	const n = 100_000
	store := fileStore(t, filepath.Join(t.TempDir(), "bucket"))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = manifest.SegmentKey(1, uint64(i)*1000+1) // none exists: each fetch ends in ErrNotFound
	}
	before := liveHeap()
	p := startPrefetch(context.Background(), store, keys, 4)
	after := liveHeap()
	p.close()
	runtime.KeepAlive(keys)
	grown := int64(after) - int64(before)
	t.Logf("live heap %d KiB before, %d KiB with the read-ahead of %d segments started: %d B per segment",
		before>>10, after>>10, n, grown/n)
	if grown > n*16 {
		t.Fatalf("the read-ahead of %d segments grew the live heap by %d KiB (%d B per segment): it must not grow with the plan",
			n, grown>>10, grown/n)
	}
}

// liveHeap is the bytes of the Go heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPrefetchInOrder reads more objects than the read-ahead holds, in
// order, each whole or closed early, and checks their bytes; a read out of
// the planned order is an error.
func TestPrefetchInOrder(t *testing.T) {
	store := fileStore(t, filepath.Join(t.TempDir(), "bucket"))
	var keys []string
	want := map[string][]byte{}
	for i := range 10 {
		k := manifest.SegmentKey(1, uint64(i)*100+1)
		body := bytes.Repeat([]byte{byte('a' + i)}, chunkSize/2*(i+1)) // 0.5 to 5 chunks
		if _, err := store.Put(context.Background(), k, bytes.NewReader(body), int64(len(body)), objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		keys, want[k] = append(keys, k), body
	}
	p := startPrefetch(context.Background(), store, keys, 2)
	defer p.close()
	for i, k := range keys {
		r, err := p.open(k)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 2 { // close early: the next object must still come
			r.Close()
			continue
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, want[k]) {
			t.Fatalf("object %s: read %d bytes (%v), want %d", k, len(got), err, len(want[k]))
		}
	}
	if _, err := p.open(keys[0]); err == nil || !strings.Contains(err.Error(), "planned order") {
		t.Fatalf("an open past the last planned key: %v, want an out-of-order error", err)
	}
}

// TestPrefetchOutOfOrder opens a key other than the next planned one.
func TestPrefetchOutOfOrder(t *testing.T) {
	store := fileStore(t, filepath.Join(t.TempDir(), "bucket"))
	keys := []string{manifest.SegmentKey(1, 1), manifest.SegmentKey(1, 101)}
	p := startPrefetch(context.Background(), store, keys, 2)
	defer p.close()
	_, err := p.open(keys[1])
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("segment %s: read out of the planned order", keys[1])) {
		t.Fatalf("open of the second key first: %v, want an out-of-order error", err)
	}
}
