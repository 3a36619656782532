package standby

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/restore"
)

// TestResumeAfterTransientError: a standby restarted inside a segment
// (stopped mid-segment) whose first look for that segment meets a store
// error must look again, not poll the key applied+1 forever while
// reporting no lag (found in review).
func TestResumeAfterTransientError(t *testing.T) {
	root := t.TempDir()
	inner, _ := fileStore(t)
	src := newSource(t, filepath.Join(root, "db"))
	src.write(t, 20)
	arch := startArchiverOpts(t, src.dir, inner, archive.Options{
		SegmentSize: 16 << 20, SegmentAge: 2 * time.Second, Poll: 5 * time.Millisecond,
		FenceCheck: time.Second, RetryMax: 50 * time.Millisecond, DrainTimeout: 20 * time.Second})
	src.write(t, 200)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	c, err := catalog.Load(context.Background(), inner)
	if err != nil {
		t.Fatal(err)
	}
	segs := c.Segments[1]
	last := segs[len(segs)-1]
	t.Logf("last segment %s [%d,%d)", last.Key, last.First, last.Next)
	mid := last.First + (last.Next-last.First)/2
	dir := filepath.Join(root, "standby")
	// The state a standby stopped mid-segment leaves: a batch boundary inside the segment.
	res, err := restore.Run(context.Background(), inner, restore.Options{Dir: dir, ToSeq: &mid, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTimeline(dir, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("standby db at %d, archive head %d", res.Sequence, last.Next-1)
	fs := faultstore.New(inner)
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: last.Key, Nth: 2, Err: errors.New("connection reset by peer")})
	sb := startStandby(t, fs, dir, 10*time.Millisecond)
	time.Sleep(3 * time.Second)
	st := sb.sb.Status()
	t.Logf("status after 3s: %+v", st)
	if st.Applied != last.Next-1 {
		t.Fatalf("standby stuck at %d (state %s, lag %d), the archive holds up to %d", st.Applied, st.State, st.LagSequences, last.Next-1)
	}
}
