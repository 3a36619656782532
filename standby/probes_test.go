package standby

import (
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestProbes: GET /healthz answers 200 and GET /readyz 200 only while the
// standby follows within ReadyLag (or was promoted), 503 with the reason
// otherwise, both without the token; GET /status answers 503 once the
// standby failed, and still needs the token.
func TestProbes(t *testing.T) {
	store, _ := fileStore(t)
	sb, err := New(store, Options{Dir: filepath.Join(t.TempDir(), "standby"), ReadyLag: time.Minute, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler("tok"))
	defer srv.Close()
	get := func(path string, token bool) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if token {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, c := range []struct {
		state       State
		lag         float64
		err, reason string
		ready       int
		status      int
	}{
		{Bootstrapping, 0, "", "", 503, 200},
		{Following, 1, "", "", 200, 200},
		{Following, 120, "", "", 503, 200},
		{Ended, 0, "", "timeline 1 ended at 9", 503, 200},
		{Failed, 0, "segment x: corrupt", "", 503, 503},
		{Promoted, 0, "", "", 200, 200},
	} {
		sb.update(func(st *Status) { st.State, st.LagSeconds, st.Error, st.Reason = c.state, c.lag, c.err, c.reason })
		if code, body := get("/healthz", false); code != 200 || strings.TrimSpace(body) != "ok" {
			t.Errorf("%s: /healthz %d %q", c.state, code, body)
		}
		code, body := get("/readyz", false)
		if code != c.ready || !strings.Contains(body, `"state":"`+string(c.state)+`"`) {
			t.Errorf("%s, lag %vs: /readyz %d %s, want %d", c.state, c.lag, code, body, c.ready)
		}
		for _, want := range []string{c.err, c.reason} {
			if want != "" && !strings.Contains(body, want) {
				t.Errorf("%s: /readyz does not say why: %s", c.state, body)
			}
		}
		if c.lag > 60 && !strings.Contains(body, "behind the archive") {
			t.Errorf("a lagging standby's /readyz does not say so: %s", body)
		}
		if code, body := get("/status", true); code != c.status {
			t.Errorf("%s: /status %d %s, want %d", c.state, code, body, c.status)
		}
		if code, _ := get("/status", false); code != http.StatusUnauthorized {
			t.Errorf("%s: /status without the token: %d, want 401", c.state, code)
		}
	}
}
