package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// TestArchiveBusyStart (issue 14, "busy starts"): the archiver is started
// as soon as db_bench has created its database and writes at full speed,
// with 64 KiB memtables and compactions, so that flushes and compactions
// delete SST and WAL files while the first base is taken. Before the file
// checkpoint, most such starts failed within a second ("checkpoint ...
// while link file ... .sst: No such file or directory (attempt 5)"). Every
// round must take its first base, follow the writer, stop with exit 0 and
// hold every batch after that base exactly once.
func TestArchiveBusyStart(t *testing.T) {
	for i := range testenv.Scale(3, 10) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir, w := startBusyWriter(t, "--level0_file_num_compaction_trigger=2", fmt.Sprintf("--seed=%d", 100+i))
			_, p, s, base := startBusyArchiver(t, dir)
			// The writer goes on at full speed while the archiver follows.
			waitUntilT(t, "the archive to follow the writer", func() bool { return archivedTo(t, s, 1) > base+20000 })
			w.Process.Kill()
			w.Wait()
			latest := dbLatest(t, dir)
			waitUntilT(t, "the archive to catch up", func() bool { return archivedTo(t, s, 1) == latest })
			if code := p.stop(t); code != exitOK {
				t.Fatalf("the archiver stopped with exit %d:\n%s", code, p.out.String())
			}
			if strings.Contains(p.out.String(), "attempt") {
				t.Errorf("the archiver retried something:\n%s", p.out.String())
			}
			n := checkArchive(t, s, dir)
			t.Logf("round %d: first base at %d while db_bench wrote; %d batches archived after it, up to %d", i, base, n, latest)
		})
	}
}

// TestArchiveNoRetentionFullSpeed (issue 14, "holes under load"): a writer
// that keeps no WAL history (WAL_ttl_seconds=0) and flushes every 64 KiB
// writes at full speed while the archiver follows. Whenever RocksDB deletes
// a WAL file before it is read, the archiver records the hole first, takes
// the base that ends it (a checkpoint that survives files deleted under
// it) and goes on; SIGTERM exits 0. Afterwards every recorded hole ends at
// a base, no two overlap, status shows exactly the missing sequences
// (never one a range restores), and the latest restore equals the
// database.
func TestArchiveNoRetentionFullSpeed(t *testing.T) {
	dir, w := startBusyWriter(t, "--wal_ttl_seconds=0", "--seed=7")
	bucket, p, s, base := startBusyArchiver(t, dir)
	// It keeps going through the gaps: three more bases (each ends a hole,
	// or is a periodic one), or segments well past the first base.
	waitUntilT(t, "the archive to keep going", func() bool {
		m, _, err := manifest.Load(context.Background(), s)
		return err == nil && (len(m.Bases) >= 4 || archivedTo(t, s, 1) > base+50000)
	})
	w.Process.Kill()
	w.Wait()
	latest := dbLatest(t, dir)
	waitUntilT(t, "the archive to reach the database's end", func() bool {
		m, _, err := manifest.Load(context.Background(), s)
		if err != nil {
			return false
		}
		for _, b := range m.Bases {
			if b.Sequence == latest {
				return true // the last batches were lost with a WAL file: a base holds them
			}
		}
		return archivedTo(t, s, 1) == latest
	})
	if code := p.stop(t); code != exitOK {
		t.Fatalf("the archiver stopped with exit %d:\n%s", code, p.out.String())
	}
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	bases := map[uint64]bool{}
	for _, b := range m.Bases {
		bases[b.Sequence] = true
	}
	for i, h := range m.Holes {
		if !bases[h.To] {
			t.Errorf("hole %d..%d ends at no base (bases %v)", h.From, h.To, m.Bases)
		}
		for _, g := range m.Holes[i+1:] {
			if h.From <= g.To && g.From <= h.To {
				t.Errorf("holes %d..%d and %d..%d overlap", h.From, h.To, g.From, g.To)
			}
		}
	}
	code, out, errOut := runCLI(t, "status", "--from", bucket, "--json")
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errOut)
	}
	var st struct {
		Timelines []struct {
			Ranges []struct{ From, To uint64 } `json:"restorable"`
			Holes  []struct{ From, To uint64 } `json:"holes"`
		} `json:"timelines"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, tl := range st.Timelines {
		for _, h := range tl.Holes {
			for _, r := range tl.Ranges {
				if h.From <= r.To && r.From <= h.To {
					t.Errorf("status shows %d..%d missing and %d..%d restorable", h.From, h.To, r.From, r.To)
				}
			}
		}
	}
	// The archive is whole: every gap between segments is a recorded hole.
	if code, out, errOut := runCLI(t, "verify", "--from", bucket); code != exitOK {
		t.Fatalf("verify: exit %d: %s%s\narchiver:\n%s", code, out, errOut, p.out.String())
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, _, errOut := runCLI(t, "restore", "--from", bucket, restored); code != exitOK {
		t.Fatalf("restore: exit %d: %s", code, errOut)
	}
	sameDatabase(t, restored, dir)
	t.Logf("%d holes recorded, %d bases; first base at %d, database at %d", len(m.Holes), len(m.Bases), base, latest)
}

// startBusyWriter starts db_bench fillrandom without end, with 64 KiB
// memtables and compactions (args add to or override that), and returns
// once it has created its database and options (a condition, not a sleep).
func startBusyWriter(t *testing.T, args ...string) (string, *exec.Cmd) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "db")
	w := dbBench(t, dir, append([]string{"--benchmarks=fillrandom", "--num=100000000", "--write_buffer_size=65536",
		"--max_background_jobs=2"}, args...)...)
	// db_bench opens the database once, then destroys it and creates it
	// again for fillrandom: an archiver started in between would see its
	// database replaced. Only the second one is written to, so a WAL file
	// with bytes in it is the database that db_bench goes on writing.
	waitUntilT(t, "db_bench to write its database", func() bool {
		logs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		for _, l := range logs {
			if fi, err := os.Stat(l); err == nil && fi.Size() > 0 {
				return true
			}
		}
		return false
	})
	return dir, w
}

// startBusyArchiver starts 'rockstream archive' of dir into a new file
// archive and waits for its first base; it returns the archive's URL, the
// process, the store and the base's sequence.
func startBusyArchiver(t *testing.T, dir string) (string, *proc, objstore.Store, uint64) {
	t.Helper()
	bucket := "file://" + t.TempDir()
	p := startCLI(t, nil, "archive", "--db", dir, "--to", bucket, "--segment-age", "50ms")
	s := openLocation(t, bucket)
	var base uint64
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if m, _, err := manifest.Load(context.Background(), s); err == nil && len(m.Bases) > 0 {
			base = m.Bases[0].Sequence
			break
		}
		select {
		case err := <-p.err:
			p.err <- err
			t.Fatalf("the archiver exited (%v) before its first base:\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the first base; the archiver printed:\n%s", p.out.String())
		}
	}
	return bucket, p, s, base
}
