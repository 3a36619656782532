package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// slowdown measures how much the archiver slows its writer: db_bench
// overwrite (fillrandom's random writes on an existing database: fillrandom
// itself deletes the database first, which no sidecar survives) on two
// databases made alike, one followed by `rockstream archive` (its defaults:
// --nice 10, file:// store on the same disk) and one not, the order of the
// two swapped from run to run. The archiver follows the first database the
// whole time; after each run on it the harness waits until the archiver
// has that database's newest sequence, so that no work left over from it
// runs during the next measured run.
func (b *bench) slowdown(ctx context.Context) error {
	with, without := b.path("sd-with"), b.path("sd-without")
	for _, db := range []string{with, without} {
		if _, err := b.dbBench(ctx, db, "fillrandom", 200000, 0); err != nil {
			return err
		}
	}
	loc, err := b.fileLocation("sd")
	if err != nil {
		return err
	}
	const figure = "Writer slowdown (db_bench ops/s with the archiver)"
	s, err := b.startArchiver(ctx, "archiver-slowdown", with, loc, b.profile(figure, "the archiver following db_bench (all runs)"))
	if err != nil {
		return err
	}
	defer s.stop(time.Minute)
	var opsWith, opsWithout []float64
	for i := range b.cfg.Runs {
		b.logf("slowdown: run %d/%d", i+1, b.cfg.Runs)
		withRun := func() error {
			n, err := b.dbBench(ctx, with, "overwrite", 0, b.cfg.SlowdownTime)
			if err != nil {
				return err
			}
			opsWith = append(opsWith, n)
			seq, err := latestSeq(with)
			if err != nil {
				return err
			}
			return s.waitArchived(ctx, seq, 5*time.Minute)
		}
		withoutRun := func() error {
			n, err := b.dbBench(ctx, without, "overwrite", 0, b.cfg.SlowdownTime)
			opsWithout = append(opsWithout, n)
			return err
		}
		if err := inOrder(i%2 == 1, withoutRun, withRun); err != nil {
			return err
		}
	}
	if err := s.stop(time.Minute); err != nil {
		return err
	}
	b.add(report.Row{Figure: figure, Unit: "ops/s", Value: report.Of(opsWith),
		Baseline: "db_bench overwrite on a like database without the archiver, runs alternating", Base: report.Of(opsWithout),
		Ratio: report.Of(report.Ratios(opsWith, opsWithout)),
		Goals: []report.Goal{{OnRatio: true, Limit: 0.9, Text: "≥ 0.90×"}},
		Note: fmt.Sprintf("db_bench overwrite for %v per run, one thread, 400-byte values, batches of 4, no compression, "+
			"WAL kept (--wal_ttl_seconds 3600); the archiver uploads to a file:// folder on the same disk.", b.cfg.SlowdownTime)})
	return nil
}

// latestSeq opens the database in dir read-only and returns its latest
// sequence number.
func latestSeq(dir string) (uint64, error) {
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	db, err := grocksdb.OpenDbForReadOnly(opts, dir, false)
	if err != nil {
		return 0, fmt.Errorf("open %s read-only for its latest sequence: %w", dir, err)
	}
	defer db.Close()
	return db.GetLatestSequenceNumber(), nil
}

// dbBenchKeys is db_bench's key space (--num).
const dbBenchKeys = 1000000

// dbBench runs one db_bench benchmark on db and returns its ops/s: num
// writes, or for d when d is above zero.
func (b *bench) dbBench(ctx context.Context, db, benchmark string, num int, d time.Duration) (float64, error) {
	args := []string{"--benchmarks=" + benchmark, "--db=" + db, "--wal_ttl_seconds=3600", "--value_size=400", "--batch_size=4",
		"--compression_type=none", "--seed=7", "--threads=1", fmt.Sprintf("--num=%d", dbBenchKeys)}
	if benchmark != "fillrandom" {
		args = append(args, "--use_existing_db=1")
	}
	if d > 0 {
		args = append(args, fmt.Sprintf("--duration=%d", int(d.Seconds())), "--writes=1000000000")
	} else {
		args = append(args, fmt.Sprintf("--writes=%d", num))
	}
	out, err := exec.CommandContext(ctx, "db_bench", args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("db_bench %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return opsPerSec(string(out), benchmark)
}

// opsPerSec reads "NAME : X micros/op Y ops/sec; ..." from db_bench's
// output.
func opsPerSec(out, benchmark string) (float64, error) {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != benchmark {
			continue
		}
		for i := 1; i < len(f); i++ {
			if f[i] == "ops/sec;" || f[i] == "ops/sec" {
				return strconv.ParseFloat(f[i-1], 64)
			}
		}
	}
	return 0, fmt.Errorf("db_bench printed no %q line with ops/sec:\n%s", benchmark, out)
}
