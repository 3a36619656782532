package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/standby"
)

func promoteCommand() *cli.Command {
	return &cli.Command{
		Name:      "promote",
		Usage:     "make a standby the primary: fence the old primary, start a new timeline",
		ArgsUsage: "[DIR]",
		Description: "promote --standby http://ADDR asks a running 'rockstream standby' (its --listen\n" +
			"address) to apply what the archive holds, fence the old primary's timeline with an\n" +
			"end marker, commit a new timeline with itself as the writer, and close its database:\n" +
			"the application then opens DIR read-write, and the standby process goes on as the\n" +
			"archiver of DIR on the new timeline.\n\n" +
			"promote --from URL DIR promotes the folder of a STOPPED standby: its sequence is read\n" +
			"from the database, its timeline from DIR/STANDBY-TIMELINE. Then start\n" +
			"'rockstream archive --db DIR --to URL --writer-id ID' (printed) next to the application.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "standby", EnvVars: []string{"ROCKSTREAM_STANDBY"},
				Usage: "the running standby's admin endpoint, `URL` http://ADDR"},
			&cli.StringFlag{Name: "token", EnvVars: []string{"ROCKSTREAM_TOKEN"},
				Usage: "send 'Authorization: Bearer `TOKEN`' to the standby (a token on the command line shows in ps: prefer --token-file)"},
			tokenFileFlag(),
			fromFlag(), keyFileFlag(),
			&cli.StringFlag{Name: "writer-id", EnvVars: []string{"ROCKSTREAM_WRITER_ID"},
				Usage: "with --from: the new primary's archiver `ID` (default HOSTNAME:DIR, as 'archive' takes)"},
			jsonFlag("print the result as one JSON document instead of text: timeline, parent, branch, epoch, writer_id, " +
				"marker, timings {drain_seconds, fence_seconds, commit_seconds, total_seconds}, and with --from next_command " +
				"(the archiver to start)"),
			durationFlag(&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, EnvVars: []string{"ROCKSTREAM_TIMEOUT"}, Usage: "give up after this long"}),
		},
		Action: runPromote,
	}
}

func runPromote(c *cli.Context) error {
	sbURL, from := c.String("standby"), c.String("from")
	switch {
	case (sbURL == "") == (from == ""):
		return usageError{fmt.Errorf("promote takes --standby URL (a running standby) or --from URL DIR (a stopped one)")}
	case sbURL != "" && c.NArg() != 0:
		return usageError{fmt.Errorf("promote --standby takes no arguments, got %q", c.Args().Slice())}
	case from != "" && c.NArg() != 1:
		return usageError{fmt.Errorf("promote --from takes one argument, the DIR of the stopped standby; got %q (flags go before DIR)", c.Args().Slice())}
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var cancel context.CancelFunc
	c.Context, cancel = context.WithTimeout(ctx, c.Duration("timeout"))
	defer cancel()
	var (
		res  promote.Result
		dir  string
		err  error
		next string
	)
	if sbURL != "" {
		res, err = promoteRunning(c, sbURL)
	} else {
		dir, err = filepath.Abs(c.Args().First())
		if err != nil {
			return usageError{err}
		}
		res, err = promoteStopped(c, from, dir)
		next = fmt.Sprintf("rockstream archive --db %s --to %s --writer-id %s", dir, from, res.WriterID)
	}
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, struct {
			promote.Result
			Next string `json:"next_command,omitempty"`
		}{res, next})
	}
	w := c.App.Writer
	fmt.Fprintf(w, "promoted: timeline %d branches from timeline %d after sequence %d; writer %s, epoch %d\n",
		res.Timeline, res.Parent, res.Branch, res.WriterID, res.Epoch)
	fmt.Fprintf(w, "old primary fenced by %s\n", res.Marker)
	if res.StreamOnly > 0 {
		fmt.Fprintf(w, "%d batches had reached this standby by the live stream only: uploaded to timeline %d before the fence\n", res.StreamOnly, res.Parent)
	}
	fmt.Fprintf(w, "timings: drain %s, fence %s, commit %s, total %s\n",
		ms(res.Timings.Drain), ms(res.Timings.Fence), ms(res.Timings.Commit), ms(res.Timings.Total))
	if next != "" {
		fmt.Fprintf(w, "next, start the archiver of the new primary:\n  %s\n", next)
	}
	return nil
}

func ms(d time.Duration) string { return d.Round(10 * time.Microsecond).String() }

// promoteRunning posts to a running standby's /promote.
func promoteRunning(c *cli.Context, url string) (promote.Result, error) {
	url = strings.TrimSuffix(url, "/")
	if !strings.Contains(url, "://") {
		url = "http://" + url
	}
	req, err := http.NewRequestWithContext(c.Context, "POST", url+"/promote", nil)
	if err != nil {
		return promote.Result{}, usageError{fmt.Errorf("--standby %s: %w", url, err)}
	}
	req.Header.Set(standby.PromoteHeader, "yes")
	tok, err := tokenOf(c)
	if err != nil {
		return promote.Result{}, err
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return promote.Result{}, fmt.Errorf("promote the standby at %s: %w (if the standby took the request, it completes the promotion without this client: "+
			"GET %s/status shows state promoting, then promoted with the result, or promote_error)", url, err, url)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var res promote.Result
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &res); err != nil {
			return res, fmt.Errorf("promote the standby at %s: bad answer: %w", url, err)
		}
		return res, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
	}
	err = fmt.Errorf("the standby at %s refused the promotion (%s): %s", url, resp.Status, e.Error)
	switch resp.StatusCode {
	case http.StatusConflict:
		if strings.Contains(e.Error, manifest.ErrFenced.Error()) {
			return res, fmt.Errorf("%w: %w", manifest.ErrFenced, err)
		}
	case http.StatusUnauthorized:
		return res, usageError{fmt.Errorf("%w; pass --token (or ROCKSTREAM_TOKEN)", err)}
	}
	return res, err
}

// promoteStopped promotes the database of a stopped standby in dir.
func promoteStopped(c *cli.Context, from, dir string) (promote.Result, error) {
	store, err := openArchive(c.Context, c, from)
	if err != nil {
		return promote.Result{}, err
	}
	m, _, err := manifest.Load(c.Context, store)
	if err != nil {
		return promote.Result{}, noArchive(err, store, from)
	}
	id, err := rocks.ReadIdentity(dir)
	if err != nil {
		return promote.Result{}, usageError{fmt.Errorf("promote %s: %w", dir, err)}
	}
	if id != m.Identity {
		return promote.Result{}, usageError{fmt.Errorf("promote %s: %w: its identity is %q, the archive %s is of %q", dir, standby.ErrOtherArchive, id, store, m.Identity)}
	}
	tl, err := standby.RecordedTimeline(dir, m)
	if err != nil {
		return promote.Result{}, err
	}
	if err := notInUse(dir); err != nil {
		return promote.Result{}, err
	}
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		return promote.Result{}, fmt.Errorf("promote %s (is the standby still running? stop it first, or use --standby): %w", dir, err)
	}
	seq := db.LatestSequence()
	if err := db.Close(); err != nil {
		return promote.Result{}, err
	}
	writer := c.String("writer-id")
	if writer == "" {
		writer = standby.DefaultWriterID(dir)
	}
	res, err := promote.Promote(c.Context, store, promote.Options{Timeline: tl, Applied: seq, WriterID: writer})
	if errors.Is(err, promote.ErrMoreToApply) {
		return res, fmt.Errorf("%w (to apply more, start 'rockstream standby --from %s %s' until it is caught up, stop it, and promote again)", err, from, dir)
	}
	if err == nil {
		// A standby started on DIR later archives it instead of following.
		if rerr := standby.RecordPromotion(dir, res); rerr != nil {
			slog.Warn("promoted, but the promotion is not recorded in the folder: do not start 'rockstream standby' on it", "error", rerr)
		}
	}
	return res, err
}

// notInUse fails when another process has the database in dir open for
// writing (a standby that still runs): RocksDB holds a POSIX lock on its
// LOCK file, which a read-only open does not test.
func notInUse(dir string) error {
	f, err := os.Open(filepath.Join(dir, "LOCK"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("promote %s: %w", dir, err)
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return fmt.Errorf("promote %s: test its lock: %w", dir, err)
	}
	if lk.Type != unix.F_UNLCK {
		return usageError{fmt.Errorf("promote %s: the database is open in process %d (a standby that still runs?): stop it first, or promote it with --standby URL", dir, lk.Pid)}
	}
	return nil
}
