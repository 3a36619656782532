package bench

import (
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testenv"
)

var lagFlag = flag.Bool("bench.lag", false, "also run the lag part (builds Litestream once, about 2 minutes, and takes a minute)")

// tiny is a configuration that runs every part in seconds.
func tiny(t *testing.T, only ...string) Config {
	t.Helper()
	testenv.RequireTool(t, "db_bench")
	testenv.RequireTool(t, "ldb")
	if _, err := miniotest.Binary(); err != nil {
		if miniotest.Required() {
			t.Fatalf("MinIO is required (CI=true): %v", err)
		}
		t.Skipf("SKIP (not a pass): no MinIO (scripts/setup.sh --test): %v", err)
	}
	bin := filepath.Join(t.TempDir(), "rockstream")
	build := exec.Command("go", "build", "-o", bin, "./cmd/rockstream")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build rockstream: %v\n%s", err, out)
	}
	return Config{Runs: 2, Binary: bin, WorkDir: t.TempDir(), Command: "go test", Only: only,
		DBBytes: 8 << 20, SmallDBBytes: 2 << 20, WALBytes: 4 << 20, BacklogBytes: 8 << 20,
		SlowdownTime: time.Second, LagRates: []float64{1}, LagAges: []time.Duration{250 * time.Millisecond},
		LagPoll: 50 * time.Millisecond, LagWindow: 500 * time.Millisecond, LagWarmup: 300 * time.Millisecond, IdleWindow: time.Second}
}

// TestRunTiny runs every part but the lag one with tiny sizes and checks
// that each figure was measured and judged, and that nothing is left.
func TestRunTiny(t *testing.T) {
	cfg := tiny(t, "throughput", "slowdown", "base", "restore", "encryption")
	doc, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{"Archive throughput, file://", "Archive throughput, MinIO", "Segment PUTs per GiB of WAL",
		"Peak RSS, archiver catching up", "Writer slowdown (db_bench ops/s with the archiver)", "Base upload, file://",
		"Incremental base after 5% of keys change", restoreBaseFigure, "Restore of the base and the WAL, MinIO", replayFigure, "Peak RSS, restore",
		"Archive throughput, MinIO, encrypted", "Latest restore, MinIO, encrypted"}
	checkRows(t, doc, want)
	for _, r := range doc.Rows {
		if r.Figure == replayFigure && r.Base.N != cfg.Runs {
			t.Errorf("%s: the write rate was measured %d times in %d runs", r.Figure, r.Base.N, cfg.Runs)
		}
	}
	left, _ := os.ReadDir(cfg.WorkDir)
	if len(left) != 0 {
		t.Fatalf("the work folder holds %d entries after the run", len(left))
	}
	md := doc.Markdown()
	for _, s := range []string{"## Figures", "## Data", "## How the figures are taken", "| CPU |", "shrinks them"} {
		if !strings.Contains(md, s) {
			t.Errorf("the report lacks %q", s)
		}
	}
}

// TestRunLag runs the lag part with tiny windows, Litestream included:
// go test ./internal/bench/ -run TestRunLag -bench.lag
func TestRunLag(t *testing.T) {
	if !*lagFlag {
		t.Skip("the lag part runs with -bench.lag (it builds Litestream once)")
	}
	doc, err := Run(context.Background(), tiny(t, "lag"))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkRows(t, doc, []string{lagFigure(250*time.Millisecond, "p50", 1), lagFigure(250*time.Millisecond, "p99", 1),
		"Archiver PUT + LIST per idle hour", "Standby requests per idle hour", "Peak RSS, archiver following the lag writer", "Peak RSS, standby"})
	for _, r := range doc.Rows {
		if strings.HasPrefix(r.Figure, "Lag") && r.Base.N == 0 {
			t.Errorf("%s: Litestream was not measured: %s", r.Figure, r.Note)
		}
	}
}

// TestRunStream runs the stream part with tiny windows, without
// Litestream (its rows say it was not measured): the streaming standby's
// lag against the bucket-only one, and the writer's slowdown with three
// streaming standbys.
func TestRunStream(t *testing.T) {
	cfg := tiny(t, "stream")
	cfg.NoLitestream = true
	doc, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	age := 250 * time.Millisecond
	p99 := streamLagFigure(age, "p99", 1)
	checkRows(t, doc, []string{streamLagFigure(age, "p50", 1), p99, p99 + ", against Litestream",
		"Writer slowdown with three streaming standbys (db_bench ops/s)", "Writer slowdown with three streaming standbys, against the archiver alone"})
	for _, r := range doc.Rows {
		switch {
		case r.Figure == p99 && (r.Verdict == report.NotMeasured || r.Base.N == 0):
			t.Errorf("%s: %s, baseline of %d runs: %s", r.Figure, r.Verdict, r.Base.N, r.Note)
		case strings.HasSuffix(r.Figure, "against Litestream") && !strings.Contains(r.Note, "Litestream not measured"):
			t.Errorf("%s: Litestream was left out, but the note says %q", r.Figure, r.Note)
		case strings.HasPrefix(r.Figure, "Writer slowdown") && r.Base.N != cfg.Runs:
			t.Errorf("%s: %d baseline runs, want %d", r.Figure, r.Base.N, cfg.Runs)
		}
	}
	if left, _ := os.ReadDir(cfg.WorkDir); len(left) != 0 {
		t.Fatalf("the work folder holds %d entries after the run", len(left))
	}
}

// TestRunCanceled checks that a run canceled in the middle of a group
// (while the archiver runs) fails, stops its processes and removes its
// folder. It cancels when the run reports that it is archiving, not after
// a time: a fast machine finishes a tiny run in seconds.
func TestRunCanceled(t *testing.T) {
	cfg := tiny(t, "restore")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var log strings.Builder
	cfg.Log = cancelOn{w: &log, marker: "archiving it", cancel: cancel}
	if _, err := Run(ctx, cfg); err == nil {
		t.Fatalf("a run canceled while archiving succeeded; its log:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "archiving it") {
		t.Fatalf("the run never reached the point where it is canceled; its log:\n%s", log.String())
	}
	left, _ := os.ReadDir(cfg.WorkDir)
	if len(left) != 0 {
		t.Fatalf("the work folder holds %d entries after a canceled run", len(left))
	}
}

// cancelOn writes to w and calls cancel once a write holds marker.
type cancelOn struct {
	w      io.Writer
	marker string
	cancel context.CancelFunc
}

func (c cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.marker) {
		c.cancel()
	}
	return c.w.Write(p)
}

func checkRows(t *testing.T, doc *report.Doc, want []string) {
	t.Helper()
	got := map[string]report.Row{}
	for _, r := range doc.Rows {
		got[r.Figure] = r
	}
	for _, f := range want {
		r, ok := got[f]
		switch {
		case !ok:
			t.Errorf("no row %q", f)
		case r.Value.N == 0:
			t.Errorf("%s: no value", f)
		case r.Verdict == "":
			t.Errorf("%s: not judged", f)
		}
	}
}
