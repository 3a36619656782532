package standby

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/restore"
)

// TestTakeOver runs a standby in-process next to a sidecar-archived
// primary, promotes it through the Go API, takes over the promoted
// database (the program's own read-write handle) and writes through it
// while the archiver runs in-process on timeline 2. The old primary's
// archiver is fenced, and a restore of timeline 2 equals the database.
func TestTakeOver(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 30)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	sb := startStandbyOpts(t, store, Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond, WriterID: "in-process"})
	src.write(t, 100)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })

	if _, err := sb.sb.TakeOver(ctx, TakeoverOptions{Open: openProgramDB(t)}); err == nil {
		t.Fatal("TakeOver before a promotion succeeded")
	}
	res, err := sb.sb.Promote(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitStopped(t, sb); err != nil {
		t.Fatalf("Run after the promotion: %v", err)
	}
	if res.Timeline != 2 || res.Branch != src.latest() {
		t.Fatalf("promotion %+v, want timeline 2 at %d", res, src.latest())
	}
	select {
	case err := <-arch.done: // the old primary's archiver: fenced at its next check
		if !errors.Is(err, manifest.ErrFenced) {
			t.Fatalf("the old archiver stopped with %v, want fenced", err)
		}
		arch.cancel, arch.done = nil, nil
		arch.src.Close()
	case <-time.After(30 * time.Second):
		t.Fatal("the old archiver was not fenced")
	}

	p, err := sb.sb.TakeOver(ctx, TakeoverOptions{Open: openProgramDB(t),
		Archive: archive.Options{SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond, Logger: quiet()}})
	if err != nil {
		t.Fatal(err)
	}
	closeDB := sync.OnceFunc(p.DB.Close) // grocksdb crashes on a second Close
	defer closeDB()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := range 200 {
		if err := p.DB.Put(wo, fmt.Appendf(nil, "after-%03d", i), []byte("promoted")); err != nil {
			t.Fatal(err)
		}
	}
	last := p.DB.GetLatestSequenceNumber()
	waitFor(t, "the in-process archiver", func() bool { return p.Archiver().Stats().LastSequence == last })
	if err := p.Close(); err != nil {
		t.Fatalf("the in-process archiver: %v", err)
	}
	if tl := p.Archiver().Timeline(); tl != 2 {
		t.Fatalf("archived timeline %d, want 2", tl)
	}
	closeDB()
	want, seq := testdb.Digest(t, dir)
	if seq != last {
		t.Fatalf("the database reopens at %d, want %d", seq, last)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	rres, err := restore.Run(ctx, store, restore.Options{Dir: restored, Timeline: 2, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	got, gseq := testdb.Digest(t, restored)
	if rres.Timeline != 2 || gseq != last || got.Diff(want) != "" {
		t.Fatalf("restore of timeline 2 at %d (%d): %s", gseq, rres.Sequence, got.Diff(want))
	}
}

// openProgramDB returns an Open that opens dir as a program would, with WAL
// retention. The options are released when the test ends, after the
// database's close.
func openProgramDB(t *testing.T) func(dir string) (*grocksdb.DB, error) {
	return func(dir string) (*grocksdb.DB, error) {
		opts := grocksdb.NewDefaultOptions()
		opts.SetWALTtlSeconds(3600)
		t.Cleanup(opts.Destroy)
		return grocksdb.OpenDb(opts, dir)
	}
}
