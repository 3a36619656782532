package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/standby"
)

func standbyCommand() *cli.Command {
	return &cli.Command{
		Name:      "standby",
		Usage:     "keep a warm copy of the database, following the archive",
		ArgsUsage: "DIR",
		Description: "standby builds the database in DIR from the archive when DIR is missing or empty\n" +
			"(the latest archived state of the current timeline), or continues the database\n" +
			"that DIR holds, then applies every segment the archiver uploads, a GET of the next\n" +
			"segment key every --poll. Other processes read DIR as a RocksDB secondary instance.\n" +
			"--listen serves GET /status (JSON) and GET /metrics (Prometheus); a non-loopback\n" +
			"address needs --token, which every request must then send as 'Authorization: Bearer'.\n" +
			"SIGTERM or SIGINT finish the batch at hand, close the database and exit 0.\n\n" +
			"POST /promote (or 'rockstream promote --standby http://ADDR') promotes it: it applies\n" +
			"what the archive holds, fences the old primary, starts a new timeline and closes DIR\n" +
			"for the application to open read-write; the process then goes on as the archiver\n" +
			"of DIR (as 'rockstream archive --db DIR --writer-id ID' would) until SIGTERM.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			fromFlag(),
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9465", EnvVars: []string{"ROCKSTREAM_LISTEN"},
				Usage: "serve /status and /metrics on `ADDR` (empty: none)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"ROCKSTREAM_TOKEN"},
				Usage: "require 'Authorization: Bearer `TOKEN`' on the admin endpoint"},
			&cli.DurationFlag{Name: "poll", Value: 100 * time.Millisecond, EnvVars: []string{"ROCKSTREAM_POLL"},
				Usage: "look for the next segment every `D` (up to 2s while the archive is idle; every D/10 around the moment the next segment is due)"},
			&cli.StringFlag{Name: "writer-id", EnvVars: []string{"ROCKSTREAM_WRITER_ID"},
				Usage: "after a promotion, the archiver's `ID` in the manifest (default HOSTNAME:DIR, as 'archive' takes)"},
			&cli.StringFlag{Name: "work-dir", EnvVars: []string{"ROCKSTREAM_WORK_DIR"},
				Usage: "after a promotion, the archiver's work `DIR` (default: .DBNAME.rockstream beside DIR)"},
			&cli.DurationFlag{Name: "segment-age", Value: time.Second, EnvVars: []string{"ROCKSTREAM_SEGMENT_AGE"},
				Usage: "after a promotion, seal a segment this long after its first batch"},
			&cli.DurationFlag{Name: "fence-check", Value: 10 * time.Second, EnvVars: []string{"ROCKSTREAM_FENCE_CHECK"},
				Usage: "after a promotion, how often to check the manifest for a new writer"},
		},
		Action: runStandby,
	}
}

func runStandby(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError{fmt.Errorf("standby takes one argument, the DIR of the database; got %q (flags go before DIR)", c.Args().Slice())}
	}
	from, err := requireString(c, "from")
	if err != nil {
		return err
	}
	if c.Duration("poll") <= 0 {
		return usageError{fmt.Errorf("--poll %v: must be above 0", c.Duration("poll"))}
	}
	addr, token := c.String("listen"), c.String("token")
	if err := checkListen(addr, token); err != nil {
		return err
	}
	store, err := location.Open(c.Context, from, location.Options{})
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(c.Args().First())
	if err != nil {
		return usageError{err}
	}
	for _, d := range []string{"segment-age", "fence-check"} {
		if c.Duration(d) <= 0 {
			return usageError{fmt.Errorf("--%s %v: must be above zero", d, c.Duration(d))}
		}
	}
	writer := c.String("writer-id")
	if writer == "" {
		writer = standby.DefaultWriterID(dir)
	}
	sb, err := standby.New(store, standby.Options{Dir: dir, Poll: c.Duration("poll"), WriterID: writer})
	if err != nil {
		return usageError{err}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if addr != "" {
		if err := serveStandby(ctx, addr, sb.Handler(token)); err != nil {
			return err
		}
	}
	if err := sb.Run(ctx); err != nil {
		return standbyError(noArchive(err, store, from))
	}
	res, ok := sb.Promoted()
	if !ok || ctx.Err() != nil {
		return nil
	}
	return archivePromoted(ctx, c, store, dir, writer, res)
}

// archivePromoted archives DIR on the promoted timeline until ctx ends: the
// standby process becomes the new primary's sidecar archiver.
func archivePromoted(ctx context.Context, c *cli.Context, store objstore.Store, dir, writer string, res promote.Result) error {
	work := c.String("work-dir")
	if work == "" {
		work = filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".rockstream")
	}
	src, err := rocks.NewFollowerSource(dir, filepath.Join(work, "secondary"))
	if err != nil {
		return fmt.Errorf("archive the promoted database %s: %w", dir, err)
	}
	defer src.Close()
	a, err := archive.New(src, store, archive.Options{WriterID: writer, WorkDir: work,
		SegmentAge: c.Duration("segment-age"), FenceCheck: c.Duration("fence-check")})
	if err != nil {
		return err
	}
	slog.Info("promoted: archiving the new primary", "db", dir, "timeline", res.Timeline, "writer", writer, "work_dir", work)
	return a.Run(ctx)
}

// standbyError marks the refusals of DIR as bad usage.
func standbyError(err error) error {
	if errors.Is(err, standby.ErrNotStandby) || errors.Is(err, standby.ErrOtherArchive) {
		return usageError{err}
	}
	return err
}

// checkListen refuses a non-loopback address without a token.
func checkListen(addr, token string) error {
	if addr == "" || token != "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageError{fmt.Errorf("--listen %q: %w", addr, err)}
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageError{fmt.Errorf("--listen %s is not a loopback address: set --token (or ROCKSTREAM_TOKEN) to expose the admin endpoint", addr)}
}

// serveStandby serves h on addr until ctx ends.
func serveStandby(ctx context.Context, addr string, h http.Handler) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError{fmt.Errorf("--listen %s: %w", addr, err)}
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	slog.Info("serving the standby's admin endpoint", "addr", l.Addr().String())
	return nil
}
