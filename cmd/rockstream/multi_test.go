package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
)

// appDB is a database that the test writes as an application would.
type appDB struct {
	dir, bucket string
	db          *grocksdb.DB
}

func newAppDB(t *testing.T, name string) *appDB {
	root := t.TempDir()
	a := &appDB{dir: filepath.Join(root, name), bucket: filepath.Join(root, "bucket")}
	a.db = testdb.Open(t, a.dir)
	t.Cleanup(a.db.Close)
	putN(t, a.db, name, 50)
	return a
}

// httpGet returns the body of a GET, or "" when it fails.
func httpGet(url, token string) string {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// logLines are the JSON log lines of out with the message msg.
func logLines(out, msg string) []map[string]any {
	var got []map[string]any
	for line := range strings.Lines(out) {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == msg {
			got = append(got, m)
		}
	}
	return got
}

// hasLineFor reports a log line with msg for each database.
func hasLineFor(out, msg string, dbs ...string) bool {
	seen := map[string]bool{}
	for _, m := range logLines(out, msg) {
		seen[fmt.Sprint(m["database"])] = true
	}
	for _, d := range dbs {
		if !seen[d] {
			return false
		}
	}
	return true
}

// TestArchiveConfig archives two databases from one config file: both
// archives hold every batch, the metrics carry the database label, /status
// lists both, the summary line of each comes at the file's interval, in
// JSON as the file says.
func TestArchiveConfig(t *testing.T) {
	a, b := newAppDB(t, "a"), newAppDB(t, "b")
	addr := freeAddr(t)
	path := writeConfig(t, fmt.Sprintf(`
log-format: json
listen: %s
segment-age: 50ms
summary-interval: 200ms
databases:
  - name: a
    db: %s
    to: file://%s
  - name: b
    db: %s
    to: file://%s
    segment-age: 20ms
`, addr, a.dir, a.bucket, b.dir, b.bucket))
	p := startCLI(t, nil, "archive", "--config", path)
	putN(t, a.db, "a2-", 200)
	putN(t, b.db, "b2-", 300)
	waitUntilT(t, "both archives to catch up", func() bool {
		var st struct {
			Databases []struct {
				Database string
				Stats    struct {
					ArchivedSequence uint64 `json:"archived_sequence"`
				}
			}
		}
		json.Unmarshal([]byte(httpGet("http://"+addr+"/status", "")), &st)
		done := 0
		for _, d := range st.Databases {
			want := map[string]uint64{"a": a.db.GetLatestSequenceNumber(), "b": b.db.GetLatestSequenceNumber()}[d.Database]
			if d.Stats.ArchivedSequence == want {
				done++
			}
		}
		return done == 2
	})
	metrics := httpGet("http://"+addr+"/metrics", "")
	for _, want := range []string{`rockstream_archive_segments_total{database="a"}`, `rockstream_archive_archived_sequence{database="b"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics has no %s:\n%s", want, metrics)
		}
	}
	waitUntilT(t, "a summary line of each database", func() bool { return hasLineFor(p.out.String(), "archive summary", "a", "b") })
	if code := p.stop(t); code != exitOK {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.out)
	}
	checkArchive(t, mustFileStore(t, a.bucket), a.dir)
	checkArchive(t, mustFileStore(t, b.bucket), b.dir)
	if !hasLineFor(p.out.String(), "stopped; everything read is archived", "a", "b") {
		t.Fatalf("no clean stop of each database:\n%s", p.out)
	}
}

// TestArchiveConfigOneFails: a database whose folder is missing stops the
// process before anything starts (exit 2, naming it); a database fenced
// while running stops the others cleanly, and the process exits 4 naming it.
func TestArchiveConfigOneFails(t *testing.T) {
	a, b := newAppDB(t, "a"), newAppDB(t, "b")
	file := `
segment-age: 50ms
fence-check: 100ms
databases:
  - name: a
    db: %s
    to: file://%s
  - name: b
    db: %s
    to: file://%s
`
	missing := filepath.Join(t.TempDir(), "gone")
	code, _, errOut := runCLI(t, "archive", "--config", writeConfig(t, fmt.Sprintf(file, a.dir, a.bucket, missing, b.bucket)))
	if code != exitUsage || !strings.Contains(errOut, "database b") || !strings.Contains(errOut, missing) {
		t.Fatalf("a missing folder: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(a.bucket, manifest.ManifestKey)); err == nil {
		t.Fatal("database a was archived although the file names a missing folder")
	}

	p := startCLI(t, nil, "archive", "--config", writeConfig(t, fmt.Sprintf(file, a.dir, a.bucket, b.dir, b.bucket)))
	storeB := mustFileStore(t, b.bucket)
	waitManifest(t, storeB)
	waitManifest(t, mustFileStore(t, a.bucket))
	putN(t, a.db, "a2-", 100)
	_, _, err := manifest.Update(context.Background(), storeB, nil, func(m *manifest.Manifest) error {
		m.Writer = &manifest.Writer{Timeline: m.Writer.Timeline, Epoch: m.Writer.Epoch + 1, ID: "another", Host: "elsewhere", Since: time.Now()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	code = p.wait(t, 30*time.Second)
	out := p.out.String()
	if code != exitFenced || !strings.Contains(out, "database b") || !strings.Contains(out, "fenced") {
		t.Fatalf("database b fenced: exit %d, want %d naming it\n%s", code, exitFenced, out)
	}
	if !strings.Contains(out, "stopping the others") || !strings.Contains(out, "database=a") ||
		!strings.Contains(out, "stopped; everything read is archived") {
		t.Fatalf("database a was not stopped cleanly:\n%s", out)
	}
	checkArchive(t, mustFileStore(t, a.bucket), a.dir)
}

// TestStandbyConfig follows two archives from one config file, each
// standby with its own admin address, a token from the top level; the
// metrics carry the database label and each logs its summary line. A third
// database whose archive does not exist stops the others (cleanly: the
// process returns only when each has) and the process exits with its code.
func TestStandbyConfig(t *testing.T) {
	srcA, srcB := newSBSource(t), newSBSource(t)
	root := t.TempDir()
	addrA, addrB := freeAddr(t), freeAddr(t)
	file := fmt.Sprintf(`
log-format: json
poll: 20ms
summary-interval: 200ms
token: the-token
databases:
  - name: a
    from: file://%s
    dir: %s
    listen: %s
  - name: b
    from: file://%s
    dir: %s
    listen: %s
`, srcA.bucket, filepath.Join(root, "a"), addrA, srcB.bucket, filepath.Join(root, "b"), addrB)
	p := startCLI(t, nil, "standby", "--config", writeConfig(t, file))
	srcA.write(t, 30)
	srcB.write(t, 40)
	applied := func(addr string) uint64 {
		var st struct {
			Applied uint64 `json:"applied_sequence"`
		}
		json.Unmarshal([]byte(httpGet("http://"+addr+"/status", "the-token")), &st)
		return st.Applied
	}
	waitUntilT(t, "both standbys to catch up", func() bool {
		return applied(addrA) == srcA.db.GetLatestSequenceNumber() && applied(addrB) == srcB.db.GetLatestSequenceNumber()
	})
	if m := httpGet("http://"+addrB+"/metrics", "the-token"); !strings.Contains(m, `rockstream_standby_applied_sequence{database="b"}`) {
		t.Errorf("/metrics of b has no database label:\n%s", m)
	}
	if httpGet("http://"+addrA+"/status", "") != "unauthorized\n" {
		t.Error("the token of the file's top level is not required")
	}
	waitUntilT(t, "a summary line of each standby", func() bool { return hasLineFor(p.out.String(), "standby summary", "a", "b") })
	if code := p.stop(t); code != exitOK {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.out)
	}

	file += fmt.Sprintf("  - name: c\n    from: file://%s\n    dir: %s\n    listen: ''\n", t.TempDir(), filepath.Join(root, "c"))
	p = startCLI(t, nil, "standby", "--config", writeConfig(t, file))
	code := p.wait(t, 30*time.Second)
	out := p.out.String()
	if code != exitFailure || !strings.Contains(out, "database c") || !strings.Contains(out, "holds no rockstream archive") {
		t.Fatalf("a database without an archive: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "database a:") || strings.Contains(out, "database b:") || strings.Contains(out, "failed too") {
		t.Fatalf("the other standbys did not stop cleanly:\n%s", out)
	}
}
