package main

import (
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/prune"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/standby"
	"github.com/rockstream/rockstream/stream"
)

func dbFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "db", Aliases: []string{"d"}, EnvVars: []string{"ROCKSTREAM_DB"},
		Usage: "the RocksDB `DIR` that another program writes"}
}

func toFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "to", Aliases: []string{"t"}, EnvVars: []string{"ROCKSTREAM_TO"},
		Usage: "the archive's `URL`: file:///PATH or s3://BUCKET/PREFIX[?endpoint=...]"}
}

func sourceFlags() []cli.Flag {
	return []cli.Flag{
		dbFlag(), toFlag(), keyFileFlag(),
		&cli.StringFlag{Name: "wal-dir", EnvVars: []string{"ROCKSTREAM_WAL_DIR"},
			Usage: "the `DIR` of the database's WAL files, when the writer keeps them apart (its wal_dir option) (default: the wal_dir of the database's newest OPTIONS file, else --db)"},
		&cli.StringFlag{Name: "work-dir", EnvVars: []string{"ROCKSTREAM_WORK_DIR"},
			Usage: "`DIR` for base checkpoints; on the database's file system so checkpoints hard-link (default: .DBNAME.rockstream beside DIR)"},
		&cli.BoolFlag{Name: "allow-other-database", EnvVars: []string{"ROCKSTREAM_ALLOW_OTHER_DATABASE"},
			Usage: "archive into an archive of another database identity (after the database was replaced)"},
	}
}

func archiveCommand() *cli.Command {
	c := &cli.Command{
		Name:  "archive",
		Usage: "ship a live RocksDB to the archive, next to the program that writes it",
		Description: "archive reads every write batch of the database in --db from its WAL files as\n" +
			"they are written (the program that writes it needs no change, and no RocksDB instance\n" +
			"is opened: a base is taken by copying files), and uploads\n" +
			"them in sealed, compressed, checksummed segments to --to, with base copies of the\n" +
			"database. It runs until SIGTERM or SIGINT, then uploads what it has read and exits 0.\n\n" +
			"The writer must keep its WAL for a while after each flush: set WAL_ttl_seconds\n" +
			"(e.g. 3600) or WAL_size_limit_MB in its options, or batches can be lost to the archive\n" +
			"(recorded as holes). A restart continues exactly where the archive ends.\n\n" +
			fmt.Sprintf(configHelp, "archiver", "db, to", "log-level, log-format, nice and listen") + "\n\n" + exitCodesHelp,
		Flags: append(sourceFlags(),
			&cli.StringFlag{Name: "segment-size", Value: "16MiB", EnvVars: []string{"ROCKSTREAM_SEGMENT_SIZE"},
				Usage: "seal a segment once its batches reach this `SIZE` (counted before compression)"},
			durationFlag(&cli.DurationFlag{Name: "segment-age", Value: time.Second, EnvVars: []string{"ROCKSTREAM_SEGMENT_AGE"},
				Usage: "seal a segment this long after its first batch: the least that batch waits before its upload; " +
					"a standby lags by this plus the upload, its --poll and the apply"}),
			durationFlag(&cli.DurationFlag{Name: "poll", Value: 10 * time.Millisecond, EnvVars: []string{"ROCKSTREAM_POLL"},
				Usage: "how often to look for new writes"}),
			durationFlag(&cli.DurationFlag{Name: "base-interval", Value: 24 * time.Hour, EnvVars: []string{"ROCKSTREAM_BASE_INTERVAL"},
				Usage: "take a base this long after the last"}),
			&cli.StringFlag{Name: "base-wal-bytes", Value: "4GiB", EnvVars: []string{"ROCKSTREAM_BASE_WAL_BYTES"},
				Usage: "take a base after this `SIZE` of WAL archived since the last"},
			durationFlag(&cli.DurationFlag{Name: "fence-check", Value: 10 * time.Second, EnvVars: []string{"ROCKSTREAM_FENCE_CHECK"},
				Usage: "how often to check the manifest for a new writer (a promotion)"}),
			&cli.StringFlag{Name: "writer-id", EnvVars: []string{"ROCKSTREAM_WRITER_ID"},
				Usage: "this archiver's `ID` in the manifest; a restart with the same ID continues (default HOSTNAME:DIR, DIR made absolute)"},
			&cli.BoolFlag{Name: "takeover", EnvVars: []string{"ROCKSTREAM_TAKEOVER"},
				Usage: "replace another writer of the archive (a primary moved to a new machine)"},
			&cli.IntFlag{Name: "nice", Value: 10, EnvVars: []string{"ROCKSTREAM_NICE"},
				Usage: "CPU priority of the archiver (0 to 19; 0 keeps the normal priority): at 10 it takes only the CPU that the writer leaves, and lags instead of slowing the writer"},
			&cli.StringFlag{Name: "listen", Value: defaultArchiveListen, EnvVars: []string{"ROCKSTREAM_LISTEN"},
				Usage: "serve /metrics (Prometheus), /status (JSON), /healthz and /readyz (probes) on this `ADDR` (\"\": not at all); when the default address is taken, the archiver warns and archives without them"},
			readyLagFlag("the archive holds the database's writes within"),
			&cli.BoolFlag{Name: "stream", EnvVars: []string{"ROCKSTREAM_STREAM"},
				Usage: "also serve the live stream on --listen (GET /stream; /stream/NAME per database of a config file): every batch as it is read, before its segment is sealed, to standbys started with --primary"},
			&cli.StringFlag{Name: "stream-buffer", Value: "64MiB", EnvVars: []string{"ROCKSTREAM_STREAM_BUFFER"},
				Usage: "the `SIZE` of the batches read last that the stream keeps for standbys (one a standby lacks is read from the bucket)"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"ROCKSTREAM_TOKEN"},
				Usage: "require 'Authorization: Bearer `TOKEN`' on GET /stream (needed with --stream on a non-loopback --listen; a token on the command line shows in ps: prefer --token-file)"},
			tokenFileFlag(),
			&cli.StringFlag{Name: "tls-cert", EnvVars: []string{"ROCKSTREAM_TLS_CERT"},
				Usage: "serve --listen over HTTPS with the certificate (chain) in PEM `FILE`, with --tls-key (the stream, and /metrics, /status and the probes too)"},
			&cli.StringFlag{Name: "tls-key", EnvVars: []string{"ROCKSTREAM_TLS_KEY"}, Usage: "the private key in PEM `FILE` of --tls-cert"},
			summaryFlag(), configFlag(),
		),
		Action: runArchive,
	}
	c.Flags = append(c.Flags, retentionFlags()...)
	return c
}

// retentionFlags are the archiver's scheduled prune: 'rockstream prune'
// with these values, every --retention-interval, while it runs.
func retentionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "retention-keep-last", EnvVars: []string{"ROCKSTREAM_RETENTION_KEEP_LAST"},
			Usage: "prune while archiving: keep the `N` newest bases of each timeline's history (see 'rockstream prune --help')"},
		&cli.StringFlag{Name: "retention-keep-within", EnvVars: []string{"ROCKSTREAM_RETENTION_KEEP_WITHIN"},
			Usage: "prune while archiving: keep every base taken within this `DURATION` (7d, 36h) and the newest one before it"},
		&cli.StringFlag{Name: "retention-grace", Value: "1h", EnvVars: []string{"ROCKSTREAM_RETENTION_GRACE"},
			Usage: "the prune's grace `DURATION`: what it drops is deleted only this long after (more than your longest restore)"},
		&cli.StringFlag{Name: "retention-interval", Value: "1h", EnvVars: []string{"ROCKSTREAM_RETENTION_INTERVAL"},
			Usage: "prune at start and then every `DURATION`, when a --retention-keep-* flag is set"},
	}
}

// retentionOptions sets the archiver's scheduled prune from the flags, if
// a --retention-keep-* flag is set.
func retentionOptions(c *cli.Context, opts *archive.Options) error {
	p, ok, err := retentionPolicy(c, "retention-keep-last", "retention-keep-within")
	if err != nil || !ok {
		return err
	}
	grace, err := graceFlag(c, "retention-grace")
	if err != nil {
		return err
	}
	interval, err := prune.ParseDuration(c.String("retention-interval"))
	if err != nil || interval <= 0 {
		return usageError{fmt.Errorf("--retention-interval %q: want a duration above zero (1h, 6h, 1d)", c.String("retention-interval"))}
	}
	opts.Retention = &prune.Options{Policy: p, Grace: grace}
	opts.RetentionInterval = interval
	return nil
}

// opened is a database and an archive location, checked.
type opened struct {
	db, workDir string
	store       objstore.Store
	src         *rocks.FollowerSource
}

func openSource(c *cli.Context, log *slog.Logger) (*opened, error) {
	if c.NArg() > 0 {
		return nil, usageError{fmt.Errorf("%s takes no arguments, got %q", c.Command.Name, c.Args().Slice())}
	}
	db, err := requireString(c, "db")
	if err != nil {
		return nil, err
	}
	to, err := requireString(c, "to")
	if err != nil {
		return nil, err
	}
	if db, err = filepath.Abs(db); err != nil {
		return nil, usageError{err}
	}
	if _, err := rocks.ReadIdentity(db); err != nil {
		return nil, usageError{fmt.Errorf("--db %s: %w", db, err)}
	}
	if _, err := location.Parse(to); err != nil {
		return nil, err
	}
	warnWALRetention(log, db)
	store, err := openArchive(c.Context, c, to)
	if err != nil {
		return nil, err
	}
	o := &opened{db: db, store: store, workDir: c.String("work-dir")}
	if o.workDir == "" {
		o.workDir = archive.DefaultWorkDir(db)
	}
	walDir := c.String("wal-dir")
	if walDir != "" {
		if walDir, err = filepath.Abs(walDir); err != nil {
			return nil, usageError{fmt.Errorf("--wal-dir %s: %w", c.String("wal-dir"), err)}
		}
		if fi, err := os.Stat(walDir); err != nil || !fi.IsDir() {
			return nil, usageError{fmt.Errorf("--wal-dir %s: not a folder (%v)", walDir, err)}
		}
	}
	if o.src, err = rocks.NewFollowerSourceWAL(db, walDir, filepath.Join(o.workDir, "secondary")); err != nil {
		return nil, fmt.Errorf("follow %s: %w", db, err)
	}
	return o, nil
}

// warnWALRetention warns when the writer deletes its WAL at each flush.
func warnWALRetention(log *slog.Logger, db string) {
	ttl, sizeMB, file, err := rocks.ReadWALRetention(db)
	if err != nil {
		log.Warn("cannot read the database's options to check WAL retention", "db", db, "error", err)
		return
	}
	if ttl == 0 && sizeMB == 0 {
		log.Warn("the writer keeps no WAL history: RocksDB deletes each WAL file at the next flush, and batches the archiver has not read by then are lost to point-in-time restore",
			"options_file", file, "fix", "set WAL_ttl_seconds (e.g. 3600) or WAL_size_limit_MB in the writer's DBOptions")
	}
}

func archiveOptions(c *cli.Context, o *opened) (archive.Options, error) {
	size, err := parseBytes("segment-size", c.String("segment-size"))
	if err != nil {
		return archive.Options{}, err
	}
	baseBytes, err := parseBytes("base-wal-bytes", c.String("base-wal-bytes"))
	if err != nil {
		return archive.Options{}, err
	}
	for _, d := range []string{"segment-age", "poll", "base-interval", "fence-check", "ready-max-lag"} {
		if c.Duration(d) <= 0 {
			return archive.Options{}, usageError{fmt.Errorf("--%s %v: must be above zero", d, c.Duration(d))}
		}
	}
	writer := c.String("writer-id")
	if writer == "" {
		writer = standby.DefaultWriterID(o.db)
	}
	opts := archive.Options{
		WriterID: writer, Takeover: c.Bool("takeover"), AllowOtherDatabase: c.Bool("allow-other-database"),
		SegmentSize: int(size), SegmentAge: c.Duration("segment-age"), Poll: c.Duration("poll"),
		BaseInterval: c.Duration("base-interval"), BaseWALBytes: baseBytes, FenceCheck: c.Duration("fence-check"),
		WorkDir: o.workDir, Progress: newProgress(c, "base upload"), SummaryEvery: summaryEvery(c),
	}
	return opts, retentionOptions(c, &opts)
}

// memoryLimit is the archiver's soft limit for the Go heap, unless
// GOMEMLIMIT says otherwise: the garbage collector works harder near it, so
// the sidecar stays small next to the database it serves.
const memoryLimit = 96 << 20

func runArchive(c *cli.Context) error {
	if c.String("config") != "" {
		return runArchiveConfig(c)
	}
	if err := limitArchiver(c, 1); err != nil {
		return err
	}
	j, err := prepareArchive(c, "", slog.Default())
	if err != nil {
		return err
	}
	defer j.o.src.Close()
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := listenArchive(ctx, c, []*archiveJob{j}); err != nil {
		return err
	}
	return j.run(ctx)
}

// limitArchiver sets the memory limit of n archivers and the CPU priority.
func limitArchiver(c *cli.Context, n int) error {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(n) * memoryLimit)
	}
	if n := c.Int("nice"); n < 0 || n > 19 {
		return usageError{fmt.Errorf("--nice %d: want 0 to 19", n)}
	} else if err := renice(n); err != nil {
		slog.Warn("cannot lower the archiver's CPU priority", "error", err)
	}
	return nil
}

// archiveJob is one database being archived.
type archiveJob struct {
	name     string // in a config file; "" otherwise
	log      *slog.Logger
	o        *opened
	a        *archive.Archiver
	readyLag time.Duration // --ready-max-lag
	uploads  prometheus.Histogram
	hub      *stream.Hub // --stream
}

// prepareArchive checks the settings in c and opens the database and the
// archive.
func prepareArchive(c *cli.Context, name string, log *slog.Logger) (*archiveJob, error) {
	o, err := openSource(c, log)
	if err != nil {
		return nil, err
	}
	opts, err := archiveOptions(c, o)
	if err == nil {
		opts.Logger = log
		if name != "" {
			opts.Progress = nil // several bars would mix
		}
		uploads := uploadHistogram()
		opts.OnUpload = func(d time.Duration) { uploads.Observe(d.Seconds()) }
		if c.Bool("stream") {
			size, perr := parseBytes("stream-buffer", c.String("stream-buffer"))
			if perr != nil {
				o.src.Close()
				return nil, perr
			}
			opts.Stream = stream.NewHub(int(size))
		}
		var a *archive.Archiver
		if a, err = archive.New(o.src, o.store, opts); err == nil {
			return &archiveJob{name: name, log: log, o: o, a: a, uploads: uploads, hub: opts.Stream, readyLag: c.Duration("ready-max-lag")}, nil
		}
	}
	o.src.Close()
	return nil, err
}

func (j *archiveJob) run(ctx context.Context) error {
	j.log.Info("archiving", "db", j.o.db, "to", j.o.store.String(), "work_dir", j.o.workDir)
	return j.a.Run(ctx)
}

func baseCommand() *cli.Command {
	return &cli.Command{
		Name:  "base",
		Usage: "take a base copy of the database now",
		Description: "base checkpoints the database in --db and uploads the files that the archive lacks\n" +
			"(SST files are shared between bases), then adds the base to the manifest. A running\n" +
			"archiver is not disturbed. On an empty location it starts the archive.\n\n" +
			exitCodesHelp,
		Flags: append(sourceFlags(), jsonFlag("print the base as one JSON document instead of text: location, timeline, "+
			"sequence, time, file_list, size (bytes), file_count, digest (as status --json lists bases)")),
		Action: runBase,
	}
}

func runBase(c *cli.Context) error {
	o, err := openSource(c, slog.Default())
	if err != nil {
		return err
	}
	defer o.src.Close()
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	b, err := archive.TakeBase(ctx, o.src, o.store, archive.Options{
		WorkDir: o.workDir, AllowOtherDatabase: c.Bool("allow-other-database"), Progress: newProgress(c, "base upload"),
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, baseJSON{Location: o.store.String(), Base: b})
	}
	fmt.Fprintf(c.App.Writer, "base taken: timeline %d, sequence %d, %d files, %s\n", b.Timeline, b.Sequence, b.FileCount, bytesText(b.Size))
	return nil
}
