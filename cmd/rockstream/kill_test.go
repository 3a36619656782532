package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
)

// The kill -9 part of the fault suite (docs/RELIABILITY.md): the archiver
// and the standby are killed with SIGKILL at random points while the
// database is written, and started again at once.

// TestArchiveKill9 archives a database that db_bench writes, killing the
// archiver at random points (12 kills; 100 with ROCKSTREAM_LONG=1) and
// starting it again. After each kill the archive must read (status) with
// no hole; its last archived sequence is a kill point. At the end the
// archive must hold every batch exactly once, byte for byte as RocksDB
// reads it from the WAL, and restores to every kill point, to both ends
// and to random sequences must equal the WAL oracle (ldb dump_wal).
func TestArchiveKill9(t *testing.T) {
	want := testenv.Scale(12, 100)
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	dir := newDB(t)
	bucket := "file://" + t.TempDir()
	store := openLocation(t, bucket)
	args := []string{"archive", "--db", dir, "--to", bucket, "--segment-age", "50ms", "--segment-size", "256KiB", "--base-interval", "2s"}
	writer := dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", "--num=100000", "--batch_size=4",
		"--benchmark_write_rate_limit=1000000", fmt.Sprintf("--duration=%d", 3*want))
	writing := make(chan struct{})
	go func() { writer.Wait(); close(writing) }()
	points := map[uint64]bool{}
	start := time.Now()
	for kills := 0; kills < want; kills++ {
		p := startCLI(t, nil, args...)
		select {
		case <-writing:
			t.Fatalf("db_bench stopped after %d kills of %d: %s", kills, want, writer.Stdout)
		case <-time.After(time.Duration(100+rng.Intn(700)) * time.Millisecond):
		}
		p.cmd.Process.Kill()
		p.wait(t, 10*time.Second)
		if last := killPoint(t, store); last > 0 {
			points[last] = true
		}
	}
	writer.Process.Kill() // under load to the end; RocksDB recovers the WAL up to its last whole batch
	<-writing
	t.Logf("seed %d: %d kill -9 in %v under db_bench load, %d distinct kill points", seed, want, time.Since(start).Round(time.Second), len(points))

	latest := dbLatest(t, dir)
	p := startArchiver(t, store, args...)
	waitUntilT(t, "the archive to catch up after the last kill", func() bool { return archivedTo(t, store, 1) == latest })
	if code := p.stop(t); code != 0 {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	n := checkArchive(t, store, dir)
	checkKillPoints(t, bucket, store, dir, points, rng)
	t.Logf("%d batches archived exactly once", n)
}

// startArchiver starts 'rockstream archive' and waits until it has
// claimed the archive (a new writer epoch in the manifest), so that a
// SIGTERM finds it running.
func startArchiver(t *testing.T, store objstore.Store, args ...string) *proc {
	t.Helper()
	var before uint64
	if m, _, err := manifest.Load(context.Background(), store); err == nil && m.Writer != nil {
		before = m.Writer.Epoch
	}
	p := startCLI(t, nil, args...)
	waitUntilT(t, "the archiver to claim the archive", func() bool {
		m, _, err := manifest.Load(context.Background(), store)
		return err == nil && m.Writer != nil && m.Writer.Epoch > before
	})
	return p
}

// killPoint checks that the archive reads after a kill, with no hole, and
// returns the last sequence it holds (0 before the first segment).
func killPoint(t *testing.T, store objstore.Store) uint64 {
	t.Helper()
	st, err := catalog.ReadStatus(context.Background(), store)
	if errors.Is(err, manifest.ErrNoArchive) {
		return 0 // killed before it created the archive
	}
	if err != nil {
		t.Fatalf("after a kill -9 the archive does not read: %v", err)
	}
	if len(st.Timelines) != 1 || len(st.Timelines[0].Holes) != 0 {
		t.Fatalf("after a kill -9: timelines %+v", st.Timelines)
	}
	return st.Timelines[0].LastSequence
}

// checkKillPoints restores the archive to each kill point, the first base,
// the last sequence and random sequences, and compares each restore with
// the WAL oracle.
func checkKillPoints(t *testing.T, url string, store objstore.Store, dir string, points map[uint64]bool, rng *rand.Rand) {
	t.Helper()
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	first := slices.MinFunc(m.Bases, func(a, b manifest.Base) int { return compareSeq(a.Sequence, b.Sequence) }).Sequence
	latest := dbLatest(t, dir)
	targets := []uint64{first, latest}
	for p := range points {
		targets = append(targets, p)
	}
	for range testenv.Scale(3, 10) {
		targets = append(targets, first+uint64(rng.Int63n(int64(latest-first+1))))
	}
	states, batches, last := walOracle(t, dir, targets)
	if last != latest {
		t.Fatalf("the WAL oracle ends at %d, the database at %d", last, latest)
	}
	start := time.Now()
	for _, n := range slices.Sorted(slices.Values(targets)) {
		restoreMatches(t, url, n, states[n])
	}
	t.Logf("%d restores (%d kill points, %d bases) equal the WAL oracle (%d batches read by ldb dump_wal) in %v",
		len(targets), len(points), len(m.Bases), batches, time.Since(start).Round(time.Millisecond))
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// restoreMatches restores the archive at url to sequence n and compares
// the database with want.
func restoreMatches(t *testing.T, url string, n uint64, want oracleState) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	code, out, errOut := runCLI(t, "--log-level", "warn", "restore", "--from", url, "--to-seq", fmt.Sprint(n), dir)
	if code != exitOK {
		t.Fatalf("restore --to-seq %d: exit %d\n%s%s", n, code, out, errOut)
	}
	got, seq := testdb.Digest(t, dir)
	if seq != want.Seq {
		t.Fatalf("restore --to-seq %d ends at %d; the oracle's last batch at or before it ends at %d", n, seq, want.Seq)
	}
	if d := got.Diff(want.Digest); d != "" {
		t.Fatalf("restore --to-seq %d differs from the WAL oracle: %s", n, d)
	}
	os.RemoveAll(dir)
}

// dbLatest is the latest sequence of the database in dir, read as a
// secondary instance.
func dbLatest(t *testing.T, dir string) uint64 {
	t.Helper()
	f, err := rocks.OpenFollower(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return f.LatestSequence()
}

// TestStandbyKill9 kills the standby process at random points (8 kills; 100
// with ROCKSTREAM_LONG=1) while the archive grows, and restarts it. The
// first kill lands inside the bootstrap (once its temporary folder is
// there): it must leave the standby's folder without a database. After
// each kill its database must open,
// never go back, and hold exactly the source's batches up to its sequence
// (compared with a model of the writes); at the end it must converge to the
// source exactly.
func TestStandbyKill9(t *testing.T) {
	want := testenv.Scale(8, 100)
	src := newSBSource(t)
	dir := filepath.Join(t.TempDir(), "standby")
	from := "file://" + src.bucket
	var stopWriting atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stopWriting.Load() {
			src.write(t, 5)
			time.Sleep(time.Millisecond)
		}
	})
	t.Cleanup(func() { stopWriting.Store(true); wg.Wait() }) // before the database closes
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewSource(seed))
	var last uint64
	for i := range want {
		p := startCLI(t, nil, "standby", "--from", from, "--listen=", "--poll", "10ms", dir)
		if i == 0 {
			for deadline := time.Now().Add(60 * time.Second); len(bootstrapFolders(t, dir)) == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("timed out waiting for the bootstrap's temporary folder")
				}
			}
		} else {
			time.Sleep(time.Duration(100+rng.Intn(400)) * time.Millisecond)
		}
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait(t, 30*time.Second)
		seq := openSeq(t, dir)
		if i == 0 && (seq != 0 || len(bootstrapFolders(t, dir)) == 0) {
			t.Fatalf("the first kill did not land inside the bootstrap (the standby is at %d, %d temporary folders): the test shows nothing about it",
				seq, len(bootstrapFolders(t, dir)))
		}
		if seq < last {
			t.Fatalf("kill %d: the standby went back from %d to %d", i, last, seq)
		}
		if seq > 0 {
			got, _ := testdb.Digest(t, dir)
			if d := got.Diff(src.modelAt(seq)); d != "" {
				t.Fatalf("kill %d: the standby at %d differs from the source's batches up to %d: %s", i, seq, seq, d)
			}
		}
		last = seq
	}
	stopWriting.Store(true)
	wg.Wait()
	src.stopArchiver(t)
	wantSeq := src.db.GetLatestSequenceNumber()
	left := bootstrapFolders(t, dir)
	t.Logf("seed %d: %d kill -9, each checked against the model; the standby was at %d at the last kill, the source at %d; %d bootstrap folders left by kills",
		seed, want, last, wantSeq, len(left))

	addr := freeAddr(t)
	p := startCLI(t, nil, "standby", "--from", from, "--listen", addr, "--poll", "10ms", dir)
	waitUntilT(t, "the standby to catch up", func() bool {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Applied uint64 `json:"applied_sequence"`
		}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Applied == wantSeq
	})
	if code := p.stop(t); code != exitOK {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.out)
	}
	if l := bootstrapFolders(t, dir); len(l) != 0 {
		t.Fatalf("the temporary folders of killed bootstraps are still there after a standby ran: %v", l)
	}
	got, gotSeq := testdb.Digest(t, dir)
	if gotSeq != wantSeq {
		t.Fatalf("the standby is at %d, the source at %d", gotSeq, wantSeq)
	}
	if d := got.Diff(src.digest(t)); d != "" {
		t.Fatalf("after %d kills the standby differs from the source: %s", want, d)
	}
}

// bootstrapFolders lists the temporary folders of the bootstraps into dir
// (restore's .NAME.restoring-* beside it).
func bootstrapFolders(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".restoring-*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
