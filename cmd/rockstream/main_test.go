package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/miniotest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// runCLI runs the command line in-process and returns its exit code and output.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"rockstream"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestHelpAndVersion(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != exitOK || !strings.Contains(out, "EXIT CODES") || !strings.Contains(out, "check") {
		t.Fatalf("--help: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "--version")
	if code != exitOK || !strings.HasPrefix(out, "rockstream version ") {
		t.Fatalf("--version: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "version")
	for _, want := range []string{"rockstream ", "\ncommit ", "\ngo         go1.", "\nrocksdb    7.8.3"} {
		if code != exitOK || !strings.Contains(out, want) {
			t.Fatalf("version: exit %d, %q lacks %q", code, out, want)
		}
	}
	code, out, _ = runCLI(t, "version", "--json")
	if code != exitOK || !strings.Contains(out, `"rocksdb":"7.8.3"`) || !strings.Contains(out, `"go":"go1.`) {
		t.Fatalf("version --json: exit %d, %q", code, out)
	}
	code, out, _ = runCLI(t, "check", "--help")
	if code != exitOK || !strings.Contains(out, "ROCKSTREAM_LOCATION") {
		t.Fatalf("check --help: exit %d\n%s", code, out)
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCLI(t, "check", "--location", "file://"+dir)
	if code != exitOK || !strings.Contains(out, "can hold a rockstream archive") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "probe", "*"))
	if len(left) != 0 {
		t.Fatalf("check left %q", left)
	}
	t.Setenv("ROCKSTREAM_LOCATION", "file://"+dir)
	if code, _, errOut := runCLI(t, "check"); code != exitOK {
		t.Fatalf("location from ROCKSTREAM_LOCATION: exit %d: %s", code, errOut)
	}
}

func TestBadInput(t *testing.T) {
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, []byte("x"), 0o644)
	cases := []struct {
		args []string
		code int
		says string
	}{
		{[]string{"nonsense"}, exitUsage, ""},
		{[]string{"--log-format", "xml", "check", "-l", "file:///tmp/x"}, exitUsage, "--log-format"},
		{[]string{"--log-level", "loud", "check", "-l", "file:///tmp/x"}, exitUsage, "--log-level"},
		{[]string{"check"}, exitUsage, "--location is required (or set ROCKSTREAM_LOCATION)"},
		{[]string{"check", "--no-such-flag"}, exitUsage, "no-such-flag"},
		{[]string{"check", "-l", "file:///tmp/x", "extra"}, exitUsage, "no arguments"},
		{[]string{"check", "-l", "relative/path"}, exitUsage, "no scheme"},
		{[]string{"check", "-l", "file://host/x"}, exitUsage, "empty host"},
		{[]string{"check", "-l", "gs://bucket/x"}, exitUsage, "unknown scheme"},
		{[]string{"check", "-l", "s3://"}, exitUsage, "no bucket"},
		{[]string{"check", "-l", "s3://b/x?endpoint=ftp://h"}, exitUsage, "endpoint"},
		{[]string{"check", "-l", "s3://key:secret@bucket/x"}, exitUsage, "credentials do not belong"},
		{[]string{"check", "-l", "file://" + notDir}, exitFailure, notDir},
		{[]string{"check", "-l", "file:///tmp/x", "--timeout", "soon"}, exitUsage, "timeout"},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(t, c.args...)
		if code != c.code || !strings.Contains(errOut, c.says) {
			t.Errorf("rockstream %q: exit %d, want %d with %q\nstdout: %s\nstderr: %s", c.args, code, c.code, c.says, out, errOut)
		}
		if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic") {
			t.Errorf("rockstream %q printed a stack trace:\n%s", c.args, errOut)
		}
	}
}

func TestCheckS3(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	url := "s3://" + bucket + "/db1?endpoint=" + srv.Endpoint
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	if code, out, errOut := runCLI(t, "check", "-l", url); code != exitOK {
		t.Fatalf("check of MinIO: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut := runCLI(t, "check", "-l", "s3://no-such-bucket/db1?endpoint="+srv.Endpoint)
	if code != exitUnreachable || !strings.Contains(errOut, "no-such-bucket") || !strings.Contains(errOut, "bucket does not exist") {
		t.Errorf("missing bucket: exit %d: %s", code, errOut)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", "wrong")
	code, _, errOut = runCLI(t, "check", "-l", url)
	if code != exitUnreachable || !strings.Contains(errOut, "access denied") || strings.Contains(errOut, "wrong") {
		t.Errorf("wrong credentials: exit %d: %s", code, errOut)
	}
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	code, _, errOut = runCLI(t, "check", "-l", "s3://"+bucket+"?endpoint=http://127.0.0.1:1", "--timeout", "3s")
	if code != exitUnreachable || !strings.Contains(errOut, "unreachable") {
		t.Errorf("unreachable endpoint: exit %d: %s", code, errOut)
	}
}
