package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEncryptionKeyErrors runs every command that reads or writes an
// archive with a key file that does not fit: none for an encrypted archive,
// one for a plaintext archive, another archive's key, a key file that
// others may read, a key file with a line that is not a key, a key file
// that does not exist, a wrong key from the environment. Each must exit 2
// with a message that says what is wrong (the key ids, the flag, chmod 600,
// the line, never the line's content), write nothing to the archive, and
// leave its target folder uncreated.
func TestEncryptionKeyErrors(t *testing.T) {
	f := newEncFixture(t)
	f.put(t, "a", 100, 20, nil)
	p := f.archiver(t, f.key)
	f.put(t, "b", 100, 20, nil)
	f.waitArchived(t, f.store, p)
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	plainBucket, _ := restoreArchive(t) // a plaintext archive
	plainURL, plainDB := "file://"+plainBucket, filepath.Join(filepath.Dir(plainBucket), "db")

	keys := t.TempDir()
	wrong := filepath.Join(keys, "wrong.key")
	wrongID := keygenFile(t, wrong, false)
	loose := filepath.Join(keys, "loose.key")
	writeAll(t, loose, readAll(t, f.key))
	if err := os.Chmod(loose, 0o644); err != nil {
		t.Fatal(err)
	}
	const garbageText = "GARBAGE-do-not-print-7f3a9c1e"
	var keyLine string
	for _, l := range strings.Split(string(readAll(t, f.key)), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			keyLine = l
		}
	}
	garbage := filepath.Join(keys, "garbage.key")
	if err := os.WriteFile(garbage, []byte("# my keys\n"+keyLine+"\n\n"+garbageText+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(keys, "no-such.key")

	cases := []struct {
		name   string
		url    string // the archive
		db     string // its database, for archive and base
		bucket string // its folder, which must stay as it is
		flag   []string
		env    []string
		says   []string
		never  []string
	}{
		{"no key for an encrypted archive", f.url, f.dir, f.bucket, nil, nil,
			[]string{f.keyID, "--encryption-key-file", "encrypted"}, nil},
		{"a key for a plaintext archive", plainURL, plainDB, plainBucket, []string{"--encryption-key-file", f.key}, nil,
			[]string{"not encrypted", f.keyID}, nil},
		{"another archive's key", f.url, f.dir, f.bucket, []string{"--encryption-key-file", wrong}, nil,
			[]string{"wrong key", f.keyID, wrongID}, nil},
		{"another archive's key from the environment", f.url, f.dir, f.bucket, nil, []string{"ROCKSTREAM_ENCRYPTION_KEY_FILE=" + wrong},
			[]string{"wrong key", f.keyID, wrongID}, nil},
		{"a key file that others may read", f.url, f.dir, f.bucket, []string{"--encryption-key-file", loose}, nil,
			[]string{loose, "chmod 600", "0644"}, []string{keyLine}},
		{"a key file with a line that is no key", f.url, f.dir, f.bucket, []string{"--encryption-key-file", garbage}, nil,
			[]string{garbage, "line 4"}, []string{garbageText, keyLine}},
		{"no such key file", f.url, f.dir, f.bucket, []string{"--encryption-key-file", missing}, nil,
			[]string{missing}, nil},
	}
	cwd, tmp := t.TempDir(), t.TempDir()
	start := time.Now()
	runs := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			targets := filepath.Join(t.TempDir(), "targets")
			restored, standbyDir, promoted := filepath.Join(targets, "restored"), filepath.Join(targets, "standby"), filepath.Join(targets, "promoted")
			with := func(args ...string) []string {
				// The flag goes before the DIR argument of restore, standby and promote.
				if last := args[len(args)-1]; strings.HasPrefix(last, targets) {
					return append(append(append([]string{}, args[:len(args)-1]...), c.flag...), last)
				}
				return append(args, c.flag...)
			}
			commands := [][]string{
				with("status", "--from", c.url),
				with("restore", "--from", c.url, restored),
				with("verify", "--from", c.url),
				with("verify", "--from", c.url, "--drill"),
				with("standby", "--from", c.url, "--listen=", standbyDir),
				with("prune", "--from", c.url, "--keep-last", "1", "--grace", "0"),
				with("archive", "--db", c.db, "--to", c.url, "--segment-age", "50ms"),
				with("base", "--db", c.db, "--to", c.url),
				with("promote", "--from", c.url, promoted),
			}
			for _, args := range commands {
				before := bucketSnapshot(t, c.bucket)
				p := startCLIIn(t, cwd, append([]string{"TMPDIR=" + tmp}, c.env...), args...)
				code := p.wait(t, time.Minute)
				runs++
				out := p.out.String()
				if code != exitUsage {
					t.Errorf("rockstream %q: exit %d, want %d\n%s", args, code, exitUsage, out)
				}
				for _, s := range c.says {
					if !strings.Contains(out, s) {
						t.Errorf("rockstream %q: the output does not say %q:\n%s", args, s, out)
					}
				}
				for _, s := range c.never {
					if strings.Contains(out, s) {
						t.Errorf("rockstream %q: the output shows %q:\n%s", args, s, out)
					}
				}
				noStackTrace(t, out)
				if after := bucketSnapshot(t, c.bucket); after != before {
					t.Errorf("rockstream %q changed the archive:\nbefore:\n%s\nafter:\n%s", args, before, after)
				}
				gone(t, args[0], targets)
				if left, _ := os.ReadDir(tmp); len(left) != 0 {
					t.Errorf("rockstream %q left %v in TMPDIR", args, left)
				}
			}
		})
	}
	t.Logf("%d refused runs in %v", runs, time.Since(start).Round(time.Millisecond))
}
