package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/urfave/cli/v2"
)

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name: "log-format", Value: "text", EnvVars: []string{"ROCKSTREAM_LOG_FORMAT"},
			Usage: "log format: text (for people) or json (for log collectors)",
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
	opts := &slog.HandlerOptions{Level: level}
	switch format := flagValue(c, "log-format"); format {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", format)}
	}
	return nil
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
