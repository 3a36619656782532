package rocks

import (
	"bytes"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/segments"
)

// gatedSource is the sidecar's source, whose reads find nothing while the
// gate is shut: an archiver that falls behind on demand.
type gatedSource struct {
	*FollowerSource
	open atomic.Bool
}

func (g *gatedSource) Next() (segments.Batch, bool, error) {
	if !g.open.Load() {
		return segments.Batch{}, false, nil
	}
	return g.FollowerSource.Next()
}

// lockedBuffer is a log's buffer that a test reads while it is written.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after a minute", what)
		}
	}
}

// TestArchiveBacklog: db_bench writes a backlog in 256 KiB WAL files while
// the archiver cannot read. The archiver reports its lag against the
// database, not against what it read: the head's sequence, the WAL bytes
// behind it, a lag in seconds. Then it reads the backlog: segments are
// sealed by size only (a 1 ms segment age would seal one per WAL file or
// more otherwise), and the lag goes to zero once they are uploaded.
func TestArchiveBacklog(t *testing.T) {
	bench := requireTool(t, "db_bench")
	dir := filepath.Join(t.TempDir(), "db")
	common := []string{"--db=" + dir, "--wal_ttl_seconds=3600", "--value_size=100", "--compression_type=none",
		"--write_buffer_size=262144", "--seed=7", "--threads=1", "--key_size=16"}
	if out, err := exec.Command(bench, append(common, "--benchmarks=fillrandom", "--num=2000")...).CombinedOutput(); err != nil {
		t.Fatalf("db_bench fillrandom: %v: %s", err, out)
	}
	fs, err := NewFollowerSource(dir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	src := &gatedSource{FollowerSource: fs}
	store, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const segSize = 1 << 20
	log := &lockedBuffer{}
	a, err := archive.New(src, store, archive.Options{WorkDir: t.TempDir(), SegmentSize: segSize, SegmentAge: time.Millisecond,
		Poll: time.Millisecond, SummaryEvery: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitFor(t, "the first base", func() bool { return a.Stats().ArchivedSequence == 2000 })
	if s := a.Stats(); s.ArchivedSequence != 2000 || s.LagSequences != 0 {
		t.Fatalf("after the first base: archived %d, lag %d; want 2000, 0", s.ArchivedSequence, s.LagSequences)
	}

	const num, perBatch = 100_000, 2
	var out bytes.Buffer
	cmd := exec.Command(bench, append(common, "--benchmarks=overwrite", "--use_existing_db=1", "--num=100000", "--batch_size=2")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("db_bench overwrite: %v: %s", err, out.String())
	}
	const latest = 2000 + num
	waitFor(t, "the head at the database's last sequence", func() bool { return a.Stats().HeadSequence == latest })
	waitFor(t, "a lag in seconds", func() bool { return a.Stats().LagSeconds > 0 })
	behind := a.Stats()
	t.Logf("behind: %+v", behind)
	waitFor(t, "a summary line with the lag", func() bool {
		return strings.Contains(log.String(), "read_sequence=2000 archived_sequence=2000 head_sequence=102000 lag_sequences=100000 lag_bytes=")
	})
	if behind.LagSequences != num || behind.LastSequence != 2000 || behind.Segments != 0 {
		t.Fatalf("behind: lag %d sequences, read up to %d, %d segments; want %d, 2000, 0", behind.LagSequences, behind.LastSequence, behind.Segments, num)
	}

	src.open.Store(true)
	waitFor(t, "the backlog archived", func() bool { return a.Stats().ArchivedSequence == latest })
	waitFor(t, "no lag", func() bool { s := a.Stats(); return s.LagSequences == 0 && s.LagBytes == 0 && s.LagSeconds == 0 })
	s := a.Stats()
	backlog := s.BatchBytes
	t.Logf("backlog of %d batch bytes (%d WAL bytes were reported behind): %d segments of at most %d", backlog, behind.LagBytes, s.Segments, segSize)
	if behind.LagBytes < backlog || behind.LagBytes > backlog+backlog/10 {
		t.Fatalf("%d WAL bytes reported behind the head, for %d bytes of batches: want between them and 10%% more", behind.LagBytes, backlog)
	}
	// By size, but for the very end: once less than a segment of WAL is
	// left to read, the reader counts as following the writer and seals by
	// age (archive's nearHead), so only the last segment's worth or two of
	// batches can go into segments sealed by age.
	if most := backlog/segSize + 1; s.Segments-s.SealedByAge > most || s.SealedByAgeBytes > 2*segSize {
		t.Fatalf("%d segments for %d bytes of backlog, %d of them sealed by age with %d bytes: want at most %d sealed by size, and at most %d bytes in the others",
			s.Segments, backlog, s.SealedByAge, s.SealedByAgeBytes, most, 2*segSize)
	}
	if s.Batches != num/perBatch {
		t.Fatalf("%d batches archived, want %d", s.Batches, num/perBatch)
	}
}

// firstReadSource checks, at the archiver's first read, what /status says
// at that moment: the reads of a restarted archiver begin only once it has
// looked at the database's head, so that it never reports a lag of 0
// while it starts on a backlog.
type firstReadSource struct {
	*FollowerSource
	a     atomic.Pointer[archive.Archiver]
	first atomic.Pointer[archive.Stats] // the Stats at the first Next
}

func (f *firstReadSource) Next() (segments.Batch, bool, error) {
	if a := f.a.Load(); a != nil && f.first.Load() == nil {
		s := a.Stats()
		f.first.Store(&s)
	}
	return f.FollowerSource.Next()
}

// TestArchiveLagKnownAtStart: an archiver that starts behind a backlog
// knows the database's head before it reads a batch (Stats.HeadKnown, the
// head at the database's last sequence, the lag the whole backlog); before
// its first look, HeadKnown is false.
func TestArchiveLagKnownAtStart(t *testing.T) {
	bench := requireTool(t, "db_bench")
	dir := filepath.Join(t.TempDir(), "db")
	common := []string{"--db=" + dir, "--wal_ttl_seconds=3600", "--value_size=100", "--compression_type=none",
		"--seed=7", "--threads=1", "--key_size=16"}
	if out, err := exec.Command(bench, append(common, "--benchmarks=fillrandom", "--num=2000")...).CombinedOutput(); err != nil {
		t.Fatalf("db_bench fillrandom: %v: %s", err, out)
	}
	store, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir() // the same writer both times
	run := func(src archive.Source, until func(*archive.Archiver) bool) *archive.Archiver {
		a, err := archive.New(src, store, archive.Options{WorkDir: work, SegmentAge: time.Millisecond, Poll: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if s := a.Stats(); s.HeadKnown {
			t.Fatalf("head known before the start: %+v", s)
		}
		if f, ok := src.(*firstReadSource); ok {
			f.a.Store(a)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		err = nil
		waitFor(t, "the archiver", func() bool {
			select {
			case err = <-done:
				return true
			default:
				return until(a)
			}
		})
		cancel()
		if err == nil {
			err = <-done
		}
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	fs, err := NewFollowerSource(dir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	run(fs, func(a *archive.Archiver) bool { return a.Stats().ArchivedSequence == 2000 })
	fs.Close()

	if out, err := exec.Command(bench, append(common, "--benchmarks=overwrite", "--use_existing_db=1", "--num=5000")...).CombinedOutput(); err != nil {
		t.Fatalf("db_bench overwrite: %v: %s", err, out)
	}
	const latest = 2000 + 5000
	fs, err = NewFollowerSource(dir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	src := &firstReadSource{FollowerSource: fs}
	a := run(src, func(a *archive.Archiver) bool { return a.Stats().ArchivedSequence == latest })
	s := src.first.Load()
	if s == nil {
		t.Fatal("the archiver never read")
	}
	if !s.HeadKnown || s.HeadSequence != latest || s.LagSequences != latest-2000 || s.LastSequence != 2000 {
		t.Fatalf("at the first read after the start: head known %v, head %d, lag %d, read up to %d; want true, %d, %d, 2000",
			s.HeadKnown, s.HeadSequence, s.LagSequences, s.LastSequence, latest, latest-2000)
	}
	if end := a.Stats(); !end.HeadKnown || end.LagSequences != 0 {
		t.Fatalf("at the end: %+v", end)
	}
}
