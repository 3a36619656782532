package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
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
