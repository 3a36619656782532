// Command rockstream-bench measures rockstream against its baselines on
// this machine and writes BENCHMARKS.md. `make bench` runs the short
// version (a few minutes), `make bench-full` the full one. Run
// `go run ./cmd/rockstream-bench --help`.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/internal/bench"
)

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	app := &cli.App{
		Name:  "rockstream-bench",
		Usage: "measure rockstream against its baselines and write BENCHMARKS.md",
		Description: "rockstream-bench runs the archiver, the standby, base and restore through the\n" +
			"rockstream binary (--binary), each against a baseline measured in the same run:\n" +
			"zstd alone and a raw PutObject (archive throughput), db_bench without the archiver\n" +
			"(writer slowdown), Litestream and the bucket-only standby (lag, live stream), RocksDB's BackupEngine (base, restore), a plain\n" +
			"parallel GET (restore), the writer's own rate (restore replay, standby apply). It starts its own MinIO on loopback, works in one temporary\n" +
			"folder and removes it at the end (also on Ctrl-C). It needs db_bench and ldb\n" +
			"(scripts/setup.sh), MinIO (scripts/setup.sh --test) and the Go module proxy (to\n" +
			"build Litestream once). Exit status: 0 when every figure was measured (missed goals\n" +
			"included), 1 when a part failed (the report says which), 2 on bad usage.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "full", EnvVars: []string{"ROCKSTREAM_BENCH_FULL"},
				Usage: "the full version: a 1 GiB database, 512 MiB of WAL, 5 runs (default: the short one)"},
			&cli.IntFlag{Name: "runs", EnvVars: []string{"ROCKSTREAM_BENCH_RUNS"}, Usage: "`N` runs per figure (default 3 short, 5 full)"},
			&cli.StringFlag{Name: "out", Value: "BENCHMARKS.md", EnvVars: []string{"ROCKSTREAM_BENCH_OUT"},
				Usage: "write the report to `FILE` (- for standard output)"},
			&cli.StringFlag{Name: "only", EnvVars: []string{"ROCKSTREAM_BENCH_ONLY"},
				Usage: "run only these `PARTS`, comma-separated: " + strings.Join(bench.Groups, ", ")},
			&cli.StringFlag{Name: "binary", Value: "bin/rockstream", EnvVars: []string{"ROCKSTREAM_BENCH_BINARY"},
				Usage: "the rockstream `BINARY` to measure (make bench builds it)"},
			&cli.StringFlag{Name: "work-dir", Value: os.TempDir(), EnvVars: []string{"ROCKSTREAM_BENCH_WORK_DIR"},
				Usage: "make the temporary folder in `DIR` (it needs a few GiB; the full version about 10)"},
			&cli.BoolFlag{Name: "keep", EnvVars: []string{"ROCKSTREAM_BENCH_KEEP"}, Usage: "keep the temporary folder (logs, profiles)"},
			&cli.StringFlag{Name: "command", EnvVars: []string{"ROCKSTREAM_BENCH_COMMAND"},
				Usage: "the `COMMAND` line to name in the report (default: this one)"},
		},
		Action: action,
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return usageError{err}
		},
	}
	if err := app.Run(args); err != nil {
		fmt.Fprintf(os.Stderr, "rockstream-bench: %v\n", err)
		var u usageError
		if errors.As(err, &u) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError struct{ error }

func action(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("no arguments expected, got %q", c.Args().Slice())}
	}
	cfg, err := config(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	doc, runErr := bench.Run(ctx, cfg)
	if doc != nil && ctx.Err() == nil {
		if err := bench.WriteFile(doc, c.String("out")); err != nil {
			return err
		}
		if c.String("out") != "-" {
			fmt.Fprintf(os.Stderr, "rockstream-bench: wrote %s\n", c.String("out"))
		}
	}
	return runErr
}

func config(c *cli.Context) (bench.Config, error) {
	cfg := bench.Short()
	if c.Bool("full") {
		cfg = bench.Full()
	}
	if n := c.Int("runs"); c.IsSet("runs") {
		if n < 1 {
			return cfg, usageError{fmt.Errorf("--runs %d: want at least 1", n)}
		}
		cfg.Runs = n
	}
	if s := c.String("only"); s != "" {
		for _, g := range strings.Split(s, ",") {
			if !contains(bench.Groups, strings.TrimSpace(g)) {
				return cfg, usageError{fmt.Errorf("--only %q: unknown part %q; want some of %s", s, g, strings.Join(bench.Groups, ", "))}
			}
			cfg.Only = append(cfg.Only, strings.TrimSpace(g))
		}
	}
	bin, err := filepath.Abs(c.String("binary"))
	if err != nil {
		return cfg, usageError{err}
	}
	if _, err := os.Stat(bin); err != nil {
		return cfg, usageError{fmt.Errorf("--binary %s: %w (run make build)", bin, err)}
	}
	cfg.Binary, cfg.WorkDir, cfg.Keep, cfg.Log = bin, c.String("work-dir"), c.Bool("keep"), os.Stderr
	cfg.Command = c.String("command")
	if cfg.Command == "" {
		cfg.Command = strings.Join(os.Args, " ")
	}
	return cfg, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
