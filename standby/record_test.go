package standby

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/promote"
)

// TestUnrecordedTimeline: the bootstrap's timeline record arrives with the
// database in one rename. A folder without it (a bootstrap of an older
// version cut short between its rename and the record, or a database put
// there by hand) is followed on the current timeline while every history
// agrees up to its sequence, and refused with a clear message once a
// timeline branches before it, rather than followed on a guess.
func TestUnrecordedTimeline(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 30)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	record := filepath.Join(dir, timelineFile)
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	if tl, err := RecordedTimeline(dir, sb.sb.m); err != nil || tl != 1 {
		t.Fatalf("the bootstrap's record: timeline %d, %v", tl, err)
	}

	// One timeline: every history agrees, so it follows timeline 1.
	os.Remove(record)
	src.write(t, 30)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	sb = startStandby(t, store, dir, 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	checkDB(t, dir, src)

	// A promotion elsewhere branched timeline 2 from 1 before the standby's
	// sequence: following 2 from there would keep batches of 1 that are not
	// in its history. Refused.
	os.Remove(record)
	branch := src.latest() - 10
	if _, _, err := manifest.Update(ctx, store, nil, func(m *manifest.Manifest) error {
		tl, err := m.AddTimeline(1, branch, time.Now())
		m.Writer = &manifest.Writer{Timeline: tl.ID, Epoch: m.Writer.Epoch + 1, ID: "promoted", Host: "elsewhere", Since: time.Now()}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := waitStopped(t, startStandby(t, store, dir, 10*time.Millisecond))
	if !errors.Is(err, ErrRebuild) || !strings.Contains(err.Error(), timelineFile) || !strings.Contains(err.Error(), "timeline 2 branches") {
		t.Fatalf("want a refusal naming the missing record and the branch, got %v", err)
	}
	t.Logf("refused with: %v", err)
	if _, seq := testdb.Digest(t, dir); seq != src.latest() {
		t.Fatalf("the refusal changed the database: at %d, want %d", seq, src.latest())
	}
}

// TestUnrecordedBelowBranch: a folder without a record whose sequence is
// below the only branch point holds a state that every history shares. It
// must be followed on the timeline that holds its sequence (the parent) up
// to the branch point, then on the child, not polled on the child at a key
// that never comes.
func TestUnrecordedBelowBranch(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 30)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	below := src.latest()
	os.Remove(filepath.Join(dir, timelineFile))

	// Timeline 1 goes on, then is promoted at a later sequence: the source
	// becomes the writer of timeline 2 and writes on.
	src.write(t, 30)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	branch := src.latest()
	if _, err := promote.Promote(ctx, store, promote.Options{Timeline: 1, Applied: branch, WriterID: "test:" + src.dir}); err != nil {
		t.Fatal(err)
	}
	src.write(t, 30)
	arch = startArchiver(t, src.dir, store, 20*time.Millisecond)
	waitFor(t, "the archiver on timeline 2", func() bool { return arch.a.Stats().LastSequence == src.latest() })

	sb = startStandby(t, store, dir, 10*time.Millisecond)
	deadline := time.Now().Add(20 * time.Second)
	for sb.sb.Status().Applied != src.latest() {
		if time.Now().After(deadline) || sb.sb.Status().State == Failed {
			t.Fatalf("the standby without a record at %d (branch %d) did not reach timeline 2's %d: %+v",
				below, branch, src.latest(), sb.sb.Status())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	if tl, err := RecordedTimeline(dir, sb.sb.m); err != nil || tl != 2 {
		t.Fatalf("the record after following the branch: timeline %d, %v", tl, err)
	}
	checkDB(t, dir, src)
}
