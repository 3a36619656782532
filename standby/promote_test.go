package standby

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/rocks"
)

// TestPromote promotes a following standby through POST /promote while the
// old archiver still runs: what the bucket held is applied, the old
// archiver is fenced, Run returns nil with the database closed, and the
// database holds exactly the source's batches up to the branch point.
func TestPromote(t *testing.T) {
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	sb, err := New(store, Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: time.Hour, ManifestCheck: time.Hour, WriterID: "promoted", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler(""))
	defer srv.Close()
	post := func() (*http.Response, error) {
		req, _ := http.NewRequest("POST", srv.URL+"/promote", nil)
		req.Header.Set(PromoteHeader, "yes")
		return http.DefaultClient.Do(req)
	}
	// A plain POST, as a web page can send cross-origin, is refused.
	if resp, err := http.Post(srv.URL+"/promote", "text/plain", nil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a POST /promote without %s: %v %v, want 403", PromoteHeader, resp, err)
	}
	done := make(chan error, 1)
	go func() { done <- sb.Run(t.Context()) }()
	waitFor(t, "the standby", func() bool { return sb.Status().State == Following })
	src.write(t, 40)
	want := src.latest()
	waitFor(t, "the upload", func() bool { return uploaded(t, store) == want })
	// The standby may not have applied the last segments yet: /promote
	// drains them first.
	resp, err := post()
	if err != nil {
		t.Fatal(err)
	}
	var res promote.Result
	err = json.NewDecoder(resp.Body).Decode(&res)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("/promote: %d %v", resp.StatusCode, err)
	}
	t.Logf("promoted: %+v", res)
	if res.Timeline != 2 || res.Parent != 1 || res.Branch != want || res.WriterID != "promoted" || res.Timings.Total <= 0 {
		t.Fatalf("result %+v, want branch %d", res, want)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the promotion")
	}
	if st := sb.Status(); st.State != Promoted || st.Timeline != 2 || st.Applied != want {
		t.Fatalf("status %+v", st)
	}
	if got, ok := sb.Promoted(); !ok || got.Branch != want {
		t.Fatalf("Promoted: %+v %v", got, ok)
	}
	// The database is released: it opens read-write, at the branch point.
	db, err := rocks.OpenWritable(dir, rocks.Options{})
	if err != nil {
		t.Fatalf("the promoted database does not open: %v", err)
	}
	got, err := db.Digest()
	seq := db.LatestSequence()
	db.Close()
	if err != nil || seq != want {
		t.Fatalf("the promoted database is at %d, want %d: %v", seq, want, err)
	}
	if d := got.Diff(src.digest(t)); d != "" {
		t.Fatalf("the promoted database differs from the source: %s", d)
	}
	// The old primary's archiver is fenced by its next upload.
	src.write(t, 5)
	select {
	case err := <-arch.done:
		arch.cancel, arch.done = nil, nil
		arch.src.Close()
		if !errors.Is(err, manifest.ErrFenced) {
			t.Fatalf("the old archiver: %v, want fenced", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the old archiver still runs")
	}
	// Once promoted, /promote says the standby does not follow.
	resp, err = post()
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/promote again: %d", resp.StatusCode)
	}
}

// uploaded is the last sequence that the bucket's timeline 1 holds.
func uploaded(t *testing.T, store objstore.Store) uint64 {
	m, _, err := manifest.Load(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	last, _, err := catalog.LastSegment(t.Context(), store, m, 1, 0)
	if err != nil || last == nil {
		return 0
	}
	return last.Next - 1
}

// TestPromoteRaceLost: two standbys follow timeline 1 and both are asked to
// promote; A wins. B either drains into A's timeline 2 (past A's end
// marker) or has just switched to it: either way it must refuse, saying
// that the timeline was already promoted, rather than promote timeline 2
// again and fence the node that has just become the primary.
func TestPromoteRaceLost(t *testing.T) {
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	startArchiver(t, src.dir, store, 20*time.Millisecond)
	var sbs [2]*runningStandby
	for i, id := range []string{"a", "b"} {
		sbs[i] = startStandbyOpts(t, store, Options{Dir: filepath.Join(t.TempDir(), id), Poll: 10 * time.Millisecond,
			MaxPoll: time.Hour, ManifestCheck: time.Hour, WriterID: id})
	}
	src.write(t, 40)
	want := src.latest()
	for _, sb := range sbs {
		waitFor(t, "the standbys", func() bool { return sb.sb.Status().Applied == want })
	}
	if _, err := sbs[0].sb.Promote(t.Context()); err != nil {
		t.Fatalf("promote a: %v", err)
	}
	res, err := sbs[1].sb.Promote(t.Context())
	if !errors.Is(err, manifest.ErrFenced) || !strings.Contains(err.Error(), "already promoted") {
		t.Fatalf("promote b after a: %+v, %v; want a refusal saying 'already promoted'", res, err)
	}
	m, _, err := manifest.Load(t.Context(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Timelines) != 2 || m.Writer == nil || m.Writer.ID != "a" || m.Writer.Timeline != 2 {
		t.Fatalf("timelines %+v, writer %+v; want timeline 2 written by a", m.Timelines, m.Writer)
	}
	if st := sbs[1].sb.Status(); st.State != Following || st.Timeline != 2 {
		t.Fatalf("b after its refusal: %+v, want following timeline 2", st)
	}
}
