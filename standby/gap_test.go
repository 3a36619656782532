package standby

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/segments"
)

// TestMissingSegment: the segment the standby needs next is gone while the
// archive goes on after it. A 404 of the next key must not be taken for
// "nothing new" for ever: at start (its listing) and while it waits (a
// listing now and then), the standby stops naming the missing key.
func TestMissingSegment(t *testing.T) {
	store, bucket := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	for range 3 {
		src.write(t, 30)
		time.Sleep(60 * time.Millisecond)
	}
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	c, err := catalog.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	segs := c.Segments[1]
	if len(segs) < 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}

	// While it waits: a standby at the archive's end, then a segment
	// appears further on (as if the one between was lost).
	latest := src.latest()
	sb := startStandby(t, store, filepath.Join(t.TempDir(), "standby"), 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == latest })
	putOneBatchSegment(t, store, latest+10)
	wantMissing(t, sb, manifest.SegmentKey(1, latest+1))

	// At start: a standby at the end of segs[0] while segs[1] is gone.
	dir := filepath.Join(t.TempDir(), "standby2")
	at := segs[0].Next - 1
	if _, err := restore.Run(context.Background(), store, restore.Options{Dir: dir, ToSeq: &at, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(bucket, segs[1].Key)); err != nil {
		t.Fatal(err)
	}
	sb = startStandby(t, store, dir, 10*time.Millisecond)
	wantMissing(t, sb, segs[1].Key)
}

func wantMissing(t *testing.T, sb *runningStandby, key string) {
	t.Helper()
	var err error
	select {
	case err = <-sb.done:
		sb.done <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("the standby waits for %s for ever", key)
	}
	if !errors.Is(err, restore.ErrCorrupt) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("the standby stopped with %v, want the missing %s named", err, key)
	}
	t.Logf("stopped with: %v", err)
}

// putOneBatchSegment creates a segment of timeline 1 with one batch at seq.
func putOneBatchSegment(t *testing.T, s objstore.Store, seq uint64) {
	t.Helper()
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Timeline: 1, FirstSeq: seq}, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 12, 20)
	binary.LittleEndian.PutUint64(data, seq)
	binary.LittleEndian.PutUint32(data[8:], 1)
	if err := w.Append(segments.Batch{Seq: seq, Count: 1, Time: time.Now(), Data: append(data, "payload!"...)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), manifest.SegmentKey(1, seq), &buf, int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
}
