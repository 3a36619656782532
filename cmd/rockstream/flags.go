package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/prune"
)

// envName is the environment variable suffix of a flag: "segment-age"
// becomes "SEGMENT_AGE", read as ROCKSTREAM_SEGMENT_AGE.
func envName(flag string) string {
	return strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// requireString returns a flag that must be given, or a usage error that
// names the flag and its environment variable.
func requireString(c *cli.Context, name string) (string, error) {
	if v := c.String(name); v != "" {
		return v, nil
	}
	return "", usageError{fmt.Errorf("--%s is required (or set ROCKSTREAM_%s)", name, envName(name))}
}

// durationFlag is f taking days too ("1d", "1d12h", "36h", "90s"), as
// --retention-max-age does, from the command line, its variable and the
// config file; c.Duration reads it as any duration flag.
func durationFlag(f *cli.DurationFlag) cli.Flag {
	if !strings.Contains(f.Usage, "`") {
		f.Usage += " (a `DURATION`: 90s, 5m, 36h, 1d)"
	}
	return daysFlag{f}
}

// daysFlag is a duration flag that takes days. Each Apply (one per flag
// set: a config file has one per database) has a value of its own.
type daysFlag struct{ *cli.DurationFlag }

func (f daysFlag) Apply(set *flag.FlagSet) error {
	v := &durationValue{f.Value, f.Name}
	for _, env := range f.EnvVars {
		if s := os.Getenv(env); s != "" {
			if err := v.Set(s); err != nil {
				return usageError{fmt.Errorf("%s=%q: %w", env, s, err)}
			}
			f.HasBeenSet = true
			break
		}
	}
	for _, name := range f.Names() {
		set.Var(v, name, f.Usage)
	}
	return nil
}

// durationValue is the flag.Value of a daysFlag. String gives Go's form,
// which c.Duration parses.
type durationValue struct {
	d    time.Duration
	name string
}

func (v *durationValue) Set(s string) error {
	d, err := prune.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", v.name, err)
	}
	v.d = d
	return nil
}

func (v *durationValue) String() string { return v.d.String() }
