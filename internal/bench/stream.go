package bench

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// The stream part (issue 17): the live stream, `rockstream archive
// --stream` serving the batches it reads to `rockstream standby --primary`,
// measured as the lag part measures today's bucket-only path and against
// it: the same writer, the same reader of the standby, the same segment
// ages and rates, on MinIO; its baselines are the lag part's figures of
// the bucket-only standby and of Litestream in the same run (measured here
// for the ages the lag part did not run). Then the writer's slowdown with
// three streaming standbys, as the slowdown part measures the archiver's.

// streamInfo is what the streaming standby and the archiver's stream said
// at the end of a session.
type streamInfo struct {
	commits  int64 // the writer's commits over the session
	batches  int64 // batches the standby applied from the stream
	connects int64 // streams the standby opened
	behind   int64 // streams the archiver ended because their client fell behind
}

func streamLagFigure(age time.Duration, p string, rate float64) string {
	if rate == 0 {
		return fmt.Sprintf("Lag commit → readable on a streaming standby, %s, --segment-age %v", p, age)
	}
	return fmt.Sprintf("Lag commit → readable on a streaming standby, %s, --segment-age %v, %s MB/s", p, age, fmtRate(rate))
}

// streamLagGoal is the bound on the streaming standby's p99, at
// any segment age.
const streamLagGoal = 50 // ms

func (b *bench) streams(ctx context.Context) error {
	res := map[lagConf]lagResult{}
	infos := map[time.Duration]streamInfo{}
	var own []time.Duration // ages whose bucket-only baseline this part measured
	for _, age := range b.cfg.LagAges {
		info, err := b.streamLags(ctx, age, res)
		if err != nil {
			return err
		}
		infos[age] = info
		if !hasAge(b.lagRock, age, b.cfg.LagRates) {
			own = append(own, age)
			if _, _, _, err := b.rockLags(ctx, age, b.lagRock, false); err != nil {
				return err
			}
		}
		if b.lsErr == nil && !hasAge(b.lagLS, age, b.cfg.LagRates) {
			if err := b.litestreamLags(ctx, age, b.lagLS); err != nil {
				b.lsErr = err
			}
		}
	}
	b.streamRows(res, infos, own)
	return b.streamSlowdown(ctx)
}

// hasAge reports whether m holds every rate of age.
func hasAge(m map[lagConf]lagResult, age time.Duration, rates []float64) bool {
	for _, r := range rates {
		if _, ok := m[lagConf{age, r}]; !ok {
			return false
		}
	}
	return true
}

// streamLags runs the lag runs of each rate on a streaming standby: the
// archiver with --stream, the standby with --primary on it.
func (b *bench) streamLags(ctx context.Context, age time.Duration, out map[lagConf]lagResult) (streamInfo, error) {
	s, err := b.startSession(ctx, sessionKind{name: "stream", figure: streamLagFigure(age, "p99", 0), stream: true}, age, true)
	if err != nil {
		s.stop()
		return streamInfo{}, err
	}
	// The standby follows the bucket until its stream is up.
	if err := waitFor(ctx, "the standby's live stream", time.Minute, s.standby.proc, func() bool {
		st, err := s.standby.standby()
		return err == nil && st.Stream != nil && st.Stream.Connected
	}); err != nil {
		s.stop()
		return streamInfo{}, err
	}
	first := s.next
	for _, rate := range b.cfg.LagRates {
		b.logf("stream: streaming standby, --segment-age %v, %g MB/s", age, rate)
		r, err := b.rockWindow(ctx, s, rate)
		if err != nil {
			s.stop()
			return streamInfo{}, err
		}
		out[lagConf{age, rate}] = r
	}
	info := streamInfo{commits: s.next - first}
	st, err := s.standby.standby()
	if err == nil && st.Stream != nil {
		info.batches, info.connects = st.Stream.Batches, st.Stream.Connects
	}
	if ast, err := s.arch.archiver(); err == nil && ast.Stream != nil {
		info.behind = ast.Stream.Behind
	}
	_, _, err = s.stop()
	return info, err
}

func (b *bench) streamRows(res map[lagConf]lagResult, infos map[time.Duration]streamInfo, own []time.Duration) {
	for _, age := range b.cfg.LagAges {
		info := infos[age]
		where := "the lag part's session, same run"
		if slices.Contains(own, age) {
			where = "measured by this part, same run"
		}
		for _, rate := range b.cfg.LagRates {
			c := lagConf{age, rate}
			ours, bucket, ls := res[c], b.lagRock[c], b.lagLS[c]
			for _, p := range []struct {
				name string
				q    float64
			}{{"p50", 0.5}, {"p99", 0.99}} {
				r := report.Row{Figure: streamLagFigure(age, p.name, rate), Unit: "ms", Value: report.Of(ours.pct(p.q)),
					Baseline: fmt.Sprintf("today's bucket-only standby (no --primary), same age and rate (%s)", where),
					Base:     report.Of(bucket.pct(p.q)), Ratio: report.Of(report.Ratios(ours.pct(p.q), bucket.pct(p.q)))}
				notes := []string{fmt.Sprintf("written %.2f MB/s (streaming), %.2f MB/s (bucket-only)", ours.rate, bucket.rate)}
				if p.name == "p99" {
					r.Goals = []report.Goal{{AtMost: true, Limit: streamLagGoal, Text: fmt.Sprintf("≤ %d ms at any --segment-age", streamLagGoal)}}
					notes = append(notes, streamInfoText(info))
					if info.batches == 0 {
						r.Verdict = report.NotMeasured
						notes = append(notes, "**the standby applied no batch from the stream: these are the bucket's figures, not the stream's**")
					}
				}
				if lsp := ls.pct(p.q); len(lsp) > 0 {
					notes = append(notes, fmt.Sprintf("Litestream %s in the same run: %s ms", p.name, report.Of(lsp)))
				}
				r.Note = strings.Join(notes, "; ")
				b.add(r)
			}
			theirs := ls.pct(0.99)
			r := report.Row{Figure: streamLagFigure(age, "p99", rate) + ", against Litestream", Unit: "ms", Value: report.Of(ours.pct(0.99)),
				Baseline: fmt.Sprintf("Litestream %s, sync-interval %v, on an equivalent SQLite workload, same run", litestreamVersion, age),
				Base:     report.Of(theirs), Ratio: report.Of(report.Ratios(ours.pct(0.99), theirs)),
				Note: fmt.Sprintf("stated, no goal (the goal is on the row above); written %.2f MB/s (streaming), %.2f MB/s (Litestream)", ours.rate, ls.rate)}
			if len(theirs) == 0 {
				r.Note = "Litestream not measured: " + b.lsReason()
			}
			b.add(r)
		}
	}
}

func streamInfoText(i streamInfo) string {
	return fmt.Sprintf("the archiver runs with its defaults but --segment-age (--poll 10ms, the interval of its WAL reads; --nice 10, so on "+
		"these shared cores it takes only the CPU that the writer, the standby, the reader and MinIO leave); over the session (every rate, "+
		"warm-up included) the writer committed %d batches and the standby applied %d from the stream (its /status stream.batches_applied; "+
		"%d stream connects, %d streams ended by the archiver as behind)", i.commits, i.batches, i.connects, i.behind)
}

// streamStandbys is the number of streaming standbys of the slowdown
// figure, and streamStandbyNice their CPU priority: they share the
// writer's cores here, where on a real deployment they run on other
// machines, so they run at the lowest priority and take only the CPU that
// the writer and the archiver leave (the archiver itself runs at its
// default --nice 10, as in the slowdown part).
const (
	streamStandbys    = 3
	streamStandbyNice = 19
)

// streamSlowdown measures db_bench overwrite (as the slowdown part runs
// it) on three databases made alike: one followed by `rockstream archive
// --stream` that serves three streaming standbys, one followed by the
// archiver alone (no --stream, no standby: the slowdown part's setup),
// and one without anything; the order of the three turns from run to run.
// After each run on a followed database, the harness waits until the
// archiver has read its newest sequence and every standby has applied it,
// so that no work left over from it runs during the next measured run.
// The standbys run on this machine under nice -n 19 (streamStandbyNice);
// the archives are file:// folders on the same disk.
func (b *bench) streamSlowdown(ctx context.Context) error {
	const figure = "Writer slowdown with three streaming standbys (db_bench ops/s)"
	with, alone, without := b.path("ss-with"), b.path("ss-alone"), b.path("ss-without")
	for _, db := range []string{with, alone, without} {
		if _, err := b.dbBench(ctx, db, "fillrandom", 200000, 0); err != nil {
			return err
		}
	}
	locWith, err := b.fileLocation("ss-with")
	if err != nil {
		return err
	}
	locAlone, err := b.fileLocation("ss-alone")
	if err != nil {
		return err
	}
	arch, err := b.startArchiver(ctx, "archiver-ss-stream", with, locWith, b.profile(figure, "the archiver serving three standbys (all runs)"), "--stream")
	if err != nil {
		return err
	}
	defer arch.stop(time.Minute)
	archAlone, err := b.startArchiver(ctx, "archiver-ss-alone", alone, locAlone, "")
	if err != nil {
		return err
	}
	defer archAlone.stop(time.Minute)
	seq, err := latestSeq(with)
	if err != nil {
		return err
	}
	var sbs []*service
	defer func() {
		for _, s := range sbs {
			s.stop(time.Minute)
		}
	}()
	for i := range streamStandbys {
		b.logf("stream: starting streaming standby %d/%d", i+1, streamStandbys)
		b.childNice = streamStandbyNice
		s, err := b.startStandby(ctx, fmt.Sprintf("standby-ss-%d", i), b.path(fmt.Sprintf("ss-standby-%d", i)), locWith, 100*time.Millisecond, seq, "",
			"--primary", "http://"+arch.addr)
		b.childNice = 0
		if s != nil {
			sbs = append(sbs, s)
		}
		if err != nil {
			return err
		}
	}
	for _, s := range sbs {
		if err := waitFor(ctx, "the standby's live stream", time.Minute, s.proc, func() bool {
			st, err := s.standby()
			return err == nil && st.Stream != nil && st.Stream.Connected
		}); err != nil {
			return err
		}
	}
	var opsWith, opsAlone, opsWithout, catchUp []float64
	for i := range b.cfg.Runs {
		b.logf("stream: writer slowdown, run %d/%d", i+1, b.cfg.Runs)
		withRun := func() error {
			n, err := b.dbBench(ctx, with, "overwrite", 0, b.cfg.SlowdownTime)
			if err != nil {
				return err
			}
			ended := time.Now()
			opsWith = append(opsWith, n)
			seq, err := latestSeq(with)
			if err != nil {
				return err
			}
			if err := arch.waitArchived(ctx, seq, 5*time.Minute); err != nil {
				return err
			}
			for _, s := range sbs {
				if err := waitFor(ctx, fmt.Sprintf("the standby to apply sequence %d", seq), 5*time.Minute, s.proc, func() bool {
					st, err := s.standby()
					return err == nil && st.Applied >= seq
				}); err != nil {
					return err
				}
			}
			catchUp = append(catchUp, time.Since(ended).Seconds())
			return nil
		}
		aloneRun := func() error {
			n, err := b.dbBench(ctx, alone, "overwrite", 0, b.cfg.SlowdownTime)
			if err != nil {
				return err
			}
			opsAlone = append(opsAlone, n)
			seq, err := latestSeq(alone)
			if err != nil {
				return err
			}
			return archAlone.waitArchived(ctx, seq, 5*time.Minute)
		}
		withoutRun := func() error {
			n, err := b.dbBench(ctx, without, "overwrite", 0, b.cfg.SlowdownTime)
			opsWithout = append(opsWithout, n)
			return err
		}
		order := []func() error{withoutRun, aloneRun, withRun}
		for k := range order {
			if err := order[(k+i)%len(order)](); err != nil {
				return err
			}
		}
	}
	var applied []string
	for i, s := range sbs {
		if st, err := s.standby(); err == nil && st.Stream != nil {
			applied = append(applied, fmt.Sprintf("standby %d: %d batches from the stream, %d connects", i+1, st.Stream.Batches, st.Stream.Connects))
		}
	}
	hub := "the archiver's stream counters could not be read"
	if st, err := arch.archiver(); err == nil && st.Stream != nil {
		hub = fmt.Sprintf("the archiver read %d batches and sent %d over %d streams, %d of them ended because their standby fell behind "+
			"its --stream-buffer (64 MiB; that standby then read the bucket until it caught up)", st.Stats.Batches, st.Stream.Batches, st.Stream.Served, st.Stream.Behind)
	}
	for _, s := range append(sbs, arch, archAlone) {
		if err := s.stop(time.Minute); err != nil {
			return err
		}
	}
	sbs = nil
	setup := fmt.Sprintf("db_bench overwrite for %v per run as in the slowdown part (one thread, 400-byte values, batches of 4, no compression, WAL kept); "+
		"`rockstream archive --stream` (default --nice 10, file:// folder on the same disk) serving %d `rockstream standby --primary` "+
		"each applying every batch into its own database, on the same %d cores under nice -n %d (on a real deployment they run on other machines: "+
		"here they take only the CPU that the writer and the archiver leave, but they share the disk); "+
		"the three databases' runs take turns going first", b.cfg.SlowdownTime, streamStandbys, runtime.NumCPU(), streamStandbyNice)
	b.add(report.Row{Figure: figure, Unit: "ops/s", Value: report.Of(opsWith),
		Baseline: "db_bench overwrite on a like database without archiver or standby, runs rotating", Base: report.Of(opsWithout),
		Ratio: report.Of(report.Ratios(opsWith, opsWithout)),
		Goals: []report.Goal{{OnRatio: true, Limit: 0.9, Text: "≥ 0.90× without"}},
		Note: fmt.Sprintf("%s. After each run the standbys had the last write %s s after db_bench ended (median; every standby applied it); %s; %s.",
			setup, report.Of(catchUp), hub, strings.Join(applied, "; "))})
	b.add(report.Row{Figure: "Writer slowdown with three streaming standbys, against the archiver alone", Unit: "ops/s", Value: report.Of(opsWith),
		Baseline: "db_bench overwrite on a like database followed by `rockstream archive` without --stream and no standby, runs rotating",
		Base:     report.Of(opsAlone), Ratio: report.Of(report.Ratios(opsWith, opsAlone)),
		Note: fmt.Sprintf("stated, no goal: the cost of serving the stream to three standbys over the archiver's own; the archiver alone against no archiver "+
			"in these runs: %s×.", report.Of(report.Ratios(opsAlone, opsWithout)))})
	return nil
}
