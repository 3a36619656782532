package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/restore"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "read every object of an archive and check that it can be restored",
		Description: "verify reads every base's files.json and every file it names (size and SHA-256),\n" +
			"every segment whole (checksums, sequence continuity, header and trailer against its\n" +
			"key), checks that each segment of a timeline ends where the next begins (or where a\n" +
			"recorded hole begins), and that the restorable ranges are what 'rockstream status'\n" +
			"says. It prints every bad object with what is wrong and exits 5 if there is any.\n" +
			"--drill also restores the latest state into a scratch folder (removed afterwards),\n" +
			"and restores the sequence of a base (the newest that records a digest, else the\n" +
			"newest) from an older base and the segments, comparing logical digests with that\n" +
			"base's. It changes nothing in the archive.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			fromFlag(), keyFileFlag(),
			&cli.BoolFlag{Name: "drill", EnvVars: []string{"ROCKSTREAM_DRILL"}, Usage: "also restore into a scratch folder and compare digests"},
			&cli.StringFlag{Name: "scratch-dir", EnvVars: []string{"ROCKSTREAM_SCRATCH_DIR"}, Usage: "`DIR` for the drill's restores (default: the system's temporary folder)"},
			concurrencyFlag(),
			jsonFlag("print the report as one JSON document instead of text: location, ok, the counts read (bases, files, " +
				"file_bytes, segments, segment_bytes, batches, segments_in_holes), coverage [{timeline, ranges [{from, to}], holes}], drill, " +
				"problems [{key, what}] and missing_keys; printed also when verify finds problems (ok false, the same exit code)"),
		},
		Action: runVerify,
	}
}

func runVerify(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("verify takes no arguments, got %q", c.Args().Slice())}
	}
	from, err := requireString(c, "from")
	if err != nil {
		return err
	}
	if c.Int("concurrency") < 1 {
		return usageError{fmt.Errorf("--concurrency %d: must be at least 1", c.Int("concurrency"))}
	}
	store, err := openArchive(c.Context, c, from)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	rep, err := restore.Verify(ctx, store, restore.VerifyOptions{
		Concurrency: c.Int("concurrency"), Drill: c.Bool("drill"), ScratchDir: c.String("scratch-dir"),
		Progress: newProgress(c, "verify"),
	})
	if err != nil {
		return noArchive(err, store, from)
	}
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, rep); err != nil {
			return err
		}
	} else {
		printReport(c.App.Writer, rep)
	}
	if len(rep.MissingKeys) > 0 {
		// The key file is what is incomplete: run verify again with the
		// keys, which then reads those objects too.
		return fmt.Errorf("%w: objects of %s are encrypted with key %s, which the key file lacks (%d problems above); give a key file that also holds it, and verify again",
			manifest.ErrWrongKey, store, strings.Join(rep.MissingKeys, ", "), len(rep.Problems))
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d problems in %s", restore.ErrCorrupt, len(rep.Problems), store)
	}
	return nil
}

// jsonFlag is the --json flag of a command; usage says what it prints.
// With it, standard output holds exactly one JSON document (logs and
// progress bars go to standard error) and the exit code is the same.
func jsonFlag(usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: "json", EnvVars: []string{"ROCKSTREAM_JSON"}, Usage: usage}
}

// printJSON writes v to w as one indented JSON document, as status --json.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// baseJSON is what base --json prints: the base as the manifest (and
// status --json) gives it, and the archive's location.
type baseJSON struct {
	Location string `json:"location"`
	manifest.Base
}

func printReport(w io.Writer, rep *restore.Report) {
	fmt.Fprintf(w, "Archive   %s\n", rep.Location)
	fmt.Fprintf(w, "Read      %d bases: %d files, %s; %d segments, %s, %d batches\n",
		rep.Bases, rep.Files, bytesText(rep.FileBytes), rep.Segments, bytesText(rep.SegmentBytes), rep.Batches)
	if rep.InHoles > 0 {
		fmt.Fprintf(w, "Unused    %d segments inside recorded holes: no restore reaches them (left by a hole's base that never committed); a prune deletes them with the segments around them\n", rep.InHoles)
	}
	for _, cv := range rep.Coverage {
		fmt.Fprintf(w, "Timeline %d restorable:", cv.Timeline)
		if len(cv.Ranges) == 0 {
			fmt.Fprint(w, " nothing")
		}
		for _, r := range cv.Ranges {
			fmt.Fprintf(w, " %d..%d", r.From, r.To)
		}
		fmt.Fprintln(w)
	}
	if d := rep.Drill; d != nil {
		fmt.Fprintf(w, "Drill     restored the latest state: timeline %d, sequence %d, archived at %s\n", d.Timeline, d.Latest, stamp(d.LatestTime))
		result := "MISMATCH"
		if d.OK {
			result = "equal"
		}
		if d.Digest != "" {
			fmt.Fprintf(w, "          %s: %s\n          digest %s\n", d.Comparison, result, d.Digest)
		} else if d.Comparison != "" {
			fmt.Fprintf(w, "          %s\n", d.Comparison)
		}
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(w, "BAD %s\n", p)
	}
	if rep.OK() {
		fmt.Fprintln(w, "OK: every object reads back as written, and the ranges are what status says.")
	}
}
