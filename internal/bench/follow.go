package bench

import (
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// Following figures: the archiver follows db_bench writing at followRate
// for followTime, at each WAL file size of walSizes, and its lag against
// the database's head (the archiver's own LagSeconds: how long the oldest
// write that the archive lacks has waited) is sampled every
// followSample. A segment is sealed --segment-age (1 s, the default) after
// its first batch, so the lag's floor is about one segment age whatever
// the WAL file size; the figures show that small WAL files and many
// column families add nothing to it.
const (
	followRate   = 10_000_000 // bytes per second of db_bench's writes
	followTime   = 8 * time.Second
	followWarmUp = time.Second
	followSample = 50 * time.Millisecond
	followAge    = time.Second
)

// wsFollowRun is one following run of one WAL file size.
type wsFollowRun struct {
	lags []float64 // seconds, sampled after the warm-up
	puts int64     // segments written while following
	wal  int64     // WAL bytes written
	took time.Duration
}

// wsFollow starts an archiver on d (it catches up first), then has
// db_bench write at followRate for followTime while the archiver's lag is
// sampled; it stops the archiver once it has archived the last write.
func (b *bench) wsFollow(ctx context.Context, d *walSizeDB) (wsFollowRun, error) {
	start, err := latestSeq(d.dir)
	if err != nil {
		return wsFollowRun{}, err
	}
	s, err := b.startArchiver(ctx, "archiver-follow", d.dir, d.loc, "", "--nice", "0", "--segment-age", followAge.String())
	if err != nil {
		return wsFollowRun{}, err
	}
	defer s.stop(time.Minute)
	if err := s.waitStored(ctx, start, 5*time.Minute); err != nil {
		return wsFollowRun{}, err
	}
	segsBefore, err := countSegments(ctx, d.loc.store)
	if err != nil {
		return wsFollowRun{}, err
	}
	walBefore, err := walBytes(d.dir)
	if err != nil {
		return wsFollowRun{}, err
	}
	args := append(b.wsBenchArgs(d, "overwrite", 1<<30), fmt.Sprintf("--duration=%d", int(followTime.Seconds())),
		fmt.Sprintf("--benchmark_write_rate_limit=%d", followRate))
	cmd := exec.CommandContext(ctx, "db_bench", args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return wsFollowRun{}, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var r wsFollowRun
	tick := time.NewTicker(followSample)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				return wsFollowRun{}, fmt.Errorf("db_bench %s: %w\n%s", strings.Join(args, " "), err, out.String())
			}
			running = false
		case <-tick.C:
			if time.Since(began) < followWarmUp {
				continue
			}
			st, err := s.archiver()
			if err != nil {
				return wsFollowRun{}, fmt.Errorf("the archiver's /status while following: %w", err)
			}
			r.lags = append(r.lags, st.Stats.LagSeconds)
		case <-ctx.Done():
			return wsFollowRun{}, ctx.Err()
		}
	}
	r.took = time.Since(began)
	target, err := latestSeq(d.dir)
	if err != nil {
		return wsFollowRun{}, err
	}
	if err := s.waitArchived(ctx, target, 5*time.Minute); err != nil {
		return wsFollowRun{}, err
	}
	if err := s.stop(time.Minute); err != nil {
		return wsFollowRun{}, err
	}
	segs, err := countSegments(ctx, d.loc.store)
	if err != nil {
		return wsFollowRun{}, err
	}
	walAfter, err := walBytes(d.dir)
	if err != nil {
		return wsFollowRun{}, err
	}
	r.puts, r.wal = segs-segsBefore, walAfter-walBefore
	return r, nil
}

// quantile is the q-quantile of xs (nearest rank); 0 when xs is empty.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[max(0, min(len(s)-1, int(float64(len(s))*q+0.999999)-1))]
}

func (b *bench) wsFollowRows(runs [][]wsFollowRun) {
	p99 := make([][]float64, len(runs))
	for i, rs := range runs {
		var puts, allowed []float64
		for _, r := range rs {
			p99[i] = append(p99[i], quantile(r.lags, 0.99))
			puts = append(puts, float64(r.puts))
			// ≤ 64 per GiB plus one per segment age, plus the one sealed
			// at the stop.
			allowed = append(allowed, 64*float64(r.wal)/(1<<30)+r.took.Seconds()/followAge.Seconds()+1)
		}
		name := walSizes[i].name
		row := report.Row{Figure: fmt.Sprintf("Archive lag behind the database while following %s MB/s, p99, %s", fmtRate(followRate/1e6), name),
			Unit: "s", Value: report.Of(p99[i]),
			Note: fmt.Sprintf("db_bench overwrite at --benchmark_write_rate_limit=%d for %v (the database of the catch-up figure above), the archiver "+
				"following with --segment-age %v on file://; its /status lag (how long the oldest write that the archive lacks has waited, "+
				"against the end of the database's WAL) sampled every %v after a %v warm-up. The floor is one segment age.",
				followRate, followTime, followAge, followSample, followWarmUp)}
		if i > 0 {
			row.Baseline = "the same at 64 MiB WAL files (one column family), in the same runs"
			row.Base = report.Of(p99[0])
			row.Ratio = report.Of(report.Ratios(p99[i], p99[0]))
			row.Goals = []report.Goal{{OnRatio: true, AtMost: true, Limit: 1.25, Text: "≤ 1.25× the 64 MiB figure"}}
		}
		b.add(row)
		b.add(report.Row{Figure: "Segment PUTs while following " + fmtRate(followRate/1e6) + " MB/s, " + name, Unit: "PUT", Value: report.Of(puts),
			Baseline: "the allowance: 64 per GiB of WAL, one per segment age, one at the stop", Base: report.Of(allowed),
			Ratio: report.Of(report.Ratios(puts, allowed)), Goals: []report.Goal{{OnRatio: true, AtMost: true, Limit: 1, Text: "≤ the allowance"}},
			Note: "the segments written while following above, against what the design allows."})
	}
}
