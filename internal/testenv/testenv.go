// Package testenv holds what tests need of the machine: tools such as
// db_bench and ldb (Debian's rocksdb-tools), found or the test stops.
// Under CI=true a missing tool fails the test: CI never counts a skip as a
// pass.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// RequireTool returns the path of a command on PATH, or skips the test
// (fails it under CI=true).
func RequireTool(tb testing.TB, name string) string {
	tb.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s is not on PATH (CI=true): run scripts/setup.sh", name)
	}
	tb.Skipf("SKIP (not a pass): %s is not on PATH; run scripts/setup.sh (under CI=true this fails)", name)
	return ""
}
