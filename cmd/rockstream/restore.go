package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/restore"
)

func concurrencyFlag() *cli.IntFlag {
	return &cli.IntFlag{Name: "concurrency", Value: 4, EnvVars: []string{"ROCKSTREAM_CONCURRENCY"},
		Usage: "read `N` objects at once (and N ranged gets per base file)"}
}

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "build the database as it was at any archived point",
		ArgsUsage: "DIR",
		Description: "restore builds in DIR a RocksDB database holding exactly the batches of a timeline\n" +
			"up to a point: --to-seq N (the last batch that ends at or before N; a batch is never\n" +
			"split), --to-time T (the last batch archived at or before T, RFC 3339; a time after\n" +
			"the last archived batch gives the latest state), or without either the latest\n" +
			"archived state. It downloads a base, checks every file's size and SHA-256, replays\n" +
			"the segments after it, and checks the result. DIR must not exist or be empty;\n" +
			"--force replaces its contents, only once the new database is complete.\n" +
			"Nothing is left half-written: a failure removes the temporary folder beside DIR.\n" +
			"The batches are replayed by RocksDB's own recovery, with the database's own options\n" +
			"(its OPTIONS file: merge operators, compaction, compression). A database whose options\n" +
			"name a merge operator or comparator of the application's own is refused before\n" +
			"anything is written; --hand-off then writes the base and the batches as WAL files\n" +
			"without opening the database, for the application's own RocksDB to replay at its\n" +
			"first open.\n" +
			"'rockstream status' shows the restorable ranges.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			fromFlag(),
			&cli.StringFlag{Name: "to-seq", EnvVars: []string{"ROCKSTREAM_TO_SEQ"}, Usage: "restore up to sequence `N`"},
			&cli.StringFlag{Name: "to-time", EnvVars: []string{"ROCKSTREAM_TO_TIME"}, Usage: "restore the state archived at `TIME` (RFC 3339, e.g. 2025-03-01T10:00:00Z)"},
			&cli.StringFlag{Name: "timeline", EnvVars: []string{"ROCKSTREAM_TIMELINE"}, Usage: "restore timeline `K` (default: the newest that holds the target)"},
			&cli.BoolFlag{Name: "force", EnvVars: []string{"ROCKSTREAM_FORCE"}, Usage: "replace the contents of a non-empty DIR"},
			&cli.BoolFlag{Name: "hand-off", EnvVars: []string{"ROCKSTREAM_HAND_OFF"}, Usage: "write the batches as WAL files and do not open the database: the application's own RocksDB replays them at its first open (for a custom merge operator or comparator)"},
			concurrencyFlag(),
			keyFileFlag(),
			&cli.BoolFlag{Name: "if-db-not-exists", EnvVars: []string{"ROCKSTREAM_IF_DB_NOT_EXISTS"},
				Usage: "do nothing, and exit 0, when DIR exists and holds files (for a container's entrypoint: restore only on the first start)"},
			&cli.BoolFlag{Name: "if-replica-exists", EnvVars: []string{"ROCKSTREAM_IF_REPLICA_EXISTS"},
				Usage: "do nothing, and exit 0, when the location holds no archive yet (the first start of a new database)"},
			jsonFlag("print one JSON document instead of text: restored (true), dir, timeline, sequence, time, base {timeline, " +
				"sequence, time, file_list, size, file_count, digest}, segments, batches, batch_bytes, base_bytes, segment_bytes, " +
				"hand_off, hand_off_wal_files, download_seconds, replay_seconds, finish_seconds; or {restored: false, reason} when " +
				"--if-db-not-exists or --if-replica-exists skips the restore"),
		},
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	if c.NArg() != 1 {
		hint := ""
		if slices.ContainsFunc(c.Args().Tail(), func(a string) bool { return strings.HasPrefix(a, "-") }) {
			hint = " (flags go before DIR)"
		}
		return usageError{fmt.Errorf("restore takes one argument, the DIR to restore into; got %q%s", c.Args().Slice(), hint)}
	}
	from, err := requireString(c, "from")
	if err != nil {
		return err
	}
	opts, err := restoreOptions(c)
	if err != nil {
		return err
	}
	if c.Bool("if-db-not-exists") {
		if held, err := holdsFiles(opts.Dir); err != nil || held {
			if err != nil {
				return usageError{fmt.Errorf("restore into %s: %w", opts.Dir, err)}
			}
			return skipped(c, fmt.Sprintf("%s holds files already: nothing restored (--if-db-not-exists)", opts.Dir))
		}
	}
	store, err := openArchive(c.Context, c, from)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := restore.Run(ctx, store, opts)
	if errors.Is(err, manifest.ErrNoArchive) && c.Bool("if-replica-exists") {
		return skipped(c, fmt.Sprintf("%s holds no archive: nothing restored (--if-replica-exists)", store))
	}
	if err != nil {
		return noArchive(err, store, from)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, restoreResult(res, opts.HandOff))
	}
	fmt.Fprintf(c.App.Writer, "restored timeline %d, sequence %d, archived at %s, into %s\n",
		res.Timeline, res.Sequence, stamp(res.Time), res.Dir)
	fmt.Fprintf(c.App.Writer, "  from base %d (%s), %d segments, %d batches (%s)\n",
		res.Base.Sequence, bytesText(res.BaseBytes), res.Segments, res.Batches, bytesText(res.BatchBytes))
	if opts.HandOff {
		fmt.Fprintf(c.App.Writer, "  hand-off: not opened; %d WAL files for the application's RocksDB to replay at its first open (it then reaches sequence %d)\n",
			len(res.HandOffFiles), res.Sequence)
	}
	return nil
}

// skipped says that restore did nothing, and why (its --if-* flags).
func skipped(c *cli.Context, reason string) error {
	if c.Bool("json") {
		return printJSON(c.App.Writer, struct {
			Restored bool   `json:"restored"`
			Reason   string `json:"reason"`
		}{false, reason})
	}
	_, err := fmt.Fprintln(c.App.Writer, reason)
	return err
}

// restoreJSON is what restore --json prints of a restore.
type restoreJSON struct {
	Restored bool          `json:"restored"`
	Dir      string        `json:"dir"`
	Timeline uint32        `json:"timeline"`
	Sequence uint64        `json:"sequence"`
	Time     time.Time     `json:"time"`
	Base     manifest.Base `json:"base"`
	Segments int           `json:"segments"`
	Batches  int64         `json:"batches"`
	// BatchBytes are the bytes replayed; BaseBytes and SegmentBytes
	// those downloaded.
	BatchBytes      int64   `json:"batch_bytes"`
	BaseBytes       int64   `json:"base_bytes"`
	SegmentBytes    int64   `json:"segment_bytes"`
	HandOff         bool    `json:"hand_off"`
	HandOffWALFiles int     `json:"hand_off_wal_files,omitempty"`
	DownloadSeconds float64 `json:"download_seconds"`
	ReplaySeconds   float64 `json:"replay_seconds"`
	FinishSeconds   float64 `json:"finish_seconds"`
}

func restoreResult(res restore.Result, handOff bool) restoreJSON {
	return restoreJSON{
		Restored: true, Dir: res.Dir, Timeline: res.Timeline, Sequence: res.Sequence, Time: res.Time, Base: res.Base,
		Segments: res.Segments, Batches: res.Batches, BatchBytes: res.BatchBytes, BaseBytes: res.BaseBytes, SegmentBytes: res.SegmentBytes,
		HandOff: handOff, HandOffWALFiles: len(res.HandOffFiles),
		DownloadSeconds: res.Download.Seconds(), ReplaySeconds: res.Replay.Seconds(), FinishSeconds: res.Finish.Seconds(),
	}
}

func restoreOptions(c *cli.Context) (restore.Options, error) {
	opts := restore.Options{Dir: c.Args().First(), Force: c.Bool("force"), Concurrency: c.Int("concurrency"),
		HandOff: c.Bool("hand-off"), Progress: newProgress(c, "restore")}
	if opts.Dir == "" {
		return opts, usageError{errors.New("restore: DIR is empty")}
	}
	if opts.Concurrency < 1 {
		return opts, usageError{fmt.Errorf("--concurrency %d: must be at least 1", opts.Concurrency)}
	}
	if opts.Force && c.Bool("if-db-not-exists") {
		return opts, usageError{errors.New("--force and --if-db-not-exists are exclusive: one replaces a database that is there, the other leaves it")}
	}
	if c.String("to-seq") != "" && c.String("to-time") != "" {
		return opts, usageError{errors.New("--to-seq and --to-time are exclusive: give one target")}
	}
	if s := c.String("to-seq"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n > manifest.MaxSequence {
			return opts, usageError{fmt.Errorf("--to-seq %q: want a sequence number from 0 to %d", s, uint64(manifest.MaxSequence))}
		}
		opts.ToSeq = &n
	}
	if s := c.String("to-time"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return opts, usageError{fmt.Errorf("--to-time %q: want an RFC 3339 time such as 2025-03-01T10:00:00Z", s)}
		}
		opts.ToTime = t
	}
	if s := c.String("timeline"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			return opts, usageError{fmt.Errorf("--timeline %q: want a timeline number from 1", s)}
		}
		opts.Timeline = uint32(n)
	}
	return opts, nil
}

// noArchive explains a location that holds no archive, as status does.
func noArchive(err error, store objstore.Store, from string) error {
	if errors.Is(err, manifest.ErrNoArchive) {
		return fmt.Errorf("%w: %s holds no rockstream archive (no %s); check --from %s", errNoArchive, store, manifest.ManifestKey, from)
	}
	return err
}

// holdsFiles says whether dir exists and holds anything.
func holdsFiles(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return len(entries) > 0, nil
}
