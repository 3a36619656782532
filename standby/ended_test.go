package standby

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/promote"
)

// TestEndedWithoutChild: a promotion elsewhere that wrote its end marker
// and was cut short before its commit leaves the timeline ended with no
// child. A standby that follows it must say so (state "ended", the reason,
// a warning in its log, the timeline_ended metric) rather than look
// healthy, and follow the child once the promotion is run again.
func TestEndedWithoutChild(t *testing.T) {
	ctx := context.Background()
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 30)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	var logs syncBuffer
	sb := startStandbyOpts(t, store, Options{Dir: filepath.Join(t.TempDir(), "standby"), Poll: 10 * time.Millisecond,
		MaxPoll: 50 * time.Millisecond, ManifestCheck: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	arch.stop(t)

	// The promotion's first step only: the marker at the next key.
	at := src.latest()
	marker, err := promote.Marker(1, at, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	key := manifest.SegmentKey(1, at+1)
	if _, err := store.Put(ctx, key, bytes.NewReader(marker), int64(len(marker)), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("timeline 1 ended at %d, no child timeline committed yet", at)
	waitFor(t, "the ended state", func() bool { return sb.sb.Status().State == Ended })
	if st := sb.sb.Status(); !strings.Contains(st.Reason, want) || !strings.Contains(st.Reason, key) || st.Applied != at {
		t.Fatalf("status %+v, want the reason %q naming %s", st, want, key)
	}
	waitFor(t, "the warning", func() bool { return strings.Contains(logs.String(), want) })
	if m := scrape(t, sb.sb); !strings.Contains(m, "rockstream_standby_timeline_ended 1") {
		t.Fatalf("metrics lack timeline_ended 1:\n%s", m)
	}

	// The promotion runs again and commits: the standby follows timeline 2.
	res, err := promote.Promote(ctx, store, promote.Options{Timeline: 1, Applied: at, WriterID: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child timeline", func() bool { return sb.sb.Status().Timeline == res.Timeline })
	if st := sb.sb.Status(); st.State != Following || st.Reason != "" {
		t.Fatalf("after the commit: %+v", st)
	}
	if m := scrape(t, sb.sb); !strings.Contains(m, "rockstream_standby_timeline_ended 0") {
		t.Fatalf("metrics lack timeline_ended 0:\n%s", m)
	}
}

func scrape(t *testing.T, sb *Standby) string {
	t.Helper()
	srv := httptest.NewServer(sb.Handler(""))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
