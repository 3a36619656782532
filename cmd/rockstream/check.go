package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
)

func locationFlag(name, usage string) *cli.StringFlag {
	return &cli.StringFlag{
		Name: name, Aliases: []string{"l"}, Usage: usage,
		EnvVars: []string{"ROCKSTREAM_" + envName(name)},
	}
}

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "prove that a location can hold an archive",
		Description: "check writes, reads, lists and deletes a probe object (under probe/) at the\n" +
			"location, and checks that the store refuses a second create-only put and a\n" +
			"stale if-match put: rockstream fences a second writer with those conditional\n" +
			"writes, and some S3-compatible servers ignore them. It changes nothing else.\n\n" +
			exitCodesHelp,
		Flags: []cli.Flag{
			locationFlag("location", "the archive's `URL`: file:///PATH or s3://BUCKET/PREFIX[?endpoint=...]"),
			durationFlag(&cli.DurationFlag{Name: "timeout", Value: time.Minute, EnvVars: []string{"ROCKSTREAM_TIMEOUT"},
				Usage: "give up after this long"}),
			jsonFlag("print one JSON document instead of text: location, ok, steps [{name, ok, seconds, error}], " +
				"error (the first failed step's), and archive {exists, encrypted, key_ids, error} once every step passed; " +
				"printed also when a step fails (ok false, the same exit code)"),
		},
		Action: runCheck,
	}
}

func runCheck(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("check takes no arguments, got %q", c.Args().Slice())}
	}
	loc, err := requireString(c, "location")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	store, err := location.Open(ctx, loc, location.Options{})
	if err != nil {
		return err
	}
	steps, err := objstore.Check(ctx, store, manifest.NewProbeKey())
	if c.Bool("json") {
		if len(steps) > 0 {
			if perr := printJSON(c.App.Writer, checkResult(ctx, store, steps, err)); perr != nil && err == nil {
				return perr
			}
		}
		return err
	}
	w := c.App.Writer
	for _, st := range steps {
		mark := "ok"
		if st.Err != nil {
			mark = "FAILED"
		}
		fmt.Fprintf(w, "  %-40s %-6s %v\n", st.Name, mark, st.Duration.Round(time.Millisecond))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s can hold a rockstream archive.\n", store)
	switch m, _, err := manifest.Load(ctx, store); {
	case errors.Is(err, manifest.ErrNoArchive):
		fmt.Fprintf(w, "It holds no archive yet.\n")
	case err != nil:
		fmt.Fprintf(w, "It holds an archive whose manifest cannot be read: %v\n", err)
	default:
		fmt.Fprintf(w, "It holds an archive, %s.\n", encryptionText(m))
	}
	return nil
}

// checkJSON is what check --json prints.
type checkJSON struct {
	Location string          `json:"location"`
	OK       bool            `json:"ok"`
	Steps    []checkStepJSON `json:"steps"`
	Error    string          `json:"error,omitempty"`
	// Archive is what the location holds, once every step passed.
	Archive *checkArchiveJSON `json:"archive,omitempty"`
}

type checkStepJSON struct {
	Name    string  `json:"name"`
	OK      bool    `json:"ok"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

type checkArchiveJSON struct {
	Exists    bool     `json:"exists"`
	Encrypted bool     `json:"encrypted"`
	KeyIDs    []string `json:"key_ids,omitempty"`
	// Error is why its manifest cannot be read.
	Error string `json:"error,omitempty"`
}

// checkResult is the JSON of check: the steps done and err, the first
// error, then what the location holds.
func checkResult(ctx context.Context, store objstore.Store, steps []objstore.CheckStep, err error) checkJSON {
	out := checkJSON{Location: store.String(), OK: err == nil}
	for _, st := range steps {
		sj := checkStepJSON{Name: st.Name, OK: st.Err == nil, Seconds: st.Duration.Seconds()}
		if st.Err != nil {
			sj.Error = st.Err.Error()
		}
		out.Steps = append(out.Steps, sj)
	}
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Archive = &checkArchiveJSON{}
	switch m, _, err := manifest.Load(ctx, store); {
	case errors.Is(err, manifest.ErrNoArchive):
	case err != nil:
		out.Archive.Exists, out.Archive.Error = true, err.Error()
	default:
		out.Archive.Exists, out.Archive.Encrypted = true, m.Encrypted()
		if m.Encrypted() {
			out.Archive.KeyIDs = m.Encryption.KeyIDs
		}
	}
	return out
}
