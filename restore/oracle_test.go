package restore

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rockstream/rockstream/internal/testenv"
)

// restoreTo runs a restore of store into a new folder and returns the
// folder and the result.
func restoreTo(t *testing.T, a *archived, opts Options) (string, Result) {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "restored")
	}
	opts.Logger = quiet()
	res, err := Run(context.Background(), fileStore(t, a.bucket), opts)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return opts.Dir, res
}

func seqp(n uint64) *uint64 { return &n }

// checkAgainstModel compares a restored database with the model at seq.
func checkAgainstModel(t *testing.T, a *archived, dir string, seq uint64) {
	t.Helper()
	if d := diff(readContent(t, dir), state(a.log, a.names, seq)); d != "" {
		t.Fatalf("restored at %d: %s", seq, d)
	}
}

// TestRestoreOracle restores the shared archive to chosen and random
// targets and compares each result with the model of the source.
func TestRestoreOracle(t *testing.T) {
	a := sharedArchive(t)
	multi := multiOpBatch(t, a)
	targets := []struct {
		name string
		seq  uint64
		want uint64
	}{
		{"first base", a.bases[0], a.bases[0]},
		{"second base", a.bases[1], a.bases[1]},
		{"just after the first base", a.bases[0] + 1, batchEndingAtOrBefore(a.log, a.bases[0]+1)},
		{"inside a multi-operation batch", multi.seq + 1, multi.seq - 1},
		{"last sequence of a multi-operation batch", multi.last(), multi.last()},
		{"the last batch", a.latest, a.latest},
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		n := a.bases[0] + rng.Uint64N(a.latest-a.bases[0])
		targets = append(targets, struct {
			name string
			seq  uint64
			want uint64
		}{"random", n, batchEndingAtOrBefore(a.log, n)})
	}
	for _, c := range targets {
		dir, res := restoreTo(t, a, Options{ToSeq: seqp(c.seq)})
		if res.Sequence != c.want || res.Timeline != 1 {
			t.Fatalf("%s: restore to %d reached timeline %d sequence %d, want timeline 1 sequence %d", c.name, c.seq, res.Timeline, res.Sequence, c.want)
		}
		checkAgainstModel(t, a, dir, c.want)
		t.Logf("%s: to %d: base %d, %d segments, %d batches", c.name, c.seq, res.Base.Sequence, res.Segments, res.Batches)
	}
}

// multiOpBatch returns a batch of several operations after the first base
// whose previous batch ends after that base.
func multiOpBatch(t *testing.T, a *archived) modelBatch {
	t.Helper()
	for i, b := range a.log {
		if b.count >= 3 && i > 0 && a.log[i-1].last() > a.bases[0]+5 {
			return b
		}
	}
	t.Fatal("no multi-operation batch in the workload")
	return modelBatch{}
}

// TestRestoreLatestWithLdb restores the latest state without a target and
// checks it with ldb, an oracle independent of grocksdb and of this
// package: ldb scan of each column family equals the model, and ldb
// checkconsistency passes.
func TestRestoreLatestWithLdb(t *testing.T) {
	a := sharedArchive(t)
	dir, res := restoreTo(t, a, Options{})
	if res.Sequence != a.latest || res.Timeline != 1 {
		t.Fatalf("latest restore reached timeline %d sequence %d, want 1 and %d", res.Timeline, res.Sequence, a.latest)
	}
	if res.Base.Sequence != a.bases[1] {
		t.Fatalf("latest restore started from base %d, want the newest %d", res.Base.Sequence, a.bases[1])
	}
	if res.Time.IsZero() {
		t.Fatal("the result has no time")
	}
	ldb := testenv.RequireTool(t, "ldb")
	want := state(a.log, a.names, a.latest)
	keys := 0
	for _, cf := range a.names {
		got := runTool(t, ldb, "--db="+dir, "--column_family="+cf, "--hex", "scan")
		if got != ldbScan(want[cf]) {
			t.Fatalf("ldb scan of column family %q differs from the model:\n%.400s\nwant\n%.400s", cf, got, ldbScan(want[cf]))
		}
		keys += len(want[cf])
	}
	if keys == 0 {
		t.Fatal("the model is empty")
	}
	checkConsistency(t, dir)
}
