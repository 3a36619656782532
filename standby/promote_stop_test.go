package standby

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

// hookStore calls afterPut, when set, after each put.
type hookStore struct {
	objstore.Store
	afterPut atomic.Pointer[func(key string)]
}

func (h *hookStore) Put(ctx context.Context, key string, body io.Reader, size int64, o objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := h.Store.Put(ctx, key, body, size, o)
	if f := h.afterPut.Load(); f != nil {
		(*f)(key)
	}
	return info, err
}

// promoteThenStop starts a caught-up standby over a hook store, stops its
// Run (SIGTERM) right after the promotion wrote its end marker, and returns
// Promote's and Run's errors. failCommit makes every manifest put fail
// from then on.
func promoteThenStop(t *testing.T, failCommit bool) (store objstore.Store, sb *runningStandby, perr, runErr error) {
	ctx := context.Background()
	fs, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 30)
	arch := startArchiver(t, src.dir, fs, 20*time.Millisecond)
	faults := faultstore.New(fs)
	hs := &hookStore{Store: faults}
	sb = startStandbyOpts(t, hs, Options{Dir: filepath.Join(t.TempDir(), "standby"), Poll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond, WriterID: "sb"})
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	arch.stop(t)
	hook := func(key string) {
		if strings.HasPrefix(key, "segments/") {
			if failCommit {
				faults.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.ManifestKey, Err: errors.New("injected: the store went away")})
			}
			sb.cancel() // SIGTERM arrives now
		}
	}
	hs.afterPut.Store(&hook)
	_, perr = sb.sb.Promote(ctx)
	return fs, sb, perr, waitStopped(t, sb)
}

// TestPromoteSurvivesStop: a stop (SIGTERM) that comes while a promotion
// runs, after its end marker fenced the old timeline, does not cut it
// short: the new timeline is committed, and Run returns nil, promoted.
func TestPromoteSurvivesStop(t *testing.T) {
	store, sb, perr, err := promoteThenStop(t, false)
	if perr != nil || err != nil {
		t.Fatalf("Promote: %v; Run: %v; want both nil", perr, err)
	}
	m, _, lerr := manifest.Load(context.Background(), store)
	if lerr != nil || len(m.Timelines) != 2 || m.Writer == nil || m.Writer.ID != "sb" {
		t.Fatalf("the manifest after the promotion: %+v, %v; want timeline 2 with the writer sb", m, lerr)
	}
	if st := sb.sb.Status(); st.State != Promoted || st.Timeline != 2 {
		t.Fatalf("status %+v, want promoted on timeline 2", st)
	}
}

// TestPromoteCutShortFailsRun: when a promotion that a stop interrupted
// fails after its marker (the store goes away before the commit), Run
// does not return nil as after a clean stop: the old timeline is fenced
// with no child, and the error says so.
func TestPromoteCutShortFailsRun(t *testing.T) {
	store, sb, perr, err := promoteThenStop(t, true)
	if perr == nil {
		t.Fatal("Promote succeeded, want the injected commit failure")
	}
	if err == nil || !strings.Contains(err.Error(), "promot") || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("Run: %v, want an error that names the promotion cut short", err)
	}
	t.Logf("Run: %v", err)
	if m, _, _ := manifest.Load(context.Background(), store); len(m.Timelines) != 1 {
		t.Fatalf("%d timelines, want the commit not to have happened", len(m.Timelines))
	}
	if st := sb.sb.Status(); st.State != Failed {
		t.Fatalf("state %s, want failed", st.State)
	}
}
