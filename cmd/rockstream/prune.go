package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/prune"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "delete the bases, segments and SST files that a retention policy no longer keeps",
		Description: "prune keeps, for each timeline's history, the bases that --keep-last and --keep-within\n" +
			"choose (a base either keeps is kept; the newest base of each timeline always is), and\n" +
			"every segment and SST file that a kept base needs to restore: every sequence from the\n" +
			"oldest kept base on stays restorable. It never deletes the last segment of a timeline,\n" +
			"nor objects it cannot tell are unused (a base being uploaded).\n\n" +
			"It works in two phases. First it writes a pending record of what to delete and why\n" +
			"under prune/, then drops the other bases from the manifest (a compare-and-swap, safe\n" +
			"next to a running archiver). Then, in this run when --grace is 0 and in the first\n" +
			"run after the grace otherwise, it deletes what the archive still does not need. A\n" +
			"restore or standby bootstrap that started before the prune finishes if it takes less\n" +
			"than the grace; so does a base upload. A run that stops half-way is finished by the next.\n" +
			"--dry-run lists every object that this run would schedule (or, with --grace 0, delete)\n" +
			"and every object that the sweep of each record whose grace is over would delete now,\n" +
			"judged as the sweep judges, with why; it changes nothing.\n\n" +
			"Durations take d, h, m and s: 7d, 36h, 90m, 1d12h.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			fromFlag(), keyFileFlag(),
			&cli.IntFlag{Name: "keep-last", EnvVars: []string{"ROCKSTREAM_KEEP_LAST"},
				Usage: "keep the `N` newest bases of each timeline's history"},
			&cli.StringFlag{Name: "keep-within", EnvVars: []string{"ROCKSTREAM_KEEP_WITHIN"},
				Usage: "keep every base taken within this `DURATION` and the newest one before it, so that a restore reaches back that far"},
			&cli.StringFlag{Name: "grace", Value: "1h", EnvVars: []string{"ROCKSTREAM_GRACE"},
				Usage: "delete only this `DURATION` after the manifest stopped naming a base (0: at once; more than your longest restore)"},
			&cli.BoolFlag{Name: "dry-run", EnvVars: []string{"ROCKSTREAM_DRY_RUN"}, Usage: "say what would be deleted and why; change nothing"},
			&cli.BoolFlag{Name: "json", EnvVars: []string{"ROCKSTREAM_JSON"}, Usage: "print JSON for programs instead of text"},
			durationFlag(&cli.DurationFlag{Name: "timeout", Value: time.Hour, EnvVars: []string{"ROCKSTREAM_TIMEOUT"},
				Usage: "give up after this long (a sweep that stops is finished by the next prune)"}),
		},
		Action: runPrune,
	}
}

// retentionPolicy reads a policy from the flags last and within. A policy
// with neither set is returned with ok false.
func retentionPolicy(c *cli.Context, last, within string) (p prune.Policy, ok bool, err error) {
	if c.IsSet(last) {
		if p.KeepLast = c.Int(last); p.KeepLast < 1 {
			return p, false, usageError{fmt.Errorf("--%s %d: want 1 or more", last, p.KeepLast)}
		}
	}
	if s := c.String(within); s != "" {
		if p.KeepWithin, err = prune.ParseDuration(s); err != nil {
			return p, false, usageError{fmt.Errorf("--%s: %w", within, err)}
		}
		if p.KeepWithin <= 0 {
			return p, false, usageError{fmt.Errorf("--%s %s: want a duration above zero", within, s)}
		}
	}
	return p, p.KeepLast > 0 || p.KeepWithin > 0, nil
}

// graceFlag reads a grace period.
func graceFlag(c *cli.Context, name string) (time.Duration, error) {
	d, err := prune.ParseDuration(c.String(name))
	if err != nil {
		return 0, usageError{fmt.Errorf("--%s: %w", name, err)}
	}
	return d, nil
}

func pruneOptions(c *cli.Context) (prune.Options, error) {
	if c.NArg() > 0 {
		return prune.Options{}, usageError{fmt.Errorf("prune takes no arguments, got %q", c.Args().Slice())}
	}
	p, ok, err := retentionPolicy(c, "keep-last", "keep-within")
	if err != nil {
		return prune.Options{}, err
	}
	if !ok {
		return prune.Options{}, usageError{errors.New("no retention policy: give --keep-last N, --keep-within DURATION, or both (or ROCKSTREAM_KEEP_LAST, ROCKSTREAM_KEEP_WITHIN)")}
	}
	grace, err := graceFlag(c, "grace")
	if err != nil {
		return prune.Options{}, err
	}
	return prune.Options{Policy: p, Grace: grace, DryRun: c.Bool("dry-run")}, nil
}

func runPrune(c *cli.Context) error {
	from, err := requireString(c, "from")
	if err != nil {
		return err
	}
	opts, err := pruneOptions(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	store, err := openArchive(ctx, c, from)
	if err != nil {
		return err
	}
	rep, err := prune.Run(ctx, store, opts)
	if errors.Is(err, manifest.ErrNoArchive) {
		return fmt.Errorf("%w: %s holds no rockstream archive (no %s)", errNoArchive, store, manifest.ManifestKey)
	}
	if rep != nil {
		if perr := printPrune(c.App.Writer, rep, c.Bool("json")); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

func printPrune(w io.Writer, rep *prune.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	fmt.Fprintf(w, "Archive    %s\nPolicy     %s; grace %s\n", rep.Location, rep.Policy, rep.Grace)
	if rep.DryRun {
		fmt.Fprintln(w, "DRY RUN    nothing is changed")
	}
	for _, b := range rep.Kept {
		fmt.Fprintf(w, "Kept       base %d/%d taken %s: %s\n", b.Timeline, b.Sequence, stamp(b.Time), strings.Join(b.Why, "; "))
	}
	for _, b := range rep.Dropped {
		fmt.Fprintf(w, "Dropped    base %d/%d taken %s: %s\n", b.Timeline, b.Sequence, stamp(b.Time), strings.Join(b.Why, "; "))
	}
	printScheduled(w, rep)
	for _, sw := range rep.Swept {
		fmt.Fprintf(w, "Swept      %s: deleted %d objects (%s), %d already gone, %d kept\n", sw.Record, sw.Deleted, bytesText(sw.DeletedBytes), sw.Gone, len(sw.Kept))
		for _, o := range sw.Kept {
			fmt.Fprintf(w, "  kept %s: %s\n", o.Key, o.Why)
		}
		if sw.Carried != "" {
			fmt.Fprintf(w, "  the kept objects that may go later are in %s\n", sw.Carried)
		}
	}
	printDue(w, rep.Due)
	for _, wt := range rep.Waiting {
		fmt.Fprintf(w, "Waiting    %s: %d objects, deleted by the first prune after %s\n", wt.Record, wt.Objects, stamp(wt.Due))
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "Note       %s\n", n)
	}
	fmt.Fprintln(w, "Restorable after the prune:")
	for _, cv := range rep.After {
		fmt.Fprintf(w, "  timeline %d: %s\n", cv.Timeline, rangesText(cv.Ranges))
	}
	return nil
}

// printScheduled says what went into pending records, or in a dry run
// lists every object that would.
func printScheduled(w io.Writer, rep *prune.Report) {
	kinds := map[string]int{}
	for _, o := range rep.Scheduled {
		kinds[o.Kind]++
	}
	counts := fmt.Sprintf("%d segments, %d file lists, %d other base files, %d SST files",
		kinds[prune.KindSegment], kinds[prune.KindFileList], kinds[prune.KindBaseFile], kinds[prune.KindSST])
	switch {
	case rep.DryRun:
		when := "in this run (grace 0)"
		if rep.Grace != prune.FormatDuration(0) {
			when = "into a record, deleted by the first prune after the grace " + rep.Grace
		}
		fmt.Fprintf(w, "Would go   %d objects, %s (%s), %s:\n", len(rep.Scheduled), bytesText(rep.ScheduledBytes), counts, when)
		for _, o := range rep.Scheduled {
			fmt.Fprintf(w, "  %s  %s  %s\n", o.Key, bytesText(o.Size), o.Why)
		}
	case len(rep.Scheduled) > 0:
		fmt.Fprintf(w, "Scheduled  %d objects, %s (%s) in %s\n", len(rep.Scheduled), bytesText(rep.ScheduledBytes), counts, strings.Join(rep.Records, ", "))
	default:
		fmt.Fprintln(w, "Scheduled  nothing new")
	}
	if rep.AlreadyPending > 0 {
		fmt.Fprintf(w, "Pending    %d more objects are in earlier records\n", rep.AlreadyPending)
	}
}

// printDue lists, in a dry run, what the sweep of each record whose grace
// is over would delete now and keep.
func printDue(w io.Writer, due []prune.DueRecord) {
	for _, d := range due {
		fmt.Fprintf(w, "Would sweep %s (its grace is over): delete %d objects (%s), %d already gone, %d kept\n",
			d.Record, len(d.Delete), bytesText(d.DeleteBytes), d.Gone, len(d.Kept))
		for _, o := range d.Delete {
			fmt.Fprintf(w, "  %s  %s  %s\n", o.Key, bytesText(o.Size), o.Why)
		}
		for _, o := range d.Kept {
			fmt.Fprintf(w, "  kept %s: %s\n", o.Key, o.Why)
		}
	}
}

func rangesText(rs []manifest.Range) string {
	if len(rs) == 0 {
		return "nothing"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("sequences %d..%d", r.From, r.To)
	}
	return strings.Join(parts, ", ")
}
