package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/rocks"
)

// TestFailoverMinIO is the whole failover through a real MinIO: db_bench
// writes the primary (with WAL retention), 'rockstream archive' runs as its
// sidecar, 'rockstream standby' follows the bucket and is killed with
// SIGKILL at random points meanwhile. Once the writer stops, the standby
// (read through a secondary instance, as a reader would) equals the
// primary. 'rockstream promote --standby' promotes it live; the old
// archiver is fenced; an application opens the promoted folder read-write
// and writes more, which the standby process archives on timeline 2; a
// restore of timeline 2 equals that database. ROCKSTREAM_LONG=1 writes
// longer and kills more often.
func TestFailoverMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	url := "s3://" + srv.NewBucket(t) + "/app?endpoint=" + srv.Endpoint
	env := []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey}
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	store := openLocation(t, url)
	num, kills := 100000, 3
	if os.Getenv("ROCKSTREAM_LONG") == "1" {
		num, kills = 400000, 12
	}
	dir := newDB(t)
	sbDir := filepath.Join(t.TempDir(), "standby")
	old := startCLI(t, env, "archive", "--db", dir, "--to", url, "--segment-age", "100ms",
		"--fence-check", "200ms", "--writer-id", "old-primary", "--nice", "0")
	waitManifest(t, store)
	writer := dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", fmt.Sprintf("--num=%d", num),
		"--batch_size=4", "--benchmark_write_rate_limit=2000000")
	writing := make(chan error, 1)
	go func() { writing <- writer.Wait() }()

	sbArgs := func(listen string) []string {
		return []string{"standby", "--from", url, "--listen", listen, "--poll", "20ms", "--segment-age", "100ms",
			"--fence-check", "200ms", "--writer-id", "new-primary", sbDir}
	}
	killStandby(t, env, sbArgs(""), kills, writing)
	if err := <-writing; err != nil {
		t.Fatalf("db_bench: %v\n%s", err, writer.Stdout)
	}

	// The writer stopped: the standby catches up and equals the primary.
	addr := freeAddr(t)
	sb := startCLI(t, env, sbArgs(addr)...)
	want := openSeq(t, dir)
	waitUntilT(t, "the archive", func() bool { return archivedTo(t, store, 1) == want })
	waitUntilT(t, "the standby to catch up", func() bool { a, _ := standbyApplied(addr); return a == want })
	primary, _ := testdb.Digest(t, dir)
	if d := secondaryDigest(t, sbDir).Diff(primary); d != "" {
		t.Fatalf("the standby, read through a secondary instance, differs from the primary: %s", d)
	}

	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+addr)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("timeline 2 branches from timeline 1 after sequence %d", want)) {
		t.Fatalf("promote: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	t.Logf("promote --standby through MinIO:\n%s", out)
	if code := old.wait(t, 30*time.Second); code != exitFenced {
		t.Fatalf("the old archiver: exit %d, want %d (fenced)\n%s", code, exitFenced, old.out)
	}

	// The application opens the promoted folder read-write and writes.
	app := testdb.Open(t, sbDir)
	putN(t, app, "after-promotion-", 2000)
	newSeq := app.GetLatestSequenceNumber()
	waitUntilT(t, "timeline 2 to be archived", func() bool { return archivedTo(t, store, 2) == newSeq })
	app.Close()
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("the standby turned archiver: exit %d\n%s", code, sb.out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, _ := testdb.Digest(t, sbDir)
	if gotSeq != newSeq || got.Diff(wantD) != "" {
		t.Fatalf("restore of timeline 2 at %d (the database at %d): %s", gotSeq, newSeq, got.Diff(wantD))
	}
	t.Logf("primary at %d after %d batches of db_bench; timeline 2 at %d, restored equal", want, num/4, newSeq)
}

// killStandby starts the standby and kills it with SIGKILL at random
// points, kills times or until the writer stops; after each kill the
// database opens and has not gone back.
func killStandby(t *testing.T, env, args []string, kills int, writing chan error) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill points from seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	var last uint64
	for i := range kills {
		p := startCLI(t, env, args...)
		select {
		case err := <-writing:
			writing <- err
			t.Fatalf("the writer stopped after %d kills: the test shows less than it should; give it more to write", i)
		case <-time.After(time.Duration(300+rng.IntN(900)) * time.Millisecond):
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait(t, 30*time.Second)
		seq := openSeq(t, args[len(args)-1])
		if seq < last {
			t.Fatalf("kill %d: the standby went back from %d to %d", i, last, seq)
		}
		t.Logf("kill -9 %d: the standby is at %d", i, seq)
		last = seq
	}
}

// secondaryDigest digests dir through a secondary instance.
func secondaryDigest(t *testing.T, dir string) rocks.Digest {
	t.Helper()
	f, err := rocks.OpenFollower(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
