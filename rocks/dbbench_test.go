package rocks

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestFollowDBBench follows a database that another process (db_bench)
// writes, with no change to that process: every batch is read with no gap,
// and a checkpoint taken midway plus the batches after it equals the final
// database (by digest, and by ldb as an independent reader).
func TestFollowDBBench(t *testing.T) {
	bench := requireTool(t, "db_bench")
	const num, perBatch = 20000, 4
	dir := filepath.Join(t.TempDir(), "bench")
	cmd, stderr := startDBBench(t, bench, dir, num, perBatch)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	waitForDatabase(t, dir, exited, stderr)
	f := follow(t, dir)
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	var got []Batch
	cp, cpSeq, cpTaken := filepath.Join(t.TempDir(), "cp"), uint64(0), false
	for running := true; running; {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("db_bench: %v: %s", err, stderr)
			}
			running = false
		case <-time.After(20 * time.Millisecond):
		}
		if err := f.CatchUp(); err != nil {
			t.Fatal(err)
		}
		got = drain(t, u, got)
		if !cpTaken && len(got) > num/perBatch/3 {
			if cpSeq, err = f.Checkpoint(cp); err != nil {
				t.Fatal(err)
			}
			cpTaken = true
			t.Logf("checkpoint at seq %d while db_bench writes (follower at %d)", cpSeq, f.LatestSequence())
		}
	}
	if !cpTaken {
		t.Fatal("db_bench finished before a third of its batches was read: no checkpoint taken while it wrote")
	}
	checkDBBenchBatches(t, f, got, num, perBatch)
	t.Logf("%d wal iterators created over the run", u.opened)
	applyAll(t, cp, after(got, cpSeq), Options{})
	compareDigests(t, f, cp)
	compareWithLdb(t, dir, cp, []string{"default"})
}

func startDBBench(t *testing.T, bench, dir string, num, perBatch int) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, bench, "--benchmarks=fillrandom", "--db="+dir,
		"--num="+strconv.Itoa(num), "--batch_size="+strconv.Itoa(perBatch), "--wal_ttl_seconds=3600",
		"--write_buffer_size=262144", "--value_size=100", "--compression_type=none",
		"--benchmark_write_rate_limit=1500000", "--seed=1", "--threads=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, &stderr
}

// waitForDatabase waits until db_bench has created its database.
func waitForDatabase(t *testing.T, dir string, exited chan error, stderr *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); checkWritten(dir) != nil; {
		select {
		case err := <-exited:
			t.Fatalf("db_bench exited before creating %s: %v: %s", dir, err, stderr)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no database in %s after 30s", dir)
		}
	}
}

func checkDBBenchBatches(t *testing.T, f *Follower, got []Batch, num, perBatch int) {
	t.Helper()
	var ops uint64
	for _, b := range got {
		ops += uint64(b.Count)
	}
	if len(got) != num/perBatch || ops != uint64(num) || got[0].Seq != 1 || got[len(got)-1].Next() != f.LatestSequence()+1 {
		t.Fatalf("read %d batches of %d operations up to seq %d; want %d batches of %d up to %d",
			len(got), ops, got[len(got)-1].Next()-1, num/perBatch, num, f.LatestSequence())
	}
	if _, err := os.Stat(filepath.Join(f.dir, "archive")); err != nil {
		t.Fatalf("db_bench moved no WAL to archive/ (no WAL switch during the test): %v", err)
	}
	t.Logf("%d batches, %d operations, no gap", len(got), ops)
}

// after returns the batches after seq.
func after(batches []Batch, seq uint64) []Batch {
	for i, b := range batches {
		if b.Seq > seq {
			return batches[i:]
		}
	}
	return nil
}

// checkWritten says whether db_bench writes into dir: db_bench creates the
// database, then destroys and creates it again for fillrandom, so a
// database is only the final one once its WAL has data.
func checkWritten(dir string) error {
	paths, err := walFiles(dir)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.Size() > 0 {
			return checkDatabase(dir)
		}
	}
	return errors.New("no wal data yet")
}
