package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/restore"
)

func fromFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "from", Aliases: []string{"f"}, EnvVars: []string{"ROCKSTREAM_FROM"},
		Usage: "the archive's `URL`: file:///PATH or s3://BUCKET/PREFIX[?endpoint=...]"}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show what an archive holds and what can be restored",
		Description: "status reads the archive's manifest, lists its segments and reads each base's\n" +
			"file list, and prints the timelines, the restorable ranges (sequences and times),\n" +
			"the holes, the bases, the writer, and the bytes stored. It changes nothing.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			fromFlag(), keyFileFlag(),
			&cli.BoolFlag{Name: "json", EnvVars: []string{"ROCKSTREAM_JSON"}, Usage: "print JSON for programs instead of a table"},
			durationFlag(&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, EnvVars: []string{"ROCKSTREAM_TIMEOUT"}, Usage: "give up after this long"}),
		},
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("status takes no arguments, got %q", c.Args().Slice())}
	}
	from, err := requireString(c, "from")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	store, err := openArchive(ctx, c, from)
	if err != nil {
		return err
	}
	st, err := catalog.ReadStatusWith(ctx, store, restore.ReplayNeeds)
	if errors.Is(err, manifest.ErrNoArchive) {
		return fmt.Errorf("%w: %s holds no rockstream archive (no %s); start one with 'rockstream archive --db DIR --to %s'",
			errNoArchive, store, manifest.ManifestKey, from)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else {
		printStatus(c.App.Writer, st)
	}
	if len(st.Problems) > 0 {
		return fmt.Errorf("%w: status found %d problems in %s (above); run 'rockstream verify --from %s'", restore.ErrCorrupt, len(st.Problems), store, from)
	}
	return nil
}

var errNoArchive = errors.New("no archive")

func printStatus(w io.Writer, st *catalog.Status) {
	fmt.Fprintf(w, "Archive   %s\nDatabase  %s (archived since %s)\n", st.Location, st.Identity, stamp(st.Created))
	if wr := st.Writer; wr != nil {
		fmt.Fprintf(w, "Writer    %s on %s, timeline %d, epoch %d, since %s\n", wr.ID, wr.Host, wr.Timeline, wr.Epoch, stamp(wr.Since))
	} else {
		fmt.Fprintln(w, "Writer    none")
	}
	if e := st.Encryption; e != nil {
		fmt.Fprintf(w, "Encrypted with keys %s (every object but the manifest)\n", strings.Join(e.KeyIDs, ", "))
	} else {
		fmt.Fprintln(w, "Encrypted no")
	}
	fmt.Fprintf(w, "Stored    %s (segments %s, bases %s)\n\n", bytesText(st.Stored.Total), bytesText(st.Stored.Segments), bytesText(st.Stored.Bases))
	for _, t := range st.Timelines {
		printTimeline(w, t, st.Checked)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "BASE\tTIMELINE\tSEQUENCE\tTAKEN\tSIZE\tFILES\tSHARED")
	for _, b := range st.Bases {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\n", strings.TrimSuffix(manifest.BasePrefix(b.Timeline, b.Sequence), "/"), b.Timeline, b.Sequence, stamp(b.Time), bytesText(b.Size), b.FileCount, b.SharedFiles)
	}
	tw.Flush()
	for _, b := range st.Bases {
		if len(b.ReplayNeeds) > 0 {
			fmt.Fprintf(w, "\nREPLAY: the base %d/%d needs operators of the application's own (%s): restore it with --hand-off, or in library mode with the operators; a standby cannot follow it\n",
				b.Timeline, b.Sequence, strings.Join(b.ReplayNeeds, ", "))
		}
	}
	for _, p := range st.Problems {
		fmt.Fprintf(w, "\nPROBLEM: %s\n", p)
	}
}

func printTimeline(w io.Writer, t catalog.TimelineStatus, now time.Time) {
	fmt.Fprintf(w, "Timeline %d", t.ID)
	if t.Parent != 0 {
		fmt.Fprintf(w, " (branched from timeline %d after sequence %d)", t.Parent, t.Branch)
	}
	if t.Ended {
		fmt.Fprint(w, " [ended by a promotion]")
	}
	fmt.Fprintf(w, ": %d segments, %s\n", t.Segments, bytesText(t.Bytes))
	if !t.LastTime.IsZero() {
		fmt.Fprintf(w, "  last archived: sequence %d at %s (%s ago)\n", t.LastSequence, stamp(t.LastTime), now.Sub(t.LastTime).Round(time.Second))
	}
	if len(t.Ranges) == 0 {
		fmt.Fprintln(w, "  restorable: nothing yet (no base)")
	}
	for _, r := range t.Ranges {
		fmt.Fprintf(w, "  restorable: sequences %d..%d  (%s .. %s)\n", r.From, r.To, stamp(r.FromTime), stamp(r.ToTime))
	}
	for _, c := range t.FamilyChanges {
		fmt.Fprintf(w, "  column family: timeline %d, after sequence %d: %s %q (id %d)\n", c.Timeline, c.After, c.Op, c.Name, c.ID)
	}
	for _, h := range t.Holes {
		if h.To >= manifest.MaxSequence-1 {
			fmt.Fprintf(w, "  HOLE: sequences from %d on missing (open: the archiver is taking the base that ends it)", h.From)
		} else {
			fmt.Fprintf(w, "  HOLE: sequences %d..%d missing", h.From, h.To)
		}
		if h.Reason != "" {
			fmt.Fprintf(w, ": %s", h.Reason)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
