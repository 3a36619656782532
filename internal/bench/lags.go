package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
	"github.com/rockstream/rockstream/internal/bench/s3count"
)

// lagKey identifies one lag configuration.
type lagConf struct {
	age  time.Duration
	rate float64
}

// lags measures the commit-to-readable lag of rockstream (archiver and
// standby through the CLI, on MinIO) and of Litestream (replicate and
// restore -f, on MinIO, same intervals) at each segment age and rate, the
// requests of the archiver and the standby while the database is idle,
// and the standby's peak RSS.
func (b *bench) lags(ctx context.Context) error {
	rock, ls := b.lagRock, b.lagLS
	var standbyRSS, archRSS []float64
	var idle *idleCounts
	for i, age := range b.cfg.LagAges {
		last := i == len(b.cfg.LagAges)-1
		sbRSS, aRSS, ic, err := b.rockLags(ctx, age, rock, last)
		if err != nil {
			return err
		}
		standbyRSS, archRSS = append(standbyRSS, sbRSS), append(archRSS, aRSS)
		if ic != nil {
			idle = ic
		}
		if b.lsErr == nil {
			if err := b.litestreamLags(ctx, age, ls); err != nil {
				b.lsErr = err
			}
		}
	}
	b.lagRows(rock, ls)
	if idle != nil {
		b.idleRows(idle)
	}
	b.add(report.Row{Figure: "Peak RSS, archiver following the lag writer", Unit: "MiB", Value: report.Of(archRSS),
		Goals: []report.Goal{{AtMost: true, Limit: 128, Text: "≤ 128 MiB"}},
		Note:  fmt.Sprintf("VmHWM of each lag session's `rockstream archive` (one per segment age), over all its rates up to %g MB/s.", slices.Max(b.cfg.LagRates))})
	b.add(report.Row{Figure: "Peak RSS, standby", Unit: "MiB", Value: report.Of(standbyRSS),
		Note: "stated, no goal: VmHWM of each lag session's `rockstream standby`, bootstrap restore included."})
	return nil
}

// rockLags runs the rockstream lag runs at segment age age, and with idle
// the idle request count after them.
func (b *bench) rockLags(ctx context.Context, age time.Duration, out map[lagConf]lagResult, idle bool) (float64, float64, *idleCounts, error) {
	s, err := b.startRock(ctx, age, true)
	if err != nil {
		s.stop()
		return 0, 0, nil, err
	}
	var ic *idleCounts
	for _, rate := range b.cfg.LagRates {
		b.logf("lag: rockstream, --segment-age %v, %g MB/s", age, rate)
		r, err := b.rockWindow(ctx, s, rate)
		if err != nil {
			s.stop()
			return 0, 0, nil, err
		}
		out[lagConf{age, rate}] = r
	}
	if idle {
		if ic, err = b.idle(ctx, s); err != nil {
			s.stop()
			return 0, 0, nil, err
		}
	}
	sb, arch, err := s.stop()
	return float64(sb) / (1 << 20), float64(arch) / (1 << 20), ic, err
}

func (b *bench) litestreamLags(ctx context.Context, age time.Duration, out map[lagConf]lagResult) error {
	s, err := b.startLitestream(ctx, age, b.cfg.LagPoll)
	if err != nil {
		if s != nil {
			s.stop()
		}
		return err
	}
	for _, rate := range b.cfg.LagRates {
		b.logf("lag: Litestream, sync-interval %v, %g MB/s", age, rate)
		r, err := b.litestreamWindow(ctx, s, rate)
		if err != nil {
			s.stop()
			return err
		}
		out[lagConf{age, rate}] = r
	}
	return s.stop()
}

// idleCounts are the requests of the archiver and of the standby in an
// idle window.
type idleCounts struct {
	window         time.Duration
	archiver, sbCt s3count.Counts
}

// idle waits until the writes are archived and applied and the standby has
// backed off, then counts the requests of both over IdleWindow.
func (b *bench) idle(ctx context.Context, s *rockSession) (*idleCounts, error) {
	b.logf("lag: idle requests over %v", b.cfg.IdleWindow)
	if err := s.arch.waitArchived(ctx, s.app.seq(), time.Minute); err != nil {
		return nil, err
	}
	select {
	case <-time.After(5 * time.Second): // the standby backs off to its idle poll
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	a0, s0 := s.arch.requests(), s.standby.requests()
	select {
	case <-time.After(b.cfg.IdleWindow):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return &idleCounts{window: b.cfg.IdleWindow, archiver: s.arch.requests().Sub(a0), sbCt: s.standby.requests().Sub(s0)}, nil
}

func (b *bench) lagRows(rock, ls map[lagConf]lagResult) {
	for _, age := range b.cfg.LagAges {
		for _, rate := range b.cfg.LagRates {
			c := lagConf{age, rate}
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}} {
				b.add(b.lagRow(c, p.name, rock[c].pct(p.q), ls[c].pct(p.q), rock[c].rate, ls[c].rate))
			}
			b.add(followPutsRow(c, rock[c]))
		}
	}
}

// followPutsRow states the segment PUTs of the archiver following the lag
// writer: sealed by age, so they grow with the time, not the bytes.
func followPutsRow(c lagConf, r lagResult) report.Row {
	row := report.Row{Figure: fmt.Sprintf("Segment PUTs per GiB of WAL, following at %s MB/s, --segment-age %v", fmtRate(c.rate), c.age), Unit: "PUT/GiB"}
	if r.bytes == 0 || r.took <= 0 {
		row.Note = "not measured"
		return row
	}
	row.Value = report.Of([]float64{float64(r.segPuts) / (float64(r.bytes) / (1 << 30))})
	row.Note = fmt.Sprintf("stated, no goal: %d PUTs under segments/ for %s MB of batches over %.1f s of the lag runs (warm-up included), %.2f PUT/s; "+
		"a segment is sealed --segment-age after its first batch, so a writer that never pauses costs about 1/age = %.2f PUT/s, whatever its rate.",
		r.segPuts, report.Num(float64(r.bytes)/1e6), r.took.Seconds(), float64(r.segPuts)/r.took.Seconds(), 1/c.age.Seconds())
	return row
}

func (b *bench) lagRow(c lagConf, p string, ours, theirs []float64, rate, lsRate float64) report.Row {
	r := report.Row{Figure: lagFigure(c.age, p, c.rate), Unit: "ms", Value: report.Of(ours),
		Baseline: fmt.Sprintf("Litestream %s, sync-interval %v, on an equivalent SQLite workload", litestreamVersion, c.age),
		Base:     report.Of(theirs), Ratio: report.Of(report.Ratios(ours, theirs))}
	if p == "p99" {
		if c.age <= 250*time.Millisecond {
			r.Goals = []report.Goal{{AtMost: true, Limit: 500, Text: "≤ 500 ms"}}
		} else {
			r.Goals = []report.Goal{{OnRatio: true, AtMost: true, Limit: 0.6, Text: "≤ 0.6× Litestream's p99"}}
		}
	}
	var notes []string
	notes = append(notes, fmt.Sprintf("written %.2f MB/s (rockstream), %.2f MB/s (Litestream)", rate, lsRate))
	if p == "p99" && len(ours) > 0 {
		notes = append(notes, fmt.Sprintf("the archiver seals a segment --segment-age after its first batch, so that batch waits %v before its upload "+
			"and no p99 can be below it; the rest (p99 − age, median) is %.0f ms: the poll of the standby, the GET, the apply, the reader's catch-up",
			c.age, report.Of(ours).Median-float64(c.age.Milliseconds())))
	}
	if len(theirs) == 0 {
		notes = append(notes, "Litestream not measured: "+b.lsReason())
		if r.Goals != nil && r.Goals[0].OnRatio {
			r.Verdict = report.NotMeasured
		}
	}
	r.Note = strings.Join(notes, "; ")
	return r
}

func (b *bench) lsReason() string {
	if b.lsErr == nil {
		return "no runs"
	}
	return strings.SplitN(b.lsErr.Error(), "\n", 2)[0]
}

func (b *bench) idleRows(ic *idleCounts) {
	perHour := func(c s3count.Counts, kind string) float64 {
		return float64(c[kind]) * float64(time.Hour) / float64(ic.window)
	}
	b.add(report.Row{Figure: "Archiver PUT + LIST per idle hour", Unit: "requests/h",
		Value: report.Of([]float64{perHour(ic.archiver, s3count.Put) + perHour(ic.archiver, s3count.List)}),
		Goals: []report.Goal{{AtMost: true, Limit: 0, Text: "0 PUT and 0 LIST"}},
		Note:  fmt.Sprintf("measured over %v with no writes, times %.0f; every request of the archiver: %s.", ic.window, float64(time.Hour)/float64(ic.window), countsText(ic.archiver, perHour))})
	b.add(report.Row{Figure: "Standby requests per idle hour", Unit: "requests/h",
		Value: report.Of([]float64{float64(ic.sbCt.Total()) * float64(time.Hour) / float64(ic.window)}),
		Note:  fmt.Sprintf("stated, no goal; measured over %v (after its back-off) and extrapolated: %s.", ic.window, countsText(ic.sbCt, perHour))})
}

func countsText(c s3count.Counts, perHour func(s3count.Counts, string) float64) string {
	if len(c) == 0 {
		return "none"
	}
	kinds := make([]string, 0, len(c))
	for k := range c {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s (%.0f/h)", c[k], k, perHour(c, k)))
	}
	return strings.Join(parts, ", ")
}
