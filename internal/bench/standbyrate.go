package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// sbShapes are the writes of the standby figures: db_bench's fastest
// single writer in bytes per write (one small put per batch: the cost of
// a write is mostly the write itself), and a bandwidth-bound one, applied
// by the follow path (--catch-up off: what a standby that follows a writer
// sustains); and the bandwidth-bound one caught up by a standby started
// again behind it (the catch-up: restore's replayer).
var sbShapes = []struct {
	name         string
	value, batch int
	catchUp      bool
}{{"batches of one 100-byte put", 100, 1, false}, {"batches of 16 1000-byte puts", 1000, 16, false},
	{"batches of 16 1000-byte puts, caught up after a restart", 1000, 16, true}}

// sbRun is one standby run: the writer's rate and the standby's, in MB of
// WAL per second.
type sbRun struct{ writer, standby float64 }

// standbys measures the standby applying, from an archive on MinIO, a
// backlog that db_bench wrote at full speed with one thread, against
// db_bench's own rate for the same WAL bytes: whether a standby keeps up
// with the fastest writer.
func (b *bench) standbys(ctx context.Context) error {
	runs := make([][]sbRun, len(sbShapes))
	for i := range sbShapes {
		for run := range b.cfg.Runs {
			b.logf("standby apply rate, %s: run %d/%d", sbShapes[i].name, run+1, b.cfg.Runs)
			r, err := b.standbyRun(ctx, i, run)
			if err != nil {
				return err
			}
			runs[i] = append(runs[i], r)
		}
	}
	for i, rs := range runs {
		var w, s []float64
		for _, r := range rs {
			w, s = append(w, r.writer), append(s, r.standby)
		}
		b.add(report.Row{Figure: sbFigure(i), Unit: "MB/s", Value: report.Of(s),
			Baseline: "db_bench's own write rate of the same WAL bytes (one thread, WAL on, no sync)", Base: report.Of(w),
			Ratio: report.Of(report.Ratios(s, w)), Goals: []report.Goal{{OnRatio: true, Limit: 1, Text: "≥ 1× the writer: it keeps up"}},
			Note: fmt.Sprintf("db_bench overwrite (--batch_size=%d --value_size=%d, 1M keys) writes %s of WAL at full speed while no archiver runs; "+
				"the archiver archives it to MinIO; then `rockstream standby --poll 100ms`, stopped at the sequence before the backlog, is started "+
				"again and applies it (%s). The standby's rate is the WAL bytes over "+
				"the time from its start until /status shows the backlog applied; db_bench's is the WAL bytes over its own reported time "+
				"(ops over ops/sec).", sbShapes[i].batch, sbShapes[i].value, mib(b.cfg.BacklogBytes), sbPath(sbShapes[i].catchUp))})
	}
	return nil
}

// standbyRun makes a database and its archive, bootstraps a standby and
// stops it, has db_bench write the backlog, archives it, and times the
// standby applying it.
func (b *bench) standbyRun(ctx context.Context, shape, run int) (sbRun, error) {
	sh := sbShapes[shape]
	db := b.path(fmt.Sprintf("sb-db-%d-%d", shape, run))
	defer removeAll(db)
	args := func(benchmark string, writes int) []string {
		a := []string{"--benchmarks=" + benchmark, "--db=" + db, "--wal_ttl_seconds=3600", fmt.Sprintf("--value_size=%d", sh.value),
			fmt.Sprintf("--batch_size=%d", sh.batch), "--compression_type=none", "--seed=5", "--threads=1",
			fmt.Sprintf("--num=%d", dbBenchKeys), fmt.Sprintf("--writes=%d", writes)}
		if benchmark != "fillrandom" {
			a = append(a, "--use_existing_db=1")
		}
		return a
	}
	if out, err := exec.CommandContext(ctx, "db_bench", args("fillrandom", 1000)...).CombinedOutput(); err != nil {
		return sbRun{}, fmt.Errorf("db_bench: %w\n%s", err, out)
	}
	loc, err := b.minioLocation(ctx)
	if err != nil {
		return sbRun{}, err
	}
	a, err := b.startArchiver(ctx, "archiver-sb", db, loc, "")
	if err != nil {
		return sbRun{}, err
	}
	if err := a.stop(time.Minute); err != nil {
		return sbRun{}, err
	}
	start, err := latestSeq(db)
	if err != nil {
		return sbRun{}, err
	}
	dir := b.path(fmt.Sprintf("sb-standby-%d-%d", shape, run))
	defer removeAll(dir)
	s, err := b.startStandby(ctx, "standby-sb", dir, loc, 100*time.Millisecond, start, "")
	if err != nil {
		return sbRun{}, err
	}
	if err := s.stop(time.Minute); err != nil {
		return sbRun{}, err
	}
	before, err := walBytes(db)
	if err != nil {
		return sbRun{}, err
	}
	writes := int(b.cfg.BacklogBytes) / (sh.value + 30)
	bargs := args("overwrite", writes)
	out, err := exec.CommandContext(ctx, "db_bench", bargs...).CombinedOutput()
	if err != nil {
		return sbRun{}, fmt.Errorf("db_bench %s: %w\n%s", strings.Join(bargs, " "), err, out)
	}
	ops, err := opsPerSec(string(out), "overwrite")
	if err != nil {
		return sbRun{}, err
	}
	after, err := walBytes(db)
	if err != nil {
		return sbRun{}, err
	}
	target, err := latestSeq(db)
	if err != nil {
		return sbRun{}, err
	}
	wal := float64(after - before)
	r := sbRun{writer: wal / 1e6 / (float64(writes) / ops)}
	if a, err = b.startArchiver(ctx, "archiver-sb", db, loc, "", "--nice", "0"); err != nil {
		return sbRun{}, err
	}
	if err := a.waitArchived(ctx, target, 10*time.Minute); err != nil {
		return sbRun{}, err
	}
	if err := a.stop(time.Minute); err != nil {
		return sbRun{}, err
	}
	prof := ""
	if run == 0 {
		prof = b.profile(sbFigure(shape), "`rockstream standby` applying the backlog")
	}
	began := time.Now()
	catchUp := "off"
	if sh.catchUp {
		catchUp = "1B" // the backlog is far above the default 32MiB too; 1B says it outright
	}
	if s, err = b.startStandby(ctx, "standby-sb", dir, loc, 100*time.Millisecond, target, prof, "--catch-up", catchUp); err != nil {
		return sbRun{}, err
	}
	r.standby = wal / 1e6 / time.Since(began).Seconds()
	return r, s.stop(time.Minute)
}

func sbFigure(shape int) string { return "Standby apply rate, " + sbShapes[shape].name }

// sbPath says how a standby figure's standby applies the backlog.
func sbPath(catchUp bool) string {
	if catchUp {
		return "--catch-up: replayed as a restore does, WAL off, vector memtables, the families flushed together, then followed"
	}
	return "--catch-up off: the follow path, batches of a segment applied together, WAL on"
}
