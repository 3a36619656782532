package archive_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/segments"
)

// TestBaseAheadOfQueuedSegments: a base is committed while segments still
// wait for upload, and the archiver stops before they are uploaded. The
// restart must read those batches again, not jump to the base.
func TestBaseAheadOfQueuedSegments(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(11))
	src.write(rng, 50)
	opts := testOptions(t, "w")
	opts.DrainTimeout = 300 * time.Millisecond
	opts.Queue = 100 // reading goes on while uploads fail
	r := start(t, src, fs, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "segments/", Err: errors.New("injected 503")})
	src.write(rng, 200)
	waitFor(t, "the batches to be read", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if _, err := archive.TakeBase(context.Background(), src, fs, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(t); err == nil {
		t.Fatal("the stop reported everything archived while segment uploads failed")
	}
	fs.Reset()
	r = start(t, src, fs, opts)
	waitFor(t, "the restart to catch up", func() bool { return bucketEnd(t, fs, 1) == src.lastSeq()+1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	sameBatches(t, archived(t, fs, 1), src.since(firstBase(t, fs, 1).Sequence))
	m, _, _ := manifest.Load(context.Background(), fs)
	if len(m.Holes) != 0 {
		t.Fatalf("holes %+v: the WAL still had every batch", m.Holes)
	}
}

// TestBaseAgainAtSameSequence: an idle database gets a base every interval
// at the same sequence; the stored base must stay intact.
func TestBaseAgainAtSameSequence(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(12)), 120)
	opts := testOptions(t, "w")
	opts.BaseInterval = 30 * time.Millisecond
	r := start(t, src, s, opts)
	waitFor(t, "several base intervals", func() bool { return src.checkpoints() >= 4 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m, _, _ := manifest.Load(context.Background(), s)
	if len(m.Bases) != 1 {
		t.Fatalf("%d bases of one idle database, want 1", len(m.Bases))
	}
	fl, err := manifest.LoadFileList(context.Background(), s, m, m.Bases[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fl.Files {
		rc, _, err := s.Get(context.Background(), f.Key, objstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		io.Copy(h, rc)
		rc.Close()
		if hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
			t.Fatalf("base file %s (%s) no longer matches its files.json", f.Name, f.Key)
		}
	}
}

// TestChildTimelineStartsAfterBranch: a promoted timeline with no base of
// its own continues right after its branch point, not after the parent's
// base.
func TestChildTimelineStartsAfterBranch(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(13))
	src.write(rng, 30)
	r := start(t, src, s, testOptions(t, "old-primary"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	src.write(rng, 100)
	waitFor(t, "the archive", func() bool { return bucketEnd(t, s, 1) == src.lastSeq()+1 })
	r.stop(t)
	branch := src.lastSeq()
	_, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		tl, err := m.AddTimeline(1, branch, time.Now())
		m.Writer = &manifest.Writer{Timeline: tl.ID, Epoch: m.Writer.Epoch + 1, ID: "standby", Host: "h", Since: time.Now().UTC()}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	src.write(rng, 50)
	r = start(t, src, s, testOptions(t, "standby"))
	waitFor(t, "the child timeline", func() bool { return bucketEnd(t, s, 2) == src.lastSeq()+1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if first := c.Segments[2][0].First; first != branch+1 {
		t.Fatalf("timeline 2 starts at %d, want %d (after the branch)", first, branch+1)
	}
	if _, err := manifest.Restorable(c.Manifest, c.Ranges()); err != nil {
		t.Fatalf("the archive no longer reads: %v", err)
	}
}

// TestSplitBrainCollision: another database's segment takes the key that
// this archiver needs next. Its batches differ from ours: that is a split
// brain, never adopted.
func TestSplitBrainCollision(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(14))
	src.write(rng, 30)
	opts := testOptions(t, "w")
	r := start(t, src, s, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	r.stop(t)
	next := bucketEnd(t, s, 1)
	if next == 0 {
		next = firstBase(t, s, 1).Sequence + 1
	}
	opts.SegmentAge = 2 * time.Second
	opts.SegmentSize = 1 << 20
	r = start(t, src, s, opts)
	src.write(rng, 20)
	waitFor(t, "the batches to be read", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	other := newMemSource("db-1")
	other.batches = append(other.batches, segments.Batch{Seq: next, Count: 1, Data: batchData(next, 1, []byte("another history"))})
	putForeignSegment(t, s, 1, other.batches)
	err := r.wait(t)
	if !errors.Is(err, manifest.ErrFenced) || !strings.Contains(err.Error(), "split brain") {
		t.Fatalf("a divergent segment at our key: %v, want a split-brain stop", err)
	}
}

// TestLongerSegmentCollision: a stale archiver of the same database
// sealed the segment at our next key later than we did, so it holds our
// batches and more. That is a collision with the same history, decided by
// the manifest (we are the writer: we go on from what the bucket holds),
// never an unreadable segment retried forever (we read only as many of
// its bytes as ours had, and a prefix of a segment is not one).
func TestLongerSegmentCollision(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(15))
	src.write(rng, 30)
	opts := testOptions(t, "w")
	r := start(t, src, s, opts)
	waitFor(t, "the archive", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	r.stop(t)
	next := src.lastSeq() + 1
	opts.SegmentAge = 2 * time.Second
	opts.SegmentSize = 1 << 20
	r = start(t, src, s, opts)
	src.write(rng, 20)
	waitFor(t, "the batches to be read", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	// The other archiver read 300 batches more before it sealed: the same
	// history, which the database then holds too.
	future := newMemSource("db-1")
	future.batches = src.since(0)
	future.write(rng, 300)
	putForeignSegment(t, s, 1, future.since(next-1))
	// Ours, sealed by age with the 20 batches, meets theirs.
	waitFor(t, "the archiver past the other's segment", func() bool { return r.a.Stats().ArchivedSequence == future.lastSeq() })
	src.mu.Lock()
	src.batches = future.batches
	src.mu.Unlock()
	if err := r.stop(t); err != nil {
		t.Fatalf("after a longer segment of the same history at our key: %v, want a clean stop", err)
	}
}

func putForeignSegment(t *testing.T, s objstore.Store, tl uint32, bs []segments.Batch) {
	t.Helper()
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Codec: segments.CodecZstd, Timeline: uint64(tl), FirstSeq: bs[0].Seq}, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if err := w.Append(b); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := s.Put(context.Background(), manifest.SegmentKey(tl, bs[0].Seq), &buf, int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
}

// TestStopWithFullQueueOneDeadline: a stop while segment uploads hang and
// the queue is full ends after one DrainTimeout (the seal's wait for room
// and the drain share the stop's deadline), says how many segments it
// left, and the restart archives them from the WAL. Before, each wait had
// a DrainTimeout of its own: at least two of them.
func TestStopWithFullQueueOneDeadline(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(12))
	src.write(rng, 20)
	opts := testOptions(t, "w")
	opts.DrainTimeout = 4 * time.Second
	opts.Queue = 1
	r := start(t, src, fs, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "segments/", Delay: time.Hour})
	// One segment hangs in its upload, the next waits in the queue (room
	// for one), and the batches of a third are read: the stop must seal it
	// into a full queue.
	sealed, puts := r.a.Stats().Sealed, fs.Calls(faultstore.Put)
	for i, want := range []int64{sealed + 1, sealed + 2} {
		src.write(rng, 1)
		waitFor(t, fmt.Sprintf("segment %d to be sealed", i+1), func() bool { return r.a.Stats().Sealed >= want })
	}
	waitFor(t, "the first segment's upload to hang", func() bool { return fs.Calls(faultstore.Put) > puts })
	src.write(rng, 1)
	waitFor(t, "the last batch to be read", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	began := time.Now()
	err := r.stop(t)
	took := time.Since(began)
	if err == nil || !strings.Contains(err.Error(), "sealed segments not uploaded") {
		t.Fatalf("the stop with hanging uploads returned %v, want it to say what it left", err)
	}
	// The old code waited DrainTimeout for room, then DrainTimeout for the
	// drain: at least 2x. One deadline ends the stop near 1x.
	if took >= 2*opts.DrainTimeout {
		t.Fatalf("the stop took %v with DrainTimeout %v: more than one deadline", took, opts.DrainTimeout)
	}
	fs.Reset()
	r = start(t, src, fs, opts)
	waitFor(t, "the restart to catch up", func() bool { return bucketEnd(t, fs, 1) == src.lastSeq()+1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	sameBatches(t, archived(t, fs, 1), src.since(firstBase(t, fs, 1).Sequence))
	t.Logf("stop with hanging uploads and a full queue: %v (DrainTimeout %v): %v", took.Round(time.Millisecond), opts.DrainTimeout, err)
}
