package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestBadUsage checks that bad flags exit 2 before anything runs.
func TestBadUsage(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rockstream")
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	cases := [][]string{
		{"--binary", bin, "--only", "throughput,nope"},
		{"--binary", bin, "--runs", "0"},
		{"--binary", filepath.Join(t.TempDir(), "missing")},
		{"--binary", bin, "extra"},
		{"--no-such-flag"},
	}
	for _, args := range cases {
		if code := run(append([]string{"rockstream-bench"}, args...)); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

func TestHelp(t *testing.T) {
	if code := run([]string{"rockstream-bench", "--help"}); code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
}
