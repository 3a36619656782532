package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCPUProfile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.pprof")
	code, _, errOut := runCLI(t, "check", "--location", "file://"+dir, "--cpu-profile", path)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// A pprof profile is a gzip-compressed protocol buffer.
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Fatalf("the profile is not gzip data: % x", data[:min(len(data), 8)])
	}
	if profile != nil {
		t.Fatal("the profile is still open after the command")
	}

	t.Setenv("ROCKSTREAM_CPU_PROFILE", filepath.Join(dir, "missing", "cpu.pprof"))
	code, _, errOut = runCLI(t, "check", "--location", "file://"+dir)
	if code != exitUsage || !strings.Contains(errOut, "--cpu-profile") {
		t.Fatalf("a profile in a missing folder: exit %d, %s", code, errOut)
	}
}
