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
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", c.String("log-level"))}
	}
	opts := &slog.HandlerOptions{Level: level}
	switch c.String("log-format") {
	case "text":
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, opts)))
	case "json":
		slog.SetDefault(slog.New(slog.NewJSONHandler(os.Stderr, opts)))
	default:
		return usageError{fmt.Errorf("--log-format %q: want text or json", c.String("log-format"))}
	}
	return nil
}
