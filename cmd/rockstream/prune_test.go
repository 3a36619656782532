package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/prune"
	"github.com/rockstream/rockstream/restore"
)

func TestPruneBadInput(t *testing.T) {
	archiveDir, _ := restoreArchive(t)
	bucket := "file://" + archiveDir
	// The rows of bad flags and stores are in TestBadInputEveryCommand
	// (badinput_test.go, pruneRows).
	// A manifest it cannot trust: exit 5, and nothing changed.
	if err := os.WriteFile(filepath.Join(archiveDir, manifest.ManifestKey), []byte(`{"format":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "prune", "--from", bucket, "--keep-last", "1"); code != exitCorrupt || !strings.Contains(errOut, "manifest.json") {
		t.Errorf("a bad manifest: exit %d: %s", code, errOut)
	}
	// The environment sets the policy too.
	t.Setenv("ROCKSTREAM_KEEP_LAST", "0")
	if code, _, errOut := runCLI(t, "prune", "--from", bucket); code != exitUsage || !strings.Contains(errOut, "--keep-last 0") {
		t.Errorf("ROCKSTREAM_KEEP_LAST=0: exit %d: %s", code, errOut)
	}
}

// TestPruneMinIO runs the archiver with a retention policy against a real
// MinIO while db_bench writes, taking a base every second and pruning to
// the last two; then `prune` itself, dry and for real. After each, verify
// finds nothing wrong and the latest restore has the database's content.
func TestPruneMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	url := "s3://" + srv.NewBucket(t) + "/db?endpoint=" + srv.Endpoint
	env := []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey}
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	dir := newDB(t)
	p := startCLI(t, env, "archive", "--db", dir, "--to", url, "--segment-age", "100ms", "--base-interval", "1s",
		"--retention-keep-last", "2", "--retention-grace", "0", "--retention-interval", "700ms")
	waitCmd(t, dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", "--num=40000", "--batch_size=4", "--benchmark_write_rate_limit=1000000"))
	time.Sleep(2 * time.Second)
	if code := p.stop(t); code != 0 {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	out := p.out.String()
	if !regexp.MustCompile(`prune done.* deleted=[1-9]`).MatchString(out) || strings.Contains(out, "prune failed") || strings.Count(out, "base archived") < 3 {
		t.Fatalf("the archiver's prunes deleted nothing, or failed:\n%s", out)
	}
	checkPruned(t, url, dir, 4)

	code, out, errOut := runCLI(t, "prune", "--from", url, "--keep-last", "1", "--grace", "0", "--dry-run")
	if code != 0 || !strings.Contains(out, "DRY RUN") || !strings.Contains(out, "Would go") || !strings.Contains(out, "Dropped    base 1/") {
		t.Fatalf("prune --dry-run: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "prune", "--from", url, "--keep-last", "1", "--grace", "0", "--json")
	var rep prune.Report
	// Its own record is swept at once (grace 0); a record that the
	// archiver's last prune left (an object it kept for now) may be swept too.
	jsonErr := json.Unmarshal([]byte(out), &rep)
	var deleted, deletedBytes int64
	for _, sw := range rep.Swept {
		deleted, deletedBytes = deleted+int64(sw.Deleted), deletedBytes+sw.DeletedBytes
	}
	if code != 0 || jsonErr != nil || len(rep.Dropped) == 0 || len(rep.Swept) == 0 || deleted == 0 {
		t.Fatalf("prune --json: exit %d\n%s%s", code, out, errOut)
	}
	checkPruned(t, url, dir, 1)
	t.Logf("the prune dropped %d bases and deleted %d objects (%s) in %d records", len(rep.Dropped), deleted, bytesText(deletedBytes), len(rep.Swept))
}

// checkPruned checks an archive after a prune: at most most bases, verify
// clean, and the latest restore equal to the database in dir.
func checkPruned(t *testing.T, url, dir string, most int) {
	t.Helper()
	store := openLocation(t, url)
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bases) > most || len(m.Bases) == 0 {
		t.Fatalf("%d bases, want 1 to %d", len(m.Bases), most)
	}
	if code, out, errOut := runCLI(t, "verify", "--from", url); code != 0 {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, restored); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	want, wantSeq := testdb.Digest(t, dir)
	got, seq := testdb.Digest(t, restored)
	if seq != wantSeq || restore.FormatDigest(got) != restore.FormatDigest(want) {
		t.Fatalf("restored sequence %d, the database %d; digests equal: %v", seq, wantSeq, restore.FormatDigest(got) == restore.FormatDigest(want))
	}
}

// TestPrintPruneDryRun: a dry run prints what the sweep of a due record
// would delete and keep, and says when this run's objects would go.
func TestPrintPruneDryRun(t *testing.T) {
	rep := &prune.Report{DryRun: true, Grace: "1h",
		Scheduled: []prune.Object{{Key: "segments/x", Kind: prune.KindSegment, Size: 10, Why: "old"}},
		Due: []prune.DueRecord{{Record: "prune/r1.json", DeleteBytes: 7, Gone: 1,
			Delete: []prune.Object{{Key: "sst/a.sst", Kind: prune.KindSST, Size: 7, Why: "dropped base"}},
			Kept:   []prune.Object{{Key: "sst/b.sst", Why: "named by bases/x/files.json"}}}}}
	var b strings.Builder
	if err := printPrune(&b, rep, false); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Would go   1 objects", "deleted by the first prune after the grace 1h",
		"Would sweep prune/r1.json (its grace is over): delete 1 objects (7 B), 1 already gone, 1 kept",
		"  sst/a.sst  7 B  dropped base", "  kept sst/b.sst: named by bases/x/files.json",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}
