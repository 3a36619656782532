// Package bench is rockstream's benchmark harness: it measures the archiver,
// the standby, base and restore through the command line, as users run
// them, each against a baseline measured in the same run (zstd alone, a
// raw PutObject, db_bench without the archiver, Litestream, RocksDB's
// BackupEngine, a plain parallel GET), and writes BENCHMARKS.md.
//
// It plays the application itself (package app.go: a RocksDB database
// written with grocksdb and values from datagen), starts its own MinIO on
// loopback with a counting proxy in front of each program (s3count), runs
// everything in one temporary folder, and removes it at the end, also after
// Ctrl-C. cmd/rockstream-bench is its command; `make bench` runs the short
// version (minutes) and `make bench-full` the full one.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/report"
)

// Config sizes a run.
type Config struct {
	Full    bool
	Runs    int
	Binary  string // the rockstream binary
	WorkDir string // where the temporary folder goes
	Keep    bool   // keep the temporary folder
	Command string // the command line, for the report
	Only    []string
	Log     io.Writer // progress

	DBBytes      int64 // the database of the base and restore figures
	SmallDBBytes int64 // the small database of the restore memory figure
	WALBytes     int64 // WAL after the base, for the restore figure
	BacklogBytes int64 // WAL backlog of the throughput figure

	SlowdownTime time.Duration   // each db_bench run
	LagRates     []float64       // MB/s
	LagAges      []time.Duration // --segment-age
	LagPoll      time.Duration   // the standby's --poll, Litestream's -follow-interval
	LagWindow    time.Duration   // each run of a lag figure
	LagWarmup    time.Duration   // before the runs of a rate
	IdleWindow   time.Duration   // the idle request count
	NoLitestream bool            // leave out the Litestream baselines (the tests: building it takes minutes)
}

// Short is the quick version: minutes on two cores.
func Short() Config {
	return Config{Runs: 3, DBBytes: 256 << 20, SmallDBBytes: 64 << 20, WALBytes: 128 << 20, BacklogBytes: 128 << 20,
		SlowdownTime: 3 * time.Second, LagRates: []float64{1, 10}, LagAges: []time.Duration{250 * time.Millisecond, time.Second},
		LagPoll: 100 * time.Millisecond, LagWindow: 2 * time.Second, LagWarmup: time.Second, IdleWindow: 20 * time.Second}
}

// Full is the version of the table: a 1 GiB database, 500 MB of
// WAL, five runs.
func Full() Config {
	c := Config{Full: true, Runs: 5, DBBytes: 1 << 30, SmallDBBytes: 256 << 20, WALBytes: 512 << 20, BacklogBytes: 512 << 20,
		SlowdownTime: 10 * time.Second, LagRates: []float64{1, 5, 10}, LagAges: []time.Duration{250 * time.Millisecond, time.Second},
		LagPoll: 100 * time.Millisecond, LagWindow: 10 * time.Second, LagWarmup: 2 * time.Second, IdleWindow: 2 * time.Minute}
	return c
}

// Groups are the parts of a run, in the order they run; --only picks some.
var Groups = []string{"throughput", "walsize", "slowdown", "base", "restore", "encryption", "standby", "lag", "stream"}

// bench is a run in progress.
type bench struct {
	*env
	rows     []report.Row
	sections []report.Section
	profiles map[string][]profileRef // by figure name
	failed   []string
	db       dbInfo // the database of the base and restore figures, once built
	lsPath   string // the Litestream binary, once built
	lsErr    error
	// The lag figures of today's bucket-only standby and of Litestream,
	// by segment age and rate: the lag part's, which the stream part
	// takes as its baselines (measuring those it lacks).
	lagRock, lagLS map[lagConf]lagResult
	// childNice runs the rockstream processes started while it is set
	// under nice -n childNice (0: as they are).
	childNice int
	load      float64 // the 1-minute load average at start, -1 if unknown
}

// Run runs the benchmark and returns its report. A group that fails is
// reported in the document, and Run's error names it.
func Run(ctx context.Context, cfg Config) (*report.Doc, error) {
	e, err := newEnv(cfg)
	if err != nil {
		return nil, err
	}
	defer e.close()
	b := &bench{env: e, profiles: map[string][]profileRef{}, load: load1(), lagRock: map[lagConf]lagResult{}, lagLS: map[lagConf]lagResult{}}
	start := time.Now()
	facts := [][2]string{{"Command", "`" + cfg.Command + "`"}, {"Date", start.UTC().Format(time.RFC3339)}, {"Mode", mode(cfg)}}
	switch {
	case cfg.NoLitestream:
		b.lsErr = errors.New("left out of this run (Config.NoLitestream)")
	case b.wants("lag") || b.wants("stream"):
		b.lsPath, b.lsErr = b.installLitestream(ctx)
	}
	facts = append(facts, b.machineFacts(ctx, b.lsPath)...)
	gen, err := b.generatorSection()
	if err != nil {
		return nil, err
	}
	b.sections = append(b.sections, gen)
	for _, g := range Groups {
		if !b.wants(g) || ctx.Err() != nil {
			continue
		}
		b.logf("== %s", g)
		if err := b.group(ctx, g); err != nil {
			b.failed = append(b.failed, g)
			b.sections = append(b.sections, report.Section{Title: "Error in " + g, Body: "The " + g + " figures could not be completed:\n\n```\n" + err.Error() + "\n```"})
			b.logf("%s failed: %v", g, err)
		}
	}
	facts = append(facts, [2]string{"Load average at end", loadAvg()}, [2]string{"Duration", time.Since(start).Round(time.Second).String()})
	doc := b.doc(ctx, facts)
	if ctx.Err() != nil {
		return doc, ctx.Err()
	}
	if len(b.failed) > 0 {
		return doc, fmt.Errorf("failed: %s", strings.Join(b.failed, ", "))
	}
	return doc, nil
}

func mode(cfg Config) string {
	if cfg.Full {
		return fmt.Sprintf("full: %d runs per figure", cfg.Runs)
	}
	return fmt.Sprintf("short: %d runs per figure, smaller data (`make bench-full` for the issue's sizes)", cfg.Runs)
}

func (b *bench) wants(group string) bool {
	return len(b.cfg.Only) == 0 || slices.Contains(b.cfg.Only, group)
}

func (b *bench) group(ctx context.Context, g string) error {
	switch g {
	case "throughput":
		return b.throughput(ctx)
	case "walsize":
		return b.walSize(ctx)
	case "slowdown":
		return b.slowdown(ctx)
	case "base":
		return b.bases(ctx)
	case "restore":
		return b.restores(ctx)
	case "encryption":
		return b.encryption(ctx)
	case "standby":
		return b.standbys(ctx)
	case "lag":
		return b.lags(ctx)
	case "stream":
		return b.streams(ctx)
	}
	return fmt.Errorf("unknown group %q (want one of %s)", g, strings.Join(Groups, ", "))
}

// add judges a row and adds it to the report.
func (b *bench) add(r report.Row) {
	r.Judge()
	b.rows = append(b.rows, r)
	b.logf("%s: %s %s (%s)", r.Figure, r.Value, r.Unit, r.Verdict)
}

func (b *bench) logf(format string, args ...any) {
	if b.cfg.Log != nil {
		fmt.Fprintf(b.cfg.Log, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

// doc assembles the report.
func (b *bench) doc(ctx context.Context, facts [][2]string) *report.Doc {
	header := []string{
		"Written by `" + b.cfg.Command + "` (cmd/rockstream-bench); every figure below comes from that one run on this machine. " +
			"Run it on your own machine to get your own figures: `make bench` (short) or `make bench-full`.",
		b.loadNote(),
	}
	sections := append(append(b.sections, b.methodSection()), b.profileSections(ctx)...)
	return &report.Doc{Title: "rockstream benchmarks", Header: header, Facts: facts, Rows: b.rows, Sections: sections}
}

// loadNote says how loaded the machine was at the start, from the load
// average: shared and noisy when it exceeded the number of cores.
func (b *bench) loadNote() string {
	cores := runtime.NumCPU()
	switch {
	case b.load < 0:
		return "The load average at start could not be read (/proc/loadavg)."
	case b.load > float64(cores):
		return fmt.Sprintf("**This machine was shared and noisy**: the load average at start was %.2f on %d cores, so other jobs ran on the same cores "+
			"(see the load averages below). Absolute times drift with that load; the ratios against a baseline measured in the same run drift less, "+
			"which is why every figure that can be a ratio is one.", b.load, cores)
	}
	return fmt.Sprintf("The load average at start was %.2f on %d cores (see the load averages below).", b.load, cores)
}

// methodSection says how the figures are taken.
func (b *bench) methodSection() report.Section {
	sec := report.Section{Title: "How the figures are taken", Body: fmt.Sprintf(`- **Processes.** rockstream runs as users run it: the binary %s (`+"`archive`, `standby`, `base`, `restore`"+`) in child processes. The harness itself plays the application (a RocksDB database written with grocksdb; WAL on, no sync per write, WAL_ttl_seconds 3600) and the reader of the standby.
- **Stores.** file:// folders in the work folder, and a private MinIO (%s) on loopback, on the same cores. Every program that talks to MinIO goes through a counting reverse proxy of its own (internal/bench/s3count), which is how requests are counted; the raw-put and plain-GET baselines go through one too.
- **Lag.** The writer commits a batch every %v: the key lag/<n> holding the commit's time, and payload puts of %d-byte values making up the rate. The reader opens the standby's folder as a RocksDB secondary instance (as the README tells users to read a standby), catches up every 2 ms and notes when each lag/<n> becomes readable: "visible" means readable by another process, not only applied. The archiver runs with --segment-age as the row says and its default 10 ms --poll; the standby with --poll %v. Each rate has a %v warm-up, then %d runs of %v (about %d commits each); p50 and p99 are taken per run.
- **Litestream.** %s@%s, built by the harness with go install (cached under ~/.cache/rockstream), replicating a SQLite database (WAL mode, synchronous NORMAL) to its own MinIO bucket with sync-interval = the segment age and monitor-interval 100 ms (at the archiver's 10 ms poll Litestream writes an LTX file every 10 ms and its follower, which fetches them one by one, fell 2 to 3 s behind on MinIO in trials; at 100 ms and 250 ms it kept up equally well), and followed by `+"`litestream restore -f -follow-interval %v`"+` (its follow mode, since v0.5.9). The SQLite writer (internal/bench/sqliteload, a module of its own with modernc.org/sqlite) commits every %v a row of the commit's number and time plus 1000-byte payload rows of the same data at the same byte rate, and reads the follower's file, opened afresh every 2 ms (Litestream writes its pages directly into it, so a connection's cache cannot be trusted).
- **Memory.** Peak RSS is VmHWM from /proc/PID/status, read every 20 ms while the process runs (wait4's ru_maxrss counts the harness's own memory, shared between fork and exec).
- **Profiles.** The first run of each figure runs rockstream with --cpu-profile; the profiles of missed figures are shown below (`+"`go tool pprof -top`"+`).
- **Runs.** %d per figure; ratios are taken run by run against the baseline of the same run. MB is 10^6 bytes, MiB 2^20.`,
		"`"+b.cfg.Binary+"`", "`"+mustBinary()+"`", commitPeriod, valueSize, b.cfg.LagPoll, b.cfg.LagWarmup, b.cfg.Runs, b.cfg.LagWindow, int(b.cfg.LagWindow/commitPeriod),
		litestreamModule, litestreamVersion, b.cfg.LagPoll, commitPeriod, b.cfg.Runs)}
	if b.wants("stream") {
		sec.Body += "\n- **Live stream.** The streaming standby's rows take the lag figure as above, with `rockstream archive --stream` (the stream " +
			"served on its --listen) and `rockstream standby --primary http://ARCHIVER`, on MinIO, at the lag rows' segment ages and rates; their " +
			"baselines are the lag rows' bucket-only standby and Litestream of the same run (measured by the stream part itself for an age the lag " +
			"part did not run). The writer slowdown with three streaming standbys is db_bench as in the slowdown row, on three like databases: " +
			"one followed by the archiver with --stream serving three standbys, one by the archiver alone, one by nothing."
	}
	return sec
}

// WriteFile writes the report to path ("-" for standard output), whole or
// not at all.
func WriteFile(doc *report.Doc, path string) error {
	md := doc.Markdown()
	if path == "-" {
		_, err := io.WriteString(os.Stdout, md)
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(md), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

var errCanceled = errors.New("canceled")
