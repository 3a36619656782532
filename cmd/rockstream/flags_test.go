package main

import (
	"io"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// TestDurationsTakeDays: every duration flag of every command takes days
// ("1d", "1d12h") from the command line and from its variable, refuses a
// malformed one with exit 2, and the config file takes days too.
func TestDurationsTakeDays(t *testing.T) {
	flags := 0
	for _, cmd := range newApp().Commands {
		for _, f := range cmd.Flags {
			if _, ok := f.(*cli.DurationFlag); ok {
				t.Errorf("%s --%s is a plain duration flag: it refuses days", cmd.Name, f.Names()[0])
			}
			g, ok := f.(daysFlag)
			if !ok {
				continue
			}
			flags++
			name := g.Name
			for _, tc := range []struct {
				args []string
				env  string
				want time.Duration
			}{
				{[]string{"--" + name, "1d"}, "", 24 * time.Hour},
				{[]string{"--" + name + "=1d12h"}, "", 36 * time.Hour},
				{[]string{"--" + name, "90s"}, "", 90 * time.Second},
				{nil, "2d", 48 * time.Hour},
			} {
				if tc.env != "" {
					t.Setenv(g.EnvVars[0], tc.env)
				}
				got, code := durationOf(cmd.Name, name, tc.args)
				if code != exitOK || got != tc.want {
					t.Errorf("%s %v (%s=%q): %v, exit %d; want %v", cmd.Name, tc.args, g.EnvVars[0], tc.env, got, code, tc.want)
				}
				t.Setenv(g.EnvVars[0], "")
			}
			if _, code := durationOf(cmd.Name, name, []string{"--" + name, "1x"}); code != exitUsage {
				t.Errorf("%s --%s 1x: exit %d, want %d", cmd.Name, name, code, exitUsage)
			}
		}
	}
	if flags < 10 {
		t.Fatalf("only %d duration flags found", flags)
	}
	got, code, errOut := resolved(t, []string{"base-interval"}, "archive", "--config",
		writeConfig(t, "base-interval: 2d\ndatabases:\n  - name: a\n    db: /srv/a\n    to: file:///srv/archive/a\n    base-interval: 1d12h\n  - name: b\n    db: /srv/b\n    to: file:///srv/archive/b\n"))
	if code != exitOK || got["a"]["base-interval"] != (36*time.Hour).String() || got["b"]["base-interval"] != (48*time.Hour).String() {
		t.Fatalf("base-interval in days in a config file: %v, exit %d %s", got, code, errOut)
	}
}

// durationOf runs command with args, its action replaced by one that reads
// the duration flag name.
func durationOf(command, name string, args []string) (time.Duration, int) {
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	var got time.Duration
	for _, cmd := range app.Commands {
		if cmd.Name == command {
			cmd.Action = func(c *cli.Context) error {
				got = c.Duration(name)
				return nil
			}
		}
	}
	if err := runApp(app, append([]string{"rockstream", command}, args...)); err != nil {
		return got, exitCode(err)
	}
	return got, exitOK
}
