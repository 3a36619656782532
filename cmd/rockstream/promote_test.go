package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rockstream/rockstream/internal/testdb"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

func putN(t *testing.T, db *grocksdb.DB, prefix string, n int) {
	t.Helper()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := range n {
		if err := db.Put(wo, fmt.Appendf(nil, "%s%04d", prefix, i), fmt.Appendf(nil, "v%d", i)); err != nil {
			t.Fatal(err)
		}
	}
}

// archivedTo is the last sequence that timeline tl of the archive holds.
func archivedTo(t *testing.T, s objstore.Store, tl uint32) uint64 {
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		return 0
	}
	last, _, err := catalog.LastSegment(context.Background(), s, m, tl, 0)
	if err != nil || last == nil {
		return 0
	}
	return last.Next - 1
}

// failIfExited fails the test when the process has exited.
func (p *proc) failIfExited(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.err:
		p.err <- err
		t.Fatalf("rockstream %q exited: %v\n%s", p.cmd.Args[1:], err, p.out)
	default:
	}
}

// writerEpoch is the epoch of the archive's writer, which must be w2.
func writerEpoch(t *testing.T, s objstore.Store) uint64 {
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil || m.Writer == nil || m.Writer.ID != "w2" {
		t.Fatalf("the archive's writer: %+v, %v; want w2", m.Writer, err)
	}
	return m.Writer.Epoch
}

func standbyApplied(addr string) (uint64, uint32) {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	var st struct {
		Applied  uint64 `json:"applied_sequence"`
		Timeline uint32 `json:"timeline"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	return st.Applied, st.Timeline
}

// TestPromoteStandby: a primary archived by 'rockstream archive', a
// 'rockstream standby' following it, 'rockstream promote --standby'. The old
// archiver exits 4 (fenced) while the old primary keeps writing; the
// promoted database, written by the application, is archived on timeline 2
// by the standby process; a restore of timeline 2 equals it and holds none
// of the old primary's later writes.
func TestPromoteStandby(t *testing.T) {
	root := t.TempDir()
	srcDir, sbDir := filepath.Join(root, "primary"), filepath.Join(root, "standby")
	bucket := "file://" + filepath.Join(root, "bucket")
	store := openLocation(t, bucket)
	primary := testdb.Open(t, srcDir)
	defer primary.Close()
	putN(t, primary, "a", 200)
	old := startCLI(t, nil, "archive", "--db", srcDir, "--to", bucket, "--segment-age", "50ms",
		"--fence-check", "200ms", "--writer-id", "old-primary", "--nice", "0")
	waitManifest(t, store)
	addr := freeAddr(t)
	sb := startCLI(t, nil, "standby", "--from", bucket, "--listen", addr, "--poll", "10ms",
		"--segment-age", "50ms", "--fence-check", "200ms", "--writer-id", "new-primary", sbDir)
	putN(t, primary, "b", 300)
	want := primary.GetLatestSequenceNumber()
	waitUntilT(t, "the standby to catch up", func() bool { a, _ := standbyApplied(addr); return a == want })

	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+addr)
	if code != exitOK || !strings.Contains(out, "promoted: timeline 2 branches from timeline 1 after sequence "+fmt.Sprint(want)) {
		t.Fatalf("promote: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	t.Logf("promote --standby:\n%s", out)

	// Split brain: the old primary keeps writing; its archiver is fenced.
	putN(t, primary, "old-after-promotion-", 100)
	if code := old.wait(t, 30*time.Second); code != exitFenced || !strings.Contains(old.out.String(), "fenced") {
		t.Fatalf("the old archiver: exit %d, want %d saying fenced\n%s", code, exitFenced, old.out)
	}

	// The application opens the promoted database and writes.
	promoted := testdb.Open(t, sbDir)
	putN(t, promoted, "new", 150)
	newSeq := promoted.GetLatestSequenceNumber()
	waitUntilT(t, "timeline 2 to be archived", func() bool { return archivedTo(t, store, 2) == newSeq })
	// The archiver that continues the promotion keeps the epoch that
	// promote reported: status and promote say the same.
	var printed uint64
	if i := strings.LastIndex(out, "epoch "); i < 0 {
		t.Fatalf("promote printed no epoch:\n%s", out)
	} else if _, err := fmt.Sscanf(out[i:], "epoch %d", &printed); err != nil {
		t.Fatalf("promote's epoch in %q: %v", out[i:], err)
	}
	if m, _, err := manifest.Load(context.Background(), store); err != nil || m.Writer == nil || m.Writer.Epoch != printed {
		t.Fatalf("after the promotion the manifest's writer is %+v (%v); promote printed epoch %d", m.Writer, err, printed)
	}
	code, out, _ = runCLI(t, "status", "--from", bucket, "--json")
	if code != exitOK || !strings.Contains(out, `"timeline": 2`) && !strings.Contains(out, `"timeline":2`) {
		t.Fatalf("status --json: exit %d\n%s", code, out)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("the standby turned archiver: exit %d\n%s", code, sb.out)
	}
	// The process restarts as configured (a reboot, a supervisor), with the
	// application still running and without --writer-id: it must not open
	// the database, nor say "rebuild", but archive it with the promotion's
	// writer ID.
	putN(t, promoted, "while-down", 50)
	sb = startCLI(t, nil, "standby", "--from", bucket, "--listen", addr, "--poll", "10ms",
		"--segment-age", "50ms", "--fence-check", "200ms", sbDir)
	putN(t, promoted, "after-restart", 50)
	newSeq = promoted.GetLatestSequenceNumber()
	waitUntilT(t, "timeline 2 to be archived after the restart", func() bool { sb.failIfExited(t); return archivedTo(t, store, 2) == newSeq })
	promoted.Close()
	if code := sb.stop(t); code != exitOK || !strings.Contains(sb.out.String(), "writer=new-primary") {
		t.Fatalf("the restarted standby: exit %d, want %d archiving as new-primary\n%s", code, exitOK, sb.out)
	}

	restored := filepath.Join(root, "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", bucket, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, _ := testdb.Digest(t, sbDir)
	if gotSeq != newSeq {
		t.Fatalf("restored timeline 2 ends at %d, the promoted database at %d", gotSeq, newSeq)
	}
	if d := got.Diff(wantD); d != "" {
		t.Fatalf("restored timeline 2 differs from the promoted database: %s", d)
	}
	// The old primary's later writes are not in timeline 2.
	ro := grocksdb.NewDefaultOptions()
	rdb, err := grocksdb.OpenDbForReadOnly(ro, restored, false)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	v, err := rdb.Get(grocksdb.NewDefaultReadOptions(), []byte("old-after-promotion-0000"))
	if err != nil || v.Exists() {
		t.Fatalf("the old primary's write after the promotion is in timeline 2 (%v)", err)
	}
	v.Free()
}

// TestPromoteStopped: 'promote --from URL DIR' on a stopped standby's
// folder, then 'archive --writer-id' (the command it prints) continues
// timeline 2; bad usage exits 2.
func TestPromoteStopped(t *testing.T) {
	root := t.TempDir()
	srcDir, sbDir := filepath.Join(root, "primary"), filepath.Join(root, "standby")
	bucket := "file://" + filepath.Join(root, "bucket")
	store := openLocation(t, bucket)
	primary := testdb.Open(t, srcDir)
	defer primary.Close()
	putN(t, primary, "a", 200)
	old := startCLI(t, nil, "archive", "--db", srcDir, "--to", bucket, "--segment-age", "50ms", "--fence-check", "200ms", "--nice", "0")
	waitManifest(t, store)
	putN(t, primary, "b", 100)
	want := primary.GetLatestSequenceNumber()
	waitUntilT(t, "the archive", func() bool { return archivedTo(t, store, 1) == want })
	addr := freeAddr(t)
	sb := startCLI(t, nil, "standby", "--from", bucket, "--listen", addr, "--poll", "10ms", sbDir)
	waitUntilT(t, "the standby to catch up", func() bool { a, _ := standbyApplied(addr); return a == want })
	if code, _, errOut := runCLI(t, "promote", "--from", bucket, sbDir); code != exitUsage || !strings.Contains(errOut, "open in process") {
		t.Fatalf("promote --from while the standby runs: exit %d, want %d saying it is open\n%s", code, exitUsage, errOut)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	for _, args := range [][]string{{"promote"}, {"promote", "--from", bucket}, {"promote", "--standby", "http://" + addr, sbDir}} {
		if code, _, errOut := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d\n%s", args, code, errOut)
		}
	}
	code, out, errOut := runCLI(t, "promote", "--from", bucket, "--writer-id", "w2", sbDir)
	if code != exitOK || !strings.Contains(out, "rockstream archive --db "+sbDir+" --to "+bucket+" --writer-id w2") {
		t.Fatalf("promote --from: exit %d\n%s%s", code, out, errOut)
	}
	if code := old.wait(t, 30*time.Second); code != exitFenced {
		t.Fatalf("the old archiver: exit %d\n%s", code, old.out)
	}
	if code, _, errOut := runCLI(t, "promote", "--from", bucket, sbDir); code != exitFenced {
		t.Fatalf("promote again: exit %d\n%s", code, errOut)
	}
	promoted := testdb.Open(t, sbDir)
	putN(t, promoted, "new", 50)
	newSeq := promoted.GetLatestSequenceNumber()
	arch := startCLI(t, nil, "archive", "--db", sbDir, "--to", bucket, "--writer-id", "w2", "--segment-age", "50ms", "--nice", "0")
	waitUntilT(t, "timeline 2 to be archived", func() bool { return archivedTo(t, store, 2) == newSeq })
	promoted.Close()
	if code := arch.stop(t); code != exitOK {
		t.Fatalf("archive of timeline 2: exit %d\n%s", code, arch.out)
	}
	// 'promote --from' recorded the promotion in the folder: a standby
	// started on it by mistake archives it as w2 rather than following.
	before := writerEpoch(t, store)
	sb = startCLI(t, nil, "standby", "--from", bucket, "--listen", "", "--poll", "10ms", "--segment-age", "50ms", sbDir)
	waitUntilT(t, "the standby to claim the archive as w2", func() bool { sb.failIfExited(t); return writerEpoch(t, store) > before })
	if code := sb.stop(t); code != exitOK || !strings.Contains(sb.out.String(), "writer=w2") {
		t.Fatalf("standby on a folder promoted by 'promote --from': exit %d, want %d archiving as w2\n%s", code, exitOK, sb.out)
	}
	restored := filepath.Join(root, "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", bucket, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, _ := testdb.Digest(t, sbDir)
	if gotSeq != newSeq || got.Diff(wantD) != "" {
		t.Fatalf("restored timeline 2 at %d (want %d): %s", gotSeq, newSeq, got.Diff(wantD))
	}
}
