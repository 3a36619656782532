package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: "log-format", Value: "text", EnvVars: []string{"ROCKSTREAM_LOG_FORMAT"},
			Usage: "log format: text (for people) or json (for log collectors; durations in seconds)",
		},
		&cli.StringFlag{
			Name: "log-level", Value: "info", EnvVars: []string{"ROCKSTREAM_LOG_LEVEL"},
			Usage: "least severe level logged: debug, info, warn or error",
		},
	}
}

// setupLogging installs the default slog logger on standard error.
func setupLogging(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(flagValue(c, "log-level"))); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", flagValue(c, "log-level"))}
	}
	h, err := logHandler(os.Stderr, flagValue(c, "log-format"), level)
	if err != nil {
		return err
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// logHandler is the handler of a --log-format. In JSON a duration is a
// number of seconds (1.5), which log collectors can compare and sum; in
// text it stays Go's form (1.5s), which people read.
func logHandler(w io.Writer, format string, level slog.Level) (slog.Handler, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text":
		return slog.NewTextHandler(w, opts), nil
	case "json":
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.Float64Value(a.Value.Duration().Seconds())
			}
			return a
		}
		return slog.NewJSONHandler(w, opts), nil
	}
	return nil, usageError{fmt.Errorf("--log-format %q: want text or json", format)}
}

// flagValue is the value of a flag that both the app and a command define:
// the innermost one that was set, else the default.
func flagValue(c *cli.Context, name string) string {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return ctx.String(name)
		}
	}
	return c.String(name)
}
