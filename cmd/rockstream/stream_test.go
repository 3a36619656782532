package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/standby"
)

// streamStatus is the standby's /status, as these tests read it.
func sbStatus(t *testing.T, addr string) standby.Status {
	t.Helper()
	var st standby.Status
	json.Unmarshal([]byte(httpGet("http://"+addr+"/status", "")), &st)
	return st
}

// TestStreamFailover: a standby started with --primary applies the
// archiver's live stream, while the bucket holds nothing past the base
// (segments are sealed by size only: --segment-age 1h). Killed with -9,
// the archiver leaves the bucket without those batches: the promotion
// uploads them as timeline 1's next segment before its fence, so that a
// restore of timeline 2 holds every batch the standby applied.
func TestStreamFailover(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h", "--writer-id", "old")
	waitManifest(t, store)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", sbAddr, "--primary", "http://"+archAddr, "--poll", "20ms", "--writer-id", "new", sbDir)
	waitUntilT(t, "the standby to stream", func() bool {
		st := sbStatus(t, sbAddr)
		return st.Stream != nil && st.Stream.Connected
	})
	for i := range 5 {
		putN(t, app.db, fmt.Sprintf("s%d-", i), 200)
	}
	want := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the standby to apply the stream", func() bool { sb.failIfExited(t); return sbStatus(t, sbAddr).Applied == want })
	st := sbStatus(t, sbAddr)
	if st.Stream.Batches == 0 || st.Stream.Unarchived == 0 {
		t.Fatalf("the standby applied %d batches from the stream, %d of them not archived: %+v", st.Stream.Batches, st.Stream.Unarchived, st.Stream)
	}
	if got := archivedTo(t, store, 1); got >= want {
		t.Fatalf("the bucket holds timeline 1 up to %d already (the test needs it behind the stream, at %d)", got, want)
	}
	if !strings.Contains(httpGet("http://"+sbAddr+"/metrics", ""), "rockstream_standby_stream_connected 1") {
		t.Fatalf("/metrics does not show the stream connected")
	}

	// The primary dies: the archiver with it, before it uploaded them.
	arch.cmd.Process.Signal(syscall.SIGKILL)
	arch.wait(t, 30*time.Second)
	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+sbAddr)
	if code != exitOK || !strings.Contains(out, "by the live stream only") {
		t.Fatalf("promote: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	if got := archivedTo(t, store, 1); got != want {
		t.Fatalf("after the promotion the bucket holds timeline 1 up to %d, the standby applied %d", got, want)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, wantSeq := testdb.Digest(t, sbDir)
	if d := got.Diff(wantD); gotSeq != want || wantSeq != want || d != "" {
		t.Fatalf("restored timeline 2: sequence %d; the standby: %d; the writer acknowledged %d; %s", gotSeq, wantSeq, want, d)
	}
	if code, out, errOut := runCLI(t, "verify", "--from", url); code != exitOK {
		t.Fatalf("verify after the promotion: exit %d\n%s%s", code, out, errOut)
	}
}

// TestStreamPlannedFailover: the application stops, its archiver still
// runs: the promotion drains the stream first, so the standby holds every
// batch the writer acknowledged (RPO 0) though the bucket lacks them; the
// old archiver is then fenced (exit 4).
func TestStreamPlannedFailover(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h",
		"--writer-id", "old", "--fence-check", "200ms")
	waitManifest(t, store)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", sbAddr, "--primary", "http://"+archAddr, "--poll", "20ms", "--writer-id", "new", sbDir)
	waitUntilT(t, "the standby to stream", func() bool {
		st := sbStatus(t, sbAddr)
		return st.Stream != nil && st.Stream.Connected
	})
	putN(t, app.db, "last-", 500)
	want := app.db.GetLatestSequenceNumber()
	// No wait for the standby: the promotion's drain is what brings it up.
	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+sbAddr)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("after sequence %d;", want)) {
		t.Fatalf("promote: exit %d, want the branch at %d (every acknowledged write)\n%s%s\nstandby:\n%s", code, want, out, errOut, sb.out)
	}
	if code := arch.wait(t, 60*time.Second); code != exitFenced {
		t.Fatalf("the old archiver: exit %d, want %d\n%s", code, exitFenced, arch.out)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, _ := testdb.Digest(t, app.dir)
	if d := got.Diff(wantD); gotSeq != want || d != "" {
		t.Fatalf("restored timeline 2 at %d; the writer acknowledged %d; %s", gotSeq, want, d)
	}
}
