package standby

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

// TestPromoteClientGivesUp: a client of POST /promote that gives up while
// the promotion runs (here the end marker's PUT is slow) does not stop it
// half-way: the standby commits the new timeline, releases its database,
// and GET /status shows the outcome.
func TestPromoteClientGivesUp(t *testing.T) {
	inner, _ := fileStore(t)
	fs := faultstore.New(inner)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, inner, 20*time.Millisecond)
	sb := startStandbyOpts(t, fs, Options{Dir: filepath.Join(t.TempDir(), "standby"), Poll: 10 * time.Millisecond,
		MaxPoll: 50 * time.Millisecond, WriterID: "promoted"})
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	arch.stop(t)
	want := src.latest()
	srv := httptest.NewServer(sb.sb.Handler(""))
	defer srv.Close()

	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.SegmentKey(1, want+1), Delay: 500 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/promote", nil)
	req.Header.Set(PromoteHeader, "yes")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("the client was answered %s before its timeout: the promotion was not slow", resp.Status)
	}
	if st := getStatus(t, srv.URL); st.State != Promoting {
		t.Fatalf("right after the client gave up: state %s, want %s", st.State, Promoting)
	}
	if err := waitStopped(t, sb); err != nil {
		t.Fatalf("Run: %v", err)
	}
	st := getStatus(t, srv.URL)
	if st.State != Promoted || st.Promotion == nil || st.Promotion.Timeline != 2 || st.Promotion.Branch != want {
		t.Fatalf("status after the promotion %+v (promotion %+v)", st, st.Promotion)
	}
	m, _, err := manifest.Load(context.Background(), inner)
	if err != nil || m.Writer == nil || m.Writer.Timeline != 2 || m.Writer.ID != "promoted" {
		t.Fatalf("manifest writer %+v, %v", m.Writer, err)
	}
}

func getStatus(t *testing.T, url string) Status {
	t.Helper()
	resp, err := http.Get(url + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}
