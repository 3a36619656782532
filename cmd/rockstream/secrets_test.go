package main

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/internal/miniotest"
)

// Markers that stand for secrets in TestSecretsNeverShown. The right S3
// secret is miniotest.SecretKey; these are wrong ones.
const (
	wrongSecret  = "WRONG-SECRET-MARKER-7d1c"
	sessionToken = "SESSION-TOKEN-MARKER-3e9b"
	adminToken   = "ADMIN-TOKEN-MARKER-a4f2"
	wrongToken   = "WRONG-TOKEN-MARKER-60d8"
)

// secretsSeen collects every byte that the commands printed or served.
type secretsSeen struct {
	t    *testing.T
	all  strings.Builder
	more []string // more secrets: the encryption key, in the forms a key file takes
}

// run runs rockstream as a process to its end and returns its exit code.
func (s *secretsSeen) run(env []string, args ...string) int {
	s.t.Helper()
	p := startCLI(s.t, env, args...)
	code := p.wait(s.t, 2*time.Minute)
	s.add("rockstream "+args[0], p.out.String()) // not the arguments: some hold a secret on purpose
	return code
}

func (s *secretsSeen) add(what, text string) {
	fmt.Fprintf(&s.all, "=== %s\n%s\n", what, text)
}

// check fails the test if any output holds a secret or a piece of a
// signed request.
func (s *secretsSeen) check() {
	s.t.Helper()
	out := s.all.String()
	for _, secret := range append([]string{miniotest.SecretKey, wrongSecret, sessionToken, adminToken, wrongToken,
		"AWS4-HMAC-SHA256", "Signature=", "X-Amz-Security-Token", "Authorization:"}, s.more...) {
		if i := strings.Index(out, secret); i >= 0 {
			start := max(0, i-600)
			s.t.Errorf("the output shows %q:\n...%s", secret, out[start:min(len(out), i+200)])
		}
	}
}

// expect fails the test when a command did not exit with want.
func (s *secretsSeen) expect(code, want int, what string) {
	s.t.Helper()
	if code != want {
		s.t.Errorf("%s: exit %d, want %d\n%s", what, code, want, s.all.String()[max(0, s.all.Len()-3000):])
	}
}

// TestSecretsNeverShown runs every command, in success and failure paths,
// with debug logs in text and JSON, with S3 credentials and admin tokens
// set to unique markers (in the environment and in config files), and
// greps everything the commands printed, /status and /metrics of the
// archiver and the standby, and status --json, for the secrets. The archive
// is encrypted (ROCKSTREAM_ENCRYPTION_KEY_FILE): its key is a secret too.
func TestSecretsNeverShown(t *testing.T) {
	srv := miniotest.Shared(t)
	url := "s3://" + srv.NewBucket(t) + "/db?endpoint=" + srv.Endpoint
	s := &secretsSeen{t: t}
	defer s.check()
	keyFile := filepath.Join(t.TempDir(), "key")
	if _, err := crypt.Keygen(keyFile, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.more = keyForms(t, keyFile)
	good := []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey, "ROCKSTREAM_LOG_LEVEL=debug",
		"ROCKSTREAM_ENCRYPTION_KEY_FILE=" + keyFile}
	jsonLogs := append(good[:len(good):len(good)], "ROCKSTREAM_LOG_FORMAT=json")
	app := newAppDB(t, "app")
	root := t.TempDir()

	s.expect(s.run(jsonLogs, "check", "-l", url), exitOK, "check")
	archiveServed(t, s, good, url, app)
	s.expect(s.run(good, "base", "--db", app.dir, "--to", url), exitOK, "base")
	s.expect(s.run(jsonLogs, "status", "--from", url), exitOK, "status")
	s.expect(s.run(good, "status", "--from", url, "--json"), exitOK, "status --json")
	if !strings.Contains(s.all.String(), `"key_ids"`) {
		t.Fatalf("status --json does not say the archive is encrypted: the test would not see what encryption shows\n%s", s.all.String())
	}
	s.expect(s.run(jsonLogs, "verify", "--from", url, "--drill", "--scratch-dir", t.TempDir()), exitOK, "verify --drill")
	s.expect(s.run(good, "restore", "--from", url, filepath.Join(root, "restored")), exitOK, "restore")
	s.expect(s.run(jsonLogs, "prune", "--from", url, "--keep-last", "1", "--dry-run", "--json"), exitOK, "prune --dry-run")
	standbyServed(t, s, jsonLogs, url, filepath.Join(root, "standby"))

	wrong := []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + wrongSecret, "ROCKSTREAM_LOG_LEVEL=debug",
		"ROCKSTREAM_ENCRYPTION_KEY_FILE=" + keyFile}
	withSession := append(wrong[:len(wrong):len(wrong)], "AWS_SESSION_TOKEN="+sessionToken, "ROCKSTREAM_LOG_FORMAT=json")
	for _, env := range [][]string{wrong, withSession} {
		for _, args := range [][]string{
			{"check", "-l", url},
			{"archive", "--db", app.dir, "--to", url},
			{"archive", "--config", writeConfig(t, "databases:\n  - name: a\n    db: "+app.dir+"\n    to: "+url+"\n")},
			{"base", "--db", app.dir, "--to", url},
			{"status", "--from", url, "--json"},
			{"verify", "--from", url},
			{"restore", "--from", url, filepath.Join(root, "never")},
			{"standby", "--from", url, "--listen=", filepath.Join(root, "never")},
			{"prune", "--from", url, "--keep-last", "1"},
		} {
			s.expect(s.run(env, args...), exitUnreachable, fmt.Sprintf("%q with a wrong secret", args))
		}
	}

	inURL := "s3://" + miniotest.AccessKey + ":" + wrongSecret + "@bucket/x"
	for _, args := range [][]string{
		{"check", "-l", inURL},
		{"archive", "--db", app.dir, "--to", inURL},
		{"status", "--from", inURL},
		{"restore", "--from", inURL, filepath.Join(root, "never")},
		{"standby", "--from", inURL, filepath.Join(root, "never")},
		{"prune", "--from", inURL, "--keep-last", "1"},
		{"archive", "--config", writeConfig(t, "secret-access-key: "+wrongSecret+"\ndatabases:\n  - name: a\n")},
		{"standby", "--config", writeConfig(t, "databases:\n  - name: a\n    from: "+inURL+"\n    dir: /x\n    token: "+adminToken+"\n")},
		{"check", "-l", "s3://bucket/x?aws_secret_access_key=" + wrongSecret},
	} {
		s.expect(s.run(good, args...), exitUsage, fmt.Sprintf("%q", args))
	}
	s.expect(s.run(append(good, "ROCKSTREAM_TOKEN="+wrongToken), "promote", "--standby", "http://"+freeAddr(t)), exitFailure,
		"promote with nothing listening")
}

// archiveServed runs the archiver from a config file until the archive
// holds the database, reading its /status and /metrics.
func archiveServed(t *testing.T, s *secretsSeen, env []string, url string, app *appDB) {
	addr := freeAddr(t)
	path := writeConfig(t, fmt.Sprintf("log-level: debug\nlisten: %s\nsegment-age: 50ms\nsummary-interval: 100ms\n"+
		"databases:\n  - name: app\n    db: %s\n    to: %s\n", addr, app.dir, url))
	p := startCLI(t, env, "archive", "--config", path)
	waitUntilT(t, "the first base", func() bool {
		return strings.Contains(httpGet("http://"+addr+"/metrics", ""), `rockstream_archive_bases_total{database="app"} 1`)
	})
	putN(t, app.db, "more", 100)
	want := fmt.Sprintf(`rockstream_archive_archived_sequence{database="app"} %d`, app.db.GetLatestSequenceNumber())
	waitUntilT(t, "the archive to hold the database", func() bool {
		return strings.Contains(httpGet("http://"+addr+"/metrics", ""), want)
	})
	time.Sleep(300 * time.Millisecond) // a summary line or two
	if !strings.Contains(p.out.String(), "level=DEBUG msg=\"segment archived\"") {
		t.Errorf("no debug line of the archiver: the test would not see what debug logs show\n%s", p.out)
	}
	s.add("archive /status", httpGet("http://"+addr+"/status", ""))
	s.add("archive /metrics", httpGet("http://"+addr+"/metrics", ""))
	code := p.stop(t)
	s.add("archive --config", p.out.String())
	s.expect(code, exitOK, "archive --config")
}

// standbyServed runs a standby from a config file that holds its token,
// reads /status and /metrics with it, promotes it (once with a wrong token,
// then with the right one), and stops it.
func standbyServed(t *testing.T, s *secretsSeen, env []string, url, dir string) {
	addr := freeAddr(t)
	path := writeConfig(t, fmt.Sprintf("log-level: debug\ntoken: %s\nsummary-interval: 100ms\ndatabases:\n"+
		"  - name: sb\n    from: %s\n    dir: %s\n    listen: %s\n", adminToken, url, dir, addr))
	p := startCLI(t, env, "standby", "--config", path)
	waitUntilT(t, "the standby to follow", func() bool {
		return strings.Contains(httpGet("http://"+addr+"/status", adminToken), `"state":"following"`)
	})
	waitUntilT(t, "a summary line", func() bool { return strings.Contains(p.out.String(), `"standby summary"`) })
	s.add("standby /status", httpGet("http://"+addr+"/status", adminToken))
	s.add("standby /metrics", httpGet("http://"+addr+"/metrics", adminToken))
	s.add("standby /status without the token", httpGet("http://"+addr+"/status", ""))
	s.expect(s.run(append(env, "ROCKSTREAM_TOKEN="+wrongToken), "promote", "--standby", "http://"+addr), exitUsage, "promote, wrong token")
	s.expect(s.run(append(env, "ROCKSTREAM_TOKEN="+adminToken), "promote", "--standby", "http://"+addr, "--json"), exitOK, "promote")
	time.Sleep(300 * time.Millisecond) // the promoted standby archives
	code := p.stop(t)
	s.add("standby --config", p.out.String())
	s.expect(code, exitOK, "standby --config")
	if _, err := os.Stat(dir); err != nil {
		t.Fatal(err)
	}
}

// keyForms are the key of the key file path as the file holds it (base64),
// in hex, and the first 8 bytes of each: what an output must never show.
func keyForms(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(line)
		if err != nil || len(raw) != crypt.KeySize {
			t.Fatalf("key file line %q: %v", line, err)
		}
		h := hex.EncodeToString(raw)
		return []string{line, h, line[:12], h[:16]}
	}
	t.Fatalf("no key in %s", path)
	return nil
}
