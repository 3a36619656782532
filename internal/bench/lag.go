package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/linxGnu/grocksdb"
)

// lagResult is the lags of the runs at one rate.
type lagResult struct {
	rate    float64 // MB/s of payload actually written
	runs    [][]time.Duration
	bytes   int64         // bytes of write batches written, warm-up included
	took    time.Duration // the time of the writes and of the standby catching up
	segPuts int64         // PUTs under segments/ meanwhile
}

// pct is the p-th percentile of each run, in milliseconds.
func (l lagResult) pct(p float64) []float64 {
	var out []float64
	for _, run := range l.runs {
		if len(run) == 0 {
			continue
		}
		ms := make([]float64, len(run))
		for i, d := range run {
			ms[i] = float64(d) / 1e6
		}
		out = append(out, quantile(ms, p))
	}
	return out
}

// rockSession is the application writing RocksDB, `rockstream archive`
// and `rockstream standby` on MinIO, and the reader of the standby.
type rockSession struct {
	app     *app
	arch    *service
	standby *service
	reader  *reader
	next    int64 // the next commit number
}

func (b *bench) startRock(ctx context.Context, age time.Duration, profile bool) (*rockSession, error) {
	return b.startSession(ctx, sessionKind{name: "lag", figure: lagFigure(age, "p99", 0)}, age, profile)
}

// sessionKind is what a session measures: today's bucket-only path (the
// lag part), or the live stream (the stream part: the archiver with
// --stream, the standby with --primary on it).
type sessionKind struct {
	name   string // names its folders and processes
	figure string // the figure its profiles belong to
	stream bool
}

func (b *bench) startSession(ctx context.Context, k sessionKind, age time.Duration, profile bool) (*rockSession, error) {
	loc, err := b.minioLocation(ctx)
	if err != nil {
		return nil, err
	}
	s := &rockSession{next: 1}
	if s.app, err = openApp(b.path(fmt.Sprintf("%s-db-%v", k.name, age)), 1<<20, 51); err != nil {
		return nil, err
	}
	if _, err := s.app.fill(1<<20, s.app.random(), false, nil); err != nil {
		return s, err
	}
	var sbArgs []string
	archArgs := []string{"--segment-age", age.String()}
	if k.stream {
		archArgs = append(archArgs, "--stream")
	}
	sbText := fmt.Sprintf("--poll %v", b.cfg.LagPoll)
	if k.stream {
		sbText += " --primary URL"
	}
	aprof, sprof := "", ""
	if profile {
		aprof = b.profile(k.figure, fmt.Sprintf("`rockstream archive %s` during the runs", strings.Join(archArgs, " ")))
		sprof = b.profile(k.figure, fmt.Sprintf("`rockstream standby %s` during the runs", sbText))
	}
	if s.arch, err = b.startArchiver(ctx, "archiver-"+k.name, s.app.dir, loc, aprof, archArgs...); err != nil {
		return s, err
	}
	if k.stream {
		sbArgs = []string{"--primary", "http://" + s.arch.addr}
	}
	dir := b.path(fmt.Sprintf("%s-standby-%v", k.name, age))
	if s.standby, err = b.startStandby(ctx, "standby-"+k.name, dir, loc, b.cfg.LagPoll, s.app.seq(), sprof, sbArgs...); err != nil {
		return s, err
	}
	s.reader, err = openReader(dir, b.path(fmt.Sprintf("%s-standby-reader-%v", k.name, age)))
	return s, err
}

// stop stops the reader, the standby and the archiver, and closes the
// database; it returns the peak RSS of the standby and of the archiver.
func (s *rockSession) stop() (standbyRSS, archRSS int64, err error) {
	if s == nil {
		return 0, 0, nil
	}
	if s.reader != nil {
		s.reader.close()
	}
	for _, p := range []*service{s.standby, s.arch} {
		if p != nil && err == nil {
			err = p.stop(time.Minute)
		}
	}
	if s.app != nil {
		s.app.close()
	}
	if s.standby != nil && s.arch != nil {
		standbyRSS, archRSS = s.standby.maxRSS(), s.arch.maxRSS()
	}
	return standbyRSS, archRSS, err
}

// window writes at rate MB/s for the warm-up and the runs, and returns the
// commit-to-readable lag of each commit by run.
func (b *bench) rockWindow(ctx context.Context, s *rockSession, rate float64) (lagResult, error) {
	type seen struct {
		vis map[int64]int64
		err error
	}
	done := make(chan seen, 1)
	stop := make(chan int64, 1)
	puts0, start := s.arch.requestsByPrefix()[segmentPuts], time.Now()
	go func() {
		vis, err := s.reader.follow(s.next-1, stop)
		done <- seen{vis, err}
	}()
	commits, res, err := b.rockWrite(ctx, s, rate)
	if err != nil {
		stop <- -1
		<-done
		return res, err
	}
	stop <- commits[len(commits)-1].n
	r := <-done
	if r.err != nil {
		return res, r.err
	}
	res.took, res.segPuts = time.Since(start), s.arch.requestsByPrefix()[segmentPuts]-puts0
	res.runs = make([][]time.Duration, b.cfg.Runs)
	for _, c := range commits {
		at, ok := r.vis[c.n]
		switch {
		case c.run < 0:
		case !ok:
			return res, fmt.Errorf("commit %d never became readable on the standby (waited 30 s after the last write)", c.n)
		default:
			res.runs[c.run] = append(res.runs[c.run], time.Duration(at-c.at))
		}
	}
	return res, nil
}

// rockWrite commits every commitPeriod for the warm-up and the runs.
func (b *bench) rockWrite(ctx context.Context, s *rockSession, rate float64) ([]lagCommit, lagResult, error) {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	var commits []lagCommit
	var bytes int64
	start := time.Now()
	end := start.Add(b.cfg.LagWarmup + time.Duration(b.cfg.Runs)*b.cfg.LagWindow)
	tick := time.NewTicker(commitPeriod)
	defer tick.Stop()
	for now := start; now.Before(end) && ctx.Err() == nil; now = <-tick.C {
		run := -1
		if since := now.Sub(start); since >= b.cfg.LagWarmup {
			run = min(int((since-b.cfg.LagWarmup)/b.cfg.LagWindow), b.cfg.Runs-1)
		}
		at := time.Now().UnixNano()
		n, err := s.app.writeCommit(wb, s.next, at, commitBytes(rate))
		if err != nil {
			return commits, lagResult{}, err
		}
		commits = append(commits, lagCommit{n: s.next, at: at, run: run})
		bytes += int64(n)
		s.next++
	}
	return commits, lagResult{rate: float64(bytes) / 1e6 / time.Since(start).Seconds(), bytes: bytes}, ctx.Err()
}

func lagFigure(age time.Duration, p string, rate float64) string {
	if rate == 0 {
		return fmt.Sprintf("Lag commit → readable on the standby, %s, --segment-age %v", p, age)
	}
	return fmt.Sprintf("Lag commit → readable on the standby, %s, --segment-age %v, %s MB/s", p, age, fmtRate(rate))
}

func fmtRate(r float64) string { return fmt.Sprintf("%g", r) }

func removeAll(paths ...string) {
	for _, p := range paths {
		os.RemoveAll(p)
	}
}
