package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/objstore/s3store"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// The test binary doubles as the rockstream binary: with
// ROCKSTREAM_TEST_MAIN=1 its TestMain runs the command line instead of the
// tests, so end-to-end tests start real processes (and kill -9 them)
// without building anything.
func init() {
	if os.Getenv("ROCKSTREAM_TEST_MAIN") == "1" {
		os.Exit(run(append([]string{"rockstream"}, os.Args[1:]...), os.Stdout, os.Stderr))
	}
}

// proc is a rockstream process.
type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
	err chan error
}

func startCLI(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	return startCLIIn(t, "", env, args...)
}

// startCLIIn is startCLI with the working folder dir ("" for the test's).
func startCLIIn(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "ROCKSTREAM_TEST_MAIN=1"), env...)
	p := &proc{cmd: cmd, out: new(bytes.Buffer), err: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	return p
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t, time.Minute)
}

func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.err:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("rockstream %q still runs after %v:\n%s", p.cmd.Args[1:], d, p.out)
		return -1
	}
}

// dbBench runs db_bench on dir with args and fails the test if it fails.
func dbBench(t *testing.T, dir string, args ...string) *exec.Cmd {
	t.Helper()
	bench := testenv.RequireTool(t, "db_bench")
	cmd := exec.Command(bench, append([]string{"--db=" + dir, "--wal_ttl_seconds=3600", "--value_size=100",
		"--compression_type=none", "--write_buffer_size=1048576", "--seed=42"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd
}

func waitCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("%s: %v: %s", cmd.Args[0], err, cmd.Stdout)
	}
}

// newDB makes a RocksDB database with db_bench, with WAL retention.
func newDB(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "db")
	waitCmd(t, dbBench(t, dir, "--benchmarks=fillrandom", "--num=5000"))
	return dir
}

// checkArchive checks that the archive holds every batch of the database
// in dir after the first base, byte for byte, with no gap and no
// duplicate, and ends at the database's latest sequence.
func checkArchive(t *testing.T, s objstore.Store, dir string) (batches int) {
	t.Helper()
	ctx := context.Background()
	c, err := catalog.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Manifest.Holes) > 0 {
		t.Fatalf("the archive has holes: %+v", c.Manifest.Holes)
	}
	base := c.Manifest.Bases[0]
	for _, b := range c.Manifest.Bases {
		base = minBase(base, b)
	}
	f, err := rocks.OpenFollower(dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wal, err := f.Updates(base.Sequence + 1)
	if err != nil {
		t.Fatal(err)
	}
	next := base.Sequence + 1
	for _, sg := range c.Segments[1] {
		if sg.First != next {
			t.Fatalf("segment %s starts at %d, the archive needs %d", sg.Key, sg.First, next)
		}
		for _, b := range readSegment(t, s, sg.Key) {
			w, ok, err := wal.Next()
			if err != nil || !ok {
				t.Fatalf("the WAL has no batch at %d (archive has one): %v", b.Seq, err)
			}
			if w.Seq != b.Seq || w.Count != b.Count || !bytes.Equal(w.Data, b.Data) {
				t.Fatalf("segment %s: batch at %d differs from the WAL's batch at %d", sg.Key, b.Seq, w.Seq)
			}
			next = b.Seq + uint64(b.Count)
			batches++
		}
	}
	if latest := f.LatestSequence(); next != latest+1 {
		t.Fatalf("the archive ends at %d, the database at %d", next-1, latest)
	}
	return batches
}

func minBase(a, b manifest.Base) manifest.Base {
	if b.Sequence < a.Sequence {
		return b
	}
	return a
}

func readSegment(t *testing.T, s objstore.Store, key string) []segments.Batch {
	t.Helper()
	rc, _, err := s.Get(context.Background(), key, objstore.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	r, err := segments.NewReader(rc, segments.ReaderOptions{})
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	var out []segments.Batch
	for {
		b, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		b.Data = bytes.Clone(b.Data)
		out = append(out, b)
	}
}

func openLocation(t *testing.T, url string) objstore.Store {
	t.Helper()
	s, err := location.Open(context.Background(), url, location.Options{S3: s3store.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestArchiveGap: the writer keeps no WAL history and flushes while the
// archiver is down, so the WAL it needs is gone. The archiver says so,
// records a hole, takes a new base, and status reports the hole; verify
// accepts the recorded hole, a restore into it is refused with the ranges,
// the latest restore equals the database, and a standby from before the
// gap stops saying it must be rebuilt.
func TestArchiveGap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	noRetention := []string{"--wal_ttl_seconds=0", "--write_buffer_size=65536"}
	waitCmd(t, dbBench(t, dir, append(noRetention, "--benchmarks=fillrandom", "--num=2000")...))
	bucket := "file://" + t.TempDir()
	args := []string{"archive", "--db", dir, "--to", bucket, "--segment-age", "50ms"}
	p := startCLI(t, nil, args...)
	time.Sleep(time.Second)
	if code := p.stop(t); code != 0 {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "WAL_ttl_seconds") {
		t.Fatalf("no warning about the writer's WAL retention:\n%s", p.out)
	}
	sbDir := filepath.Join(t.TempDir(), "standby") // a standby's state before the gap
	if code, _, errOut := runCLI(t, "restore", "--from", bucket, sbDir); code != exitOK {
		t.Fatalf("restore before the gap: %s", errOut)
	}
	waitCmd(t, dbBench(t, dir, append(noRetention, "--benchmarks=overwrite", "--use_existing_db=1", "--num=20000")...))
	p = startCLI(t, nil, args...)
	time.Sleep(2 * time.Second)
	if code := p.stop(t); code != 0 {
		t.Fatalf("archive after the gap: exit %d\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), "WAL needed next is gone") {
		t.Fatalf("the gap was not reported:\n%s", p.out)
	}
	holeBounds(t, bucket)
	gapAfterwards(t, bucket, dir, sbDir)
}

// holeBounds checks that status shows exactly the sequences that no
// restore reaches: from 2001 (db_bench's first run wrote 1..2000, all
// archived) to the one before the base taken after the gap, which is
// restorable.
func holeBounds(t *testing.T, bucket string) {
	t.Helper()
	m, _, err := manifest.Load(context.Background(), openLocation(t, bucket))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Holes) != 1 || len(m.Bases) != 2 {
		t.Fatalf("manifest: %d holes, %d bases; want 1 hole and the base after it", len(m.Holes), len(m.Bases))
	}
	after := max(m.Bases[0].Sequence, m.Bases[1].Sequence)
	code, out, _ := runCLI(t, "status", "--from", bucket)
	want := fmt.Sprintf("HOLE: sequences 2001..%d missing", after-1)
	if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, fmt.Sprintf("restorable: sequences %d..", after)) {
		t.Fatalf("status: exit %d, want %q beside a range from %d:\n%s", code, want, after, out)
	}
	// The BASE column names each base's folder in the archive.
	for _, b := range m.Bases {
		if row := strings.TrimSuffix(manifest.BasePrefix(b.Timeline, b.Sequence), "/") + " "; !strings.Contains(out, "\n"+row) {
			t.Fatalf("status: no base row starting with %q:\n%s", row, out)
		}
	}
	code, out, _ = runCLI(t, "status", "--from", bucket, "--json")
	var st struct {
		Timelines []struct {
			Holes []manifest.Hole `json:"holes"`
		} `json:"timelines"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || len(st.Timelines) != 1 || len(st.Timelines[0].Holes) != 1 {
		t.Fatalf("status --json: exit %d, %v\n%s", code, err, out)
	}
	if h := st.Timelines[0].Holes[0]; h.From != 2001 || h.To != after-1 {
		t.Fatalf("status --json: hole %d..%d, want 2001..%d", h.From, h.To, after-1)
	}
}

// gapAfterwards checks what the commands make of an archive with a hole
// from sequence 2001.
func gapAfterwards(t *testing.T, bucket, dir, sbDir string) {
	t.Helper()
	if code, out, errOut := runCLI(t, "verify", "--from", bucket); code != exitOK {
		t.Fatalf("verify of an archive with a recorded hole: exit %d\n%s%s", code, out, errOut)
	}
	inHole := filepath.Join(t.TempDir(), "in-hole")
	code, _, errOut := runCLI(t, "restore", "--from", bucket, "--to-seq", "2001", inHole)
	if code != exitUsage || !strings.Contains(errOut, "restorable: [") {
		t.Fatalf("restore into the hole: exit %d, want %d with the ranges\n%s", code, exitUsage, errOut)
	}
	latest := filepath.Join(t.TempDir(), "latest")
	if code, _, errOut := runCLI(t, "restore", "--from", bucket, latest); code != exitOK {
		t.Fatalf("restore after the hole: exit %d\n%s", code, errOut)
	}
	sameDatabase(t, latest, dir)
	p := startCLI(t, nil, "standby", "--from", bucket, "--listen=", sbDir)
	if code := p.wait(t, 30*time.Second); code != exitCorrupt || !strings.Contains(p.out.String(), "must be rebuilt") ||
		!strings.Contains(p.out.String(), "lacks sequences 2001 to") {
		t.Fatalf("a standby from before the gap: exit %d, want %d saying it must be rebuilt\n%s", code, exitCorrupt, p.out)
	}
}

// TestArchiveFenced: another writer takes the archive over (as a promotion
// does: a new timeline and writer in the manifest). The running archiver
// stops at its next manifest check, says "fenced" and exits 4; started
// again it refuses to write.
func TestArchiveFenced(t *testing.T) {
	dir := newDB(t)
	root := t.TempDir()
	bucket := "file://" + root
	args := []string{"archive", "--db", dir, "--to", bucket, "--fence-check", "100ms"}
	p := startCLI(t, nil, args...)
	store := openLocation(t, bucket)
	waitManifest(t, store)
	time.Sleep(300 * time.Millisecond)
	_, _, err := manifest.Update(context.Background(), store, nil, func(m *manifest.Manifest) error {
		tl, err := m.AddTimeline(m.Writer.Timeline, 5000, time.Now())
		if err != nil {
			return err
		}
		m.Writer = &manifest.Writer{Timeline: tl.ID, Epoch: m.Writer.Epoch + 1, ID: "standby", Host: "elsewhere", Since: time.Now()}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != exitFenced || !strings.Contains(p.out.String(), "fenced") {
		t.Fatalf("the fenced archiver: exit %d, want %d saying fenced\n%s", code, exitFenced, p.out)
	}
	again := startCLI(t, nil, args...)
	if code := again.wait(t, 30*time.Second); code != exitFenced || !strings.Contains(again.out.String(), "fenced") {
		t.Fatalf("the old primary's archiver started again: exit %d\n%s", code, again.out)
	}
	if segs, _ := filepath.Glob(filepath.Join(root, "segments", "00000002", "*")); len(segs) != 0 {
		t.Fatalf("the fenced archiver wrote into the new timeline: %q", segs)
	}
}

func waitManifest(t *testing.T, s objstore.Store) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, _, err := manifest.Load(context.Background(), s)
		if err == nil && len(m.Bases) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no archive with a base: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
