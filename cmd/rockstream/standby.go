package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/standby"
	"github.com/rockstream/rockstream/stream"
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
			"SIGTERM or SIGINT finish the batch at hand, flush and close the database (every batch in its SST files, none left in its WAL) and exit 0.\n\n" +
			"POST /promote (or 'rockstream promote --standby http://ADDR') promotes it: it applies\n" +
			"what the archive holds, fences the old primary, starts a new timeline and closes DIR\n" +
			"for the application to open read-write; the process then goes on as the archiver\n" +
			"of DIR (as 'rockstream archive --db DIR --writer-id ID' would) until SIGTERM.\n" +
			"The promotion is recorded in DIR/STANDBY-TIMELINE: started again on DIR (a restart),\n" +
			"standby does not open DIR but archives it at once, with the promotion's writer ID.\n\n" +
			fmt.Sprintf(configHelp, "standby", "from, dir (the DIR argument), listen (each its own, or\n   empty for none)", "log-level and log-format") + "\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			fromFlag(), keyFileFlag(),
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9465", EnvVars: []string{"ROCKSTREAM_LISTEN"},
				Usage: "serve GET /status, GET /metrics and POST /promote on `ADDR` (empty: none)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"ROCKSTREAM_TOKEN"},
				Usage: "require 'Authorization: Bearer `TOKEN`' on the admin endpoint (a token on the command line shows in ps: prefer --token-file)"},
			tokenFileFlag(),
			durationFlag(&cli.DurationFlag{Name: "poll", Value: 100 * time.Millisecond, EnvVars: []string{"ROCKSTREAM_POLL"},
				Usage: "look for the next segment every `D` (up to 2s while the archive is idle; every D/10 around the moment the next segment is due)"}),
			&cli.StringFlag{Name: "writer-id", EnvVars: []string{"ROCKSTREAM_WRITER_ID"},
				Usage: "after a promotion, the archiver's `ID` in the manifest (default HOSTNAME:DIR, as 'archive' takes)"},
			&cli.StringFlag{Name: "work-dir", EnvVars: []string{"ROCKSTREAM_WORK_DIR"},
				Usage: "after a promotion, the archiver's work `DIR` (default: .DBNAME.rockstream beside DIR)"},
			durationFlag(&cli.DurationFlag{Name: "segment-age", Value: time.Second, EnvVars: []string{"ROCKSTREAM_SEGMENT_AGE"},
				Usage: "after a promotion, seal a segment this long after its first batch"}),
			durationFlag(&cli.DurationFlag{Name: "fence-check", Value: 10 * time.Second, EnvVars: []string{"ROCKSTREAM_FENCE_CHECK"},
				Usage: "after a promotion, how often to check the manifest for a new writer"}),
			readyLagFlag("the standby follows the archive within"),
			&cli.StringFlag{Name: "primary", EnvVars: []string{"ROCKSTREAM_PRIMARY"},
				Usage: "also apply the live stream of the primary's archiver (started with --stream) at `URL`: http://HOST:PORT (its --listen), or http://HOST:PORT/stream/NAME for a database of its config file; the bucket is read whenever the stream is down"},
			&cli.StringFlag{Name: "primary-ca", EnvVars: []string{"ROCKSTREAM_PRIMARY_CA"},
				Usage: "trust the certificate authority (or self-signed certificate) in PEM `FILE` for an https --primary, besides the system's"},
			&cli.StringFlag{Name: "primary-token-file", EnvVars: []string{"ROCKSTREAM_PRIMARY_TOKEN_FILE"},
				Usage: "send the token in `FILE` (its first line; mode 0600 or 0400) to the --primary stream: the archiver's --token"},
			durationFlag(&cli.DurationFlag{Name: "stream-drain", Value: 5 * time.Second, EnvVars: []string{"ROCKSTREAM_STREAM_DRAIN"},
				Usage: "how long a promotion waits for the --primary stream to hand over what the old primary's archiver read"}),
			&cli.StringFlag{Name: "catch-up", Value: "32MiB", EnvVars: []string{"ROCKSTREAM_CATCH_UP"},
				Usage: "a standby at least `SIZE` of segments behind (16MiB, 1GiB...), when it starts or falls behind, replays them as a restore does, several times faster, then follows; off: never"},
			summaryFlag(), configFlag(),
		},
		Action: runStandby,
	}
}

func runStandby(c *cli.Context) error {
	if c.String("config") != "" {
		return runStandbyConfig(c)
	}
	if c.NArg() != 1 {
		return usageError{fmt.Errorf("standby takes one argument, the DIR of the database; got %q (flags go before DIR)", c.Args().Slice())}
	}
	j, err := prepareStandby(c, c.Args().First(), "", slog.Default())
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := j.serve(ctx); err != nil {
		return err
	}
	return j.run(ctx)
}

// standbyJob is one standby, ready to run.
type standbyJob struct {
	c           *cli.Context // its settings
	log         *slog.Logger
	from, dir   string
	addr, token string
	writer      string
	store       objstore.Store
	sb          *standby.Standby
}

// prepareStandby checks the settings in c and opens the archive, for a
// standby into dir; name, when set, labels its metrics.
func prepareStandby(c *cli.Context, dir, name string, log *slog.Logger) (*standbyJob, error) {
	token, err := tokenOf(c)
	if err != nil {
		return nil, err
	}
	j := &standbyJob{c: c, log: log, addr: c.String("listen"), token: token}
	if j.from, err = requireString(c, "from"); err != nil {
		return nil, err
	}
	for _, d := range []string{"poll", "segment-age", "fence-check"} {
		if c.Duration(d) <= 0 {
			return nil, usageError{fmt.Errorf("--%s %v: must be above zero", d, c.Duration(d))}
		}
	}
	if err := checkListen(j.addr, j.token); err != nil {
		return nil, err
	}
	if j.store, err = openArchive(c.Context, c, j.from); err != nil {
		return nil, err
	}
	if j.dir, err = filepath.Abs(dir); err != nil {
		return nil, usageError{err}
	}
	if j.writer = c.String("writer-id"); j.writer == "" {
		j.writer = standby.DefaultWriterID(j.dir)
	}
	if c.Duration("ready-max-lag") <= 0 {
		return nil, usageError{fmt.Errorf("--ready-max-lag %v: must be above zero", c.Duration("ready-max-lag"))}
	}
	client, err := streamClient(c)
	if err != nil {
		return nil, err
	}
	catchUp := int64(-1)
	if v := c.String("catch-up"); v != "off" {
		if catchUp, err = parseBytes("catch-up", v); err != nil {
			return nil, usageError{fmt.Errorf("%w, or off", err)}
		}
	}
	opts := standby.Options{CatchUpBytes: catchUp, Dir: j.dir, Poll: c.Duration("poll"), WriterID: j.writer, Logger: log, ReadyLag: c.Duration("ready-max-lag"),
		Stream: client, StreamDrain: c.Duration("stream-drain"),
		Collectors: []prometheus.Collector{buildInfoCollector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})}}
	if name == "" {
		opts.Progress = newProgress(c, "bootstrap")
	} else {
		opts.Labels = map[string]string{"database": name} // and no progress bar: several would mix
	}
	j.sb, err = standby.New(j.store, opts)
	if err != nil {
		return nil, usageError{err}
	}
	return j, nil
}

// serve serves the admin endpoint, if any, until ctx ends.
func (j *standbyJob) serve(ctx context.Context) error {
	if j.addr == "" {
		return nil
	}
	return serveStandby(ctx, j.log, j.addr, j.sb.Handler(j.token))
}

// run follows the archive until ctx ends; after a promotion, it archives
// the new primary.
func (j *standbyJob) run(ctx context.Context) error {
	sctx, cancel := context.WithCancel(ctx)
	go summarizeStandby(sctx, j.sb, j.c.Duration("summary-interval"), j.log)
	err := j.sb.Run(ctx)
	cancel()
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return nil // stopped while it started
	}
	if err != nil {
		return standbyError(noArchive(err, j.store, j.from))
	}
	res, ok := j.sb.Promoted()
	if !ok || ctx.Err() != nil {
		return nil
	}
	return archivePromoted(ctx, j, res)
}

// archivePromoted archives DIR on the promoted timeline until ctx ends: the
// standby process becomes the new primary's sidecar archiver.
func archivePromoted(ctx context.Context, j *standbyJob, res promote.Result) error {
	work := j.c.String("work-dir")
	if work == "" {
		work = archive.DefaultWorkDir(j.dir)
	}
	src, err := rocks.NewFollowerSource(j.dir, filepath.Join(work, "secondary"))
	if err != nil {
		return fmt.Errorf("archive the promoted database %s: %w", j.dir, err)
	}
	defer src.Close()
	// The promotion's writer ID, which the manifest names: after a restart
	// it may differ from this run's default (HOSTNAME:DIR).
	a, err := archive.New(src, j.store, archive.Options{WriterID: res.WriterID, ClaimEpoch: j.sb.ClaimEpoch(), WorkDir: work, Logger: j.log,
		SegmentAge: j.c.Duration("segment-age"), FenceCheck: j.c.Duration("fence-check"), SummaryEvery: summaryEvery(j.c)})
	if err != nil {
		return err
	}
	if res.WriterID != j.writer {
		j.log.Warn("archiving with the promotion's writer id, not --writer-id", "writer", res.WriterID, "writer_id_flag", j.writer)
	}
	j.log.Info("promoted: archiving the new primary", "db", j.dir, "timeline", res.Timeline, "writer", res.WriterID, "work_dir", work)
	return a.Run(ctx)
}

// standbyError marks the refusals of DIR as bad usage.
func standbyError(err error) error {
	if errors.Is(err, standby.ErrNotStandby) || errors.Is(err, standby.ErrOtherArchive) {
		return usageError{err}
	}
	return err
}

// streamClient is the client of --primary, if given.
func streamClient(c *cli.Context) (*stream.Client, error) {
	raw := c.String("primary")
	if raw == "" {
		if c.String("primary-token-file") != "" {
			return nil, usageError{errors.New("--primary-token-file without --primary")}
		}
		return nil, nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return nil, usageError{errors.New("--primary: want http://HOST:PORT or http://HOST:PORT/stream/NAME (the archiver's --listen), without credentials or query")}
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/stream"
	}
	token := ""
	if path := c.String("primary-token-file"); path != "" {
		if token, err = readTokenFile("--primary-token-file", path); err != nil {
			return nil, err
		}
	}
	client := &stream.Client{URL: u.String(), Token: token}
	if ca := c.String("primary-ca"); ca != "" {
		if u.Scheme != "https" {
			return nil, usageError{errors.New("--primary-ca needs an https --primary")}
		}
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, usageError{fmt.Errorf("--primary-ca: %w", err)}
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("--primary-ca %s: no PEM certificate in it", ca)}
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		client.HTTP = &http.Client{Transport: tr}
	}
	return client, nil
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
func serveStandby(ctx context.Context, log *slog.Logger, addr string, h http.Handler) error {
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
	log.Info("serving the standby's admin endpoint", "addr", l.Addr().String())
	return nil
}
