package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTokenFile: the standby reads its admin token from --token-file and
// promote sends it from its own --token-file, so no token shows in ps; a
// token file that others can read, an empty one, and --token with
// --token-file are bad usage.
func TestTokenFile(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	if code, out, errOut := runCLI(t, "base", "--db", app.dir, "--to", url); code != exitOK {
		t.Fatalf("base: exit %d\n%s%s", code, out, errOut)
	}
	dir := t.TempDir()
	const token = "TOKEN-FROM-FILE-5c1e"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", addr, "--token-file", tokenFile, "--poll", "20ms",
		filepath.Join(dir, "standby"))
	waitUntilT(t, "the standby to follow", func() bool {
		return strings.Contains(httpGet("http://"+addr+"/status", token), `"state":"following"`)
	})
	if got := httpGet("http://"+addr+"/status", ""); strings.Contains(got, "following") {
		t.Fatalf("/status without the token answered: %s", got)
	}
	if code, out, errOut := runCLI(t, "promote", "--standby", "http://"+addr, "--token-file", tokenFile); code != exitOK {
		t.Fatalf("promote --token-file: exit %d\n%s%s", code, out, errOut)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	if strings.Contains(sb.out.String(), token) {
		t.Fatalf("the standby printed its token:\n%s", sb.out)
	}

	open := filepath.Join(dir, "open")
	empty := filepath.Join(dir, "empty")
	os.WriteFile(open, []byte(token), 0o644)
	os.WriteFile(empty, []byte("\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--token-file", open}, "chmod 600"},
		{[]string{"--token-file", empty}, "first line is empty"},
		{[]string{"--token-file", filepath.Join(dir, "missing")}, "no such file"},
		{[]string{"--token-file", tokenFile, "--token", "x"}, "exclusive"},
	} {
		args := append([]string{"standby", "--from", url, "--listen", freeAddr(t)}, c.args...)
		code, out, errOut := runCLI(t, append(args, filepath.Join(dir, "never"))...)
		if code != exitUsage || !strings.Contains(errOut, c.want) || strings.Contains(out+errOut, token) {
			t.Errorf("standby %q: exit %d, want %d saying %q (and never the token)\n%s%s", c.args, code, exitUsage, c.want, out, errOut)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "never")); !os.IsNotExist(err) {
		t.Errorf("a refused standby created its folder: %v", err)
	}
}
