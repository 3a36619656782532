package standby

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/promote"
)

// promoted runs a standby into a folder, promotes it (writer
// "in-process") and returns the folder and the promotion.
func promoted(t *testing.T) (store objstore.Store, dir string, res promote.Result) {
	t.Helper()
	store, _ = fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 30)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir = filepath.Join(t.TempDir(), "standby")
	sb := startStandbyOpts(t, store, Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond, WriterID: "in-process"})
	src.write(t, 50)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	arch.stop(t)
	res, err := sb.sb.Promote(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := waitStopped(t, sb); err != nil {
		t.Fatalf("Run after the promotion: %v", err)
	}
	return store, dir, res
}

// restartPromoted starts a standby again on the promoted folder: Run must
// return nil at once, without opening the database, and report the
// recorded promotion.
func restartPromoted(t *testing.T, store objstore.Store, dir string, want promote.Result) *runningStandby {
	t.Helper()
	sb := startStandbyOpts(t, store, Options{Dir: dir, Poll: 10 * time.Millisecond, WriterID: "another-id"})
	if err := waitStopped(t, sb); err != nil {
		t.Fatalf("a standby restarted on the promoted folder: %v, want nil and the recorded promotion", err)
	}
	got, ok := sb.sb.Promoted()
	if !ok || got.Timeline != want.Timeline || got.Branch != want.Branch || got.WriterID != want.WriterID || got.Epoch != want.Epoch {
		t.Fatalf("Promoted after a restart: %+v %v, want %+v", got, ok, want)
	}
	if st := sb.sb.Status(); st.State != Promoted || st.Timeline != want.Timeline {
		t.Fatalf("status after a restart: %+v", st)
	}
	return sb
}

// TestRestartAfterPromotion: the process of a promoted standby restarts (a
// reboot, a supervisor), as a standby again. While the application has the
// database open, and after it closed it, Run returns nil with the recorded
// promotion (it never opens the database, and never says "rebuild"), and
// TakeOver continues archiving timeline 2 with the promotion's writer.
func TestRestartAfterPromotion(t *testing.T) {
	store, dir, res := promoted(t)
	p, err := startedTakeOver(t, restartPromoted(t, store, dir, res).sb)
	if err != nil {
		t.Fatal(err)
	}
	closeDB := sync.OnceFunc(p.DB.Close)
	defer closeDB()
	putAfter(t, p.DB, "a", 50)
	last := p.DB.GetLatestSequenceNumber()
	waitArchived(t, p, last)

	// The application runs; the standby's process restarts.
	restartPromoted(t, store, dir, res)
	// A reboot: the application and the archiver stopped; the standby's
	// process starts first, then the program takes over again.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	closeDB()
	sb := restartPromoted(t, store, dir, res)
	if _, seq := testdb.Digest(t, dir); seq != last {
		t.Fatalf("the database is at %d after the restarts, want %d", seq, last)
	}
	p, err = startedTakeOver(t, sb.sb)
	if err != nil {
		t.Fatal(err)
	}
	defer p.DB.Close()
	defer p.Close()
	putAfter(t, p.DB, "b", 50)
	last = p.DB.GetLatestSequenceNumber()
	waitArchived(t, p, last)
	if tl := p.Archiver().Timeline(); tl != res.Timeline {
		t.Fatalf("archives timeline %d, want %d", tl, res.Timeline)
	}
}

// TestPromotionRecordLost: a crash between the promotion's commit and its
// record in the folder leaves the old record. The standby finds its own
// promotion in the manifest (its writer ID, on a child of its timeline
// that branches at its sequence) and records it; with another writer ID
// it follows the child as a standby that stands at the branch point.
func TestPromotionRecordLost(t *testing.T) {
	store, dir, res := promoted(t)
	if err := writeTimeline(dir, res.Parent); err != nil { // the record as before the promotion
		t.Fatal(err)
	}
	other := startStandbyOpts(t, store, Options{Dir: dir, Poll: 10 * time.Millisecond, WriterID: "another-id"})
	waitFor(t, "the standby on timeline 2", func() bool { st := other.sb.Status(); return st.State == Following && st.Timeline == res.Timeline })
	if err := other.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := writeTimeline(dir, res.Parent); err != nil {
		t.Fatal(err)
	}
	sb := startStandbyOpts(t, store, Options{Dir: dir, Poll: 10 * time.Millisecond, WriterID: res.WriterID})
	if err := waitStopped(t, sb); err != nil {
		t.Fatalf("Run: %v, want nil: its own promotion", err)
	}
	if got, ok := sb.sb.Promoted(); !ok || got.Timeline != res.Timeline || got.Branch != res.Branch {
		t.Fatalf("Promoted: %+v %v, want %+v", got, ok, res)
	}
	restartPromoted(t, store, dir, res) // recorded now
}

// startedTakeOver takes over sb's promoted database, archiving quickly.
func startedTakeOver(t *testing.T, sb *Standby) (*Primary, error) {
	return sb.TakeOver(context.Background(), TakeoverOptions{Open: openProgramDB(t),
		Archive: archive.Options{SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond, Logger: quiet()}})
}

func putAfter(t *testing.T, db *grocksdb.DB, prefix string, n int) {
	t.Helper()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := range n {
		if err := db.Put(wo, fmt.Appendf(nil, "%s-after-%03d", prefix, i), []byte("promoted")); err != nil {
			t.Fatal(err)
		}
	}
}

// waitArchived waits until p's archiver has archived last.
func waitArchived(t *testing.T, p *Primary, last uint64) {
	t.Helper()
	waitFor(t, "the in-process archiver", func() bool {
		if err := p.Err(); err != nil {
			t.Fatalf("the in-process archiver stopped: %v", err)
		}
		return p.Archiver().Stats().LastSequence == last
	})
}

// TestPromotedFolderFenced: a promoted folder whose timeline a later
// promotion fenced (a child branched from it) is refused with ErrRebuild,
// saying so, rather than reported as the primary.
func TestPromotedFolderFenced(t *testing.T) {
	store, dir, res := promoted(t)
	if _, _, err := manifest.Update(context.Background(), store, nil, func(m *manifest.Manifest) error {
		tl, err := m.AddTimeline(res.Timeline, res.Branch, time.Now())
		m.Writer = &manifest.Writer{Timeline: tl.ID, Epoch: m.Writer.Epoch + 1, ID: "later", Host: "elsewhere", Since: time.Now()}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	err := waitStopped(t, startStandbyOpts(t, store, Options{Dir: dir, Poll: 10 * time.Millisecond}))
	if !errors.Is(err, ErrRebuild) || !strings.Contains(err.Error(), "a later promotion fenced it") {
		t.Fatalf("Run: %v, want ErrRebuild saying a later promotion fenced it", err)
	}
}
