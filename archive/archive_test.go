package archive_test

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/segments"
)

func newStore(t *testing.T) objstore.Store {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testOptions(t *testing.T, id string) archive.Options {
	return archive.Options{
		WriterID: id, WorkDir: t.TempDir(),
		SegmentSize: 4 << 10, SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond,
		FenceCheck: 50 * time.Millisecond, RetryMax: 50 * time.Millisecond, DrainTimeout: 10 * time.Second,
	}
}

// running is an Archiver's Run in a goroutine.
type running struct {
	a      *archive.Archiver
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, src archive.Source, s objstore.Store, opts archive.Options) *running {
	t.Helper()
	a, err := archive.New(src, s, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{a: a, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-r.doneOrClosed() })
	return r
}

func (r *running) doneOrClosed() chan error {
	c := make(chan error, 1)
	go func() {
		select {
		case err, ok := <-r.done:
			if ok {
				r.done <- err
			}
			c <- err
		case <-time.After(20 * time.Second):
			c <- errors.New("still running")
		}
	}()
	return c
}

// stop ends Run as SIGTERM does and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
		return nil
	}
}

// wait waits for Run to end by itself.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end")
		return nil
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// archived reads every batch of timeline tl's segments, checking each
// segment whole.
func archived(t *testing.T, s objstore.Store, tl uint32) []segments.Batch {
	t.Helper()
	ctx := context.Background()
	m, _, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := catalog.Timeline(ctx, s, m, tl)
	if err != nil {
		t.Fatal(err)
	}
	var out []segments.Batch
	for _, sg := range segs {
		rc, _, err := s.Get(ctx, sg.Key, objstore.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r, err := segments.NewReader(rc, segments.ReaderOptions{})
		if err != nil {
			t.Fatalf("segment %s: %v", sg.Key, err)
		}
		for {
			b, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("segment %s: %v", sg.Key, err)
			}
			b.Data = bytes.Clone(b.Data)
			out = append(out, b)
		}
		rc.Close()
	}
	return out
}

// firstBase is the oldest base of timeline tl.
func firstBase(t *testing.T, s objstore.Store, tl uint32) manifest.Base {
	t.Helper()
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	var first *manifest.Base
	for i, b := range m.Bases {
		if b.Timeline == tl && (first == nil || b.Sequence < first.Sequence) {
			first = &m.Bases[i]
		}
	}
	if first == nil {
		t.Fatalf("no base on timeline %d", tl)
	}
	return *first
}

// sameBatches compares archived batches with the source's.
func sameBatches(t *testing.T, got, want []segments.Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("archived %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Seq != want[i].Seq || got[i].Count != want[i].Count || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("batch %d: got seq %d count %d (%d bytes), want seq %d count %d (%d bytes)",
				i, got[i].Seq, got[i].Count, len(got[i].Data), want[i].Seq, want[i].Count, len(want[i].Data))
		}
	}
}

func TestArchiveAndRestart(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(1))
	src.write(rng, 100)
	opts := testOptions(t, "writer-a")

	r := start(t, src, s, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	src.write(rng, 400)
	waitFor(t, "the archive to catch up", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	base := firstBase(t, s, 1)
	if base.Sequence == 0 {
		t.Fatal("the first base is empty: it was taken before the first writes")
	}
	sameBatches(t, archived(t, s, 1), src.since(base.Sequence))
	if n := r.a.Stats().Segments; n < 5 {
		t.Fatalf("only %d segments: the size limit did not cut", n)
	}

	// A restart with the same writer continues exactly after the last
	// archived batch: no gap, no duplicate, no new base.
	src.write(rng, 300)
	r2 := start(t, src, s, opts)
	src.write(rng, 100)
	waitFor(t, "the restarted archive to catch up", func() bool { return r2.a.Stats().LastSequence == src.lastSeq() })
	if err := r2.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	sameBatches(t, archived(t, s, 1), src.since(base.Sequence))
	m, _, _ := manifest.Load(context.Background(), s)
	if len(m.Bases) != 1 || m.Writer.Epoch != 2 || m.Writer.ID != "writer-a" {
		t.Fatalf("after a restart: %d bases, writer %+v; want 1 base, epoch 2", len(m.Bases), m.Writer)
	}
}

func TestIdleMakesNoPut(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(2)), 10)
	r := start(t, src, fs, testOptions(t, "w"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	time.Sleep(100 * time.Millisecond)
	before := fs.Calls(faultstore.Put)
	time.Sleep(500 * time.Millisecond)
	if d := fs.Calls(faultstore.Put) - before; d != 0 {
		t.Fatalf("an idle archiver made %d puts in 500ms", d)
	}
	if lists := fs.Calls(faultstore.List); lists > 3 {
		t.Fatalf("%d lists: an archiver lists only at start and per base", lists)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestOtherWriterNeedsTakeover(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(3)), 20)
	r := start(t, src, s, testOptions(t, "host-a"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	r.stop(t)

	err := start(t, src, s, testOptions(t, "host-b")).wait(t)
	if !errors.Is(err, archive.ErrWriterActive) || !strings.Contains(err.Error(), "--takeover") {
		t.Fatalf("a second writer without --takeover: %v", err)
	}
	opts := testOptions(t, "host-b")
	opts.Takeover = true
	r = start(t, src, s, opts)
	waitFor(t, "the takeover to archive", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

func TestOtherDatabase(t *testing.T) {
	s := newStore(t)
	a := newMemSource("db-1")
	a.write(rand.New(rand.NewSource(4)), 5)
	r := start(t, a, s, testOptions(t, "w"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	r.stop(t)
	b := newMemSource("db-2")
	err := start(t, b, s, testOptions(t, "w")).wait(t)
	if !errors.Is(err, archive.ErrOtherDatabase) || !strings.Contains(err.Error(), "db-1") {
		t.Fatalf("another database: %v", err)
	}
}

// TestSecondArchiverFencesFirst runs two archivers of one database with
// one writer ID: the second claims a new epoch, and the first stops as
// fenced, at its next manifest check or segment upload.
func TestSecondArchiverFencesFirst(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(5))
	src.write(rng, 50)
	first := start(t, src, s, testOptions(t, "same"))
	waitFor(t, "the first archiver", func() bool { return first.a.Stats().LastSequence == src.lastSeq() })
	second := start(t, newMirror(src), s, testOptions(t, "same"))
	src.write(rng, 50)
	err := first.wait(t)
	if !errors.Is(err, manifest.ErrFenced) || !strings.Contains(err.Error(), "fenced") {
		t.Fatalf("the first archiver: %v, want fenced", err)
	}
	waitFor(t, "the second archiver to upload everything", func() bool { return bucketEnd(t, s, 1) == src.lastSeq()+1 })
	if err := second.stop(t); err != nil {
		t.Fatal(err)
	}
	sameBatches(t, archived(t, s, 1), src.since(firstBase(t, s, 1).Sequence))
}

// newMirror is a second reader of the same fake database.
func newMirror(m *memSource) *mirror {
	return &mirror{memSource: &memSource{identity: m.identity}, of: m}
}

type mirror struct {
	*memSource
	of *memSource
}

func (m *mirror) sync() {
	m.of.mu.Lock()
	b, tr := append([]segments.Batch(nil), m.of.batches...), m.of.trimmed
	m.of.mu.Unlock()
	m.mu.Lock()
	m.batches, m.trimmed = b, tr
	m.mu.Unlock()
}

func (m *mirror) Refresh() error { m.sync(); return nil }
func (m *mirror) Seek(seq uint64) error {
	m.sync()
	return m.memSource.Seek(seq)
}
func (m *mirror) Checkpoint(dir string) (uint64, error) { m.sync(); return m.memSource.Checkpoint(dir) }

// TestGap: the WAL that the archive needs is gone. The archiver records a
// hole, takes a new base, and goes on; status sees the hole.
func TestGap(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(6))
	src.write(rng, 50)
	opts := testOptions(t, "w")
	r := start(t, src, s, opts)
	waitFor(t, "the archive", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	r.stop(t)
	end := src.lastSeq()
	src.write(rng, 100)
	src.trim(src.lastSeq() - 50) // the archiver was down too long
	src.write(rng, 20)
	r = start(t, src, s, opts)
	waitFor(t, "the archive after the gap", func() bool { return r.a.Stats().LastSequence == src.lastSeq() && holesEnded(t, s) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m, _, _ := manifest.Load(context.Background(), s)
	if len(m.Holes) != 1 || m.Holes[0].From != end+1 || len(m.Bases) != 2 {
		t.Fatalf("holes %+v, %d bases; want one hole from %d and a second base", m.Holes, len(m.Bases), end+1)
	}
	newBase := m.Bases[1]
	if m.Holes[0].To != newBase.Sequence {
		t.Fatalf("the hole ends at %d, the new base is at %d", m.Holes[0].To, newBase.Sequence)
	}
	_, cov := coverage(t, s) // holebg_test.go
	if len(cov) != 1 || len(cov[0].Ranges) != 2 || len(cov[0].Holes) == 0 {
		t.Fatalf("coverage %+v: want two ranges around the hole", cov)
	}
	got := archived(t, s, 1)
	var want []segments.Batch
	for _, b := range src.since(firstBase(t, s, 1).Sequence) {
		if b.Seq <= end || b.Seq > newBase.Sequence {
			want = append(want, b)
		}
	}
	sameBatches(t, got, want)
}

// TestOutage: the store is unreachable for a while; nothing is lost and
// the backlog drains.
func TestOutage(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(7))
	src.write(rng, 20)
	r := start(t, src, fs, testOptions(t, "w"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	fs.Unreachable(time.Hour)
	src.write(rng, 300)
	waitFor(t, "uploads to fail", func() bool { return r.a.Stats().Retries >= 3 })
	fs.Reset() // the store is back
	defer func() { t.Logf("stats %+v, source at %d", r.a.Stats(), src.lastSeq()) }()
	waitFor(t, "the backlog to drain", func() bool {
		st := r.a.Stats()
		return st.LastSequence == src.lastSeq() && st.Retries > 0 && st.Segments > 0
	})
	time.Sleep(100 * time.Millisecond)
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	sameBatches(t, archived(t, fs, 1), src.since(firstBase(t, fs, 1).Sequence))
}

// TestLostAnswer: a segment put succeeds but its answer is lost; the retry
// finds its own bytes and goes on, not fenced.
func TestLostAnswer(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(8))
	src.write(rng, 20)
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "segments/", Nth: 2, Err: errors.New("connection reset"), AfterPut: true})
	r := start(t, src, fs, testOptions(t, "w"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	src.write(rng, 200)
	waitFor(t, "the archive", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if r.a.Stats().Retries == 0 {
		t.Fatal("the lost answer was not retried")
	}
	sameBatches(t, archived(t, fs, 1), src.since(firstBase(t, fs, 1).Sequence))
}

// TestBasesShareSSTs: a second base uploads only the SST files that the
// first did not.
func TestBasesShareSSTs(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(9))
	src.write(rng, 200) // four SST files
	opts := testOptions(t, "w")
	opts.BaseWALBytes = 10 << 10
	r := start(t, src, fs, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	sstPuts := func() int {
		n := 0
		for info, err := range fs.List(context.Background(), manifest.SSTPrefix, "") {
			if err != nil {
				t.Fatal(err)
			}
			_ = info
			n++
		}
		return n
	}
	if n := sstPuts(); n != 4 {
		t.Fatalf("%d SST objects after the first base, want 4", n)
	}
	src.write(rng, 100) // two more SST files, and enough WAL for a base
	waitFor(t, "the second base", func() bool { return r.a.Stats().Bases >= 2 })
	if n := sstPuts(); n != 6 {
		t.Fatalf("%d SST objects after the second base, want 6 (4 shared)", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// bucketEnd is the sequence after the last archived batch of timeline tl.
func bucketEnd(t *testing.T, s objstore.Store, tl uint32) uint64 {
	t.Helper()
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := catalog.Timeline(context.Background(), s, m, tl)
	if err != nil || len(segs) == 0 {
		return 0
	}
	return segs[len(segs)-1].Next
}

// TestGapHoleFirst: the hole is in the manifest before the base that ends
// it, open (nothing restorable from its start) while that base fails; a
// stop meanwhile is clean (Run returns nil) and leaves the hole open; the
// next start takes the base, and the hole ends exactly at it.
func TestGapHoleFirst(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(16))
	src.write(rng, 50)
	opts := testOptions(t, "w")
	r := start(t, src, fs, opts)
	waitFor(t, "the archive", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	end := src.lastSeq()
	src.write(rng, 100)
	src.trim(src.lastSeq() - 50)
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "bases/", Err: errors.New("injected: disk full on the store")})
	r = start(t, src, fs, opts)
	var open manifest.Hole
	waitFor(t, "an open hole while the base fails", func() bool {
		m, _, err := manifest.Load(context.Background(), fs)
		if err != nil || len(m.Holes) != 1 {
			return false
		}
		open = m.Holes[0]
		return true
	})
	if open.From != end+1 || open.To != manifest.MaxSequence {
		t.Fatalf("the hole while its base fails: %+v, want from %d, open", open, end+1)
	}
	_, rs := restorable(t, fs) // holebg_test.go
	nothingAfter(t, rs, end)
	if err := r.stop(t); err != nil {
		t.Fatalf("a stop while the hole's base fails: %v, want a clean stop", err)
	}
	fs.Reset()
	src.write(rng, 20)
	r = start(t, src, fs, opts)
	waitFor(t, "the archive after the hole", func() bool { return r.a.Stats().LastSequence == src.lastSeq() && holesEnded(t, fs) })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m, _, _ := manifest.Load(context.Background(), fs)
	if len(m.Holes) != 1 || len(m.Bases) != 2 || m.Holes[0].From != end+1 || m.Holes[0].To != m.Bases[1].Sequence {
		t.Fatalf("holes %+v, bases %+v: want one hole from %d ended by the second base", m.Holes, m.Bases, end+1)
	}
}
