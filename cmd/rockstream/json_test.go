package main

import (
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// runJSON runs the command line, wants exit code want and, on standard
// output, exactly one JSON object whose keys are all snake_case, and
// returns it.
func runJSON(t *testing.T, want int, args ...string) map[string]any {
	t.Helper()
	code, out, errOut := runCLI(t, args...)
	if code != want {
		t.Fatalf("rockstream %q: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("rockstream %q: standard output is not a JSON object: %v\n%s", args, err, out)
	}
	if tok, err := dec.Token(); err != io.EOF {
		t.Fatalf("rockstream %q: standard output holds more than one JSON document (%v, %v):\n%s", args, tok, err, out)
	}
	snakeKeys(t, "$", m)
	return m
}

var snakeCase = regexp.MustCompile(`^[a-z0-9_]+$`)

// snakeKeys fails the test for every key of v, at any depth, that is not
// snake_case.
func snakeKeys(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !snakeCase.MatchString(k) {
				t.Errorf("%s: key %q is not snake_case", path, k)
			}
			snakeKeys(t, path+"."+k, x)
		}
	case []any:
		for i, x := range v {
			snakeKeys(t, fmt.Sprintf("%s[%d]", path, i), x)
		}
	}
}

// at is the value at path in v: object keys and list indexes.
func at(t *testing.T, v any, path ...any) any {
	t.Helper()
	for i, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %v", path, path[:i])
			}
			if v, ok = m[p]; !ok {
				t.Fatalf("%v: no key %q in %v", path, p, m)
			}
		case int:
			l, ok := v.([]any)
			if !ok || p >= len(l) {
				t.Fatalf("%v: no item %d at %v: %v", path, p, path[:i], v)
			}
			v = l[p]
		}
	}
	return v
}

// num is the number at path in v.
func num(t *testing.T, v any, path ...any) float64 {
	t.Helper()
	n, ok := at(t, v, path...).(float64)
	if !ok {
		t.Fatalf("%v: %v is not a number", path, at(t, v, path...))
	}
	return n
}

// str is the string at path in v.
func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := at(t, v, path...).(string)
	if !ok {
		t.Fatalf("%v: %v is not a string", path, at(t, v, path...))
	}
	return s
}

// rfc3339 is the RFC 3339 time at path in v, which must not be zero.
func rfc3339(t *testing.T, v any, path ...any) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, str(t, v, path...))
	if err != nil || tm.IsZero() {
		t.Fatalf("%v: %v (%v)", path, at(t, v, path...), err)
	}
	return tm
}

// TestJSON: base, verify (with the drill), check and restore with --json
// on a small file:// archive print one JSON document of snake_case keys
// with the values of the archive, and exit as without --json; a damaged
// segment makes verify print ok false and the object, exit 5; a restore
// that --if-db-not-exists or --if-replica-exists skips prints restored
// false, exit 0; a failure before any result prints nothing on stdout.
func TestJSON(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	baseSeq := app.db.GetLatestSequenceNumber()

	b := runJSON(t, exitOK, "base", "--db", app.dir, "--to", url, "--json")
	if str(t, b, "location") != url || num(t, b, "timeline") != 1 || num(t, b, "sequence") != float64(baseSeq) ||
		num(t, b, "file_count") < 1 || num(t, b, "size") < 1 || !strings.HasPrefix(str(t, b, "file_list"), "bases/") {
		t.Fatalf("base --json: %v", b)
	}
	if taken := rfc3339(t, b, "time"); time.Since(taken) > time.Minute {
		t.Fatalf("base --json: taken at %v", taken)
	}

	// Segments after the base, then a stopped archiver.
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--segment-age", "50ms", "--nice", "0", "--listen", "")
	store := openLocation(t, url)
	for i := range 3 {
		putN(t, app.db, fmt.Sprintf("more%d-", i), 40)
		time.Sleep(80 * time.Millisecond)
	}
	latest := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the archive", func() bool { arch.failIfExited(t); return archivedTo(t, store, 1) == latest })
	if code := arch.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, arch.out)
	}

	v := runJSON(t, exitOK, "verify", "--from", url, "--drill", "--json")
	if str(t, v, "location") != url || at(t, v, "ok") != true || num(t, v, "bases") != 1 || num(t, v, "files") < 1 ||
		num(t, v, "file_bytes") < 1 || num(t, v, "segments") < 1 || num(t, v, "segment_bytes") < 1 || num(t, v, "batches") < 120 {
		t.Fatalf("verify --json: %v", v)
	}
	if num(t, v, "coverage", 0, "timeline") != 1 || num(t, v, "coverage", 0, "ranges", 0, "from") != float64(baseSeq) ||
		num(t, v, "coverage", 0, "ranges", 0, "to") != float64(latest) || len(at(t, v, "coverage", 0, "holes").([]any)) != 0 {
		t.Fatalf("verify --json coverage: %v", at(t, v, "coverage"))
	}
	if len(at(t, v, "problems").([]any)) != 0 || len(at(t, v, "missing_keys").([]any)) != 0 {
		t.Fatalf("verify --json problems: %v", v)
	}
	if at(t, v, "drill", "ok") != true || num(t, v, "drill", "timeline") != 1 || num(t, v, "drill", "latest") != float64(latest) ||
		str(t, v, "drill", "comparison") == "" || !strings.HasPrefix(str(t, v, "drill", "digest"), "sha256:") ||
		str(t, v, "drill", "digest") != str(t, v, "drill", "want") || num(t, v, "drill", "from_base") != float64(baseSeq) {
		t.Fatalf("verify --json drill: %v", at(t, v, "drill"))
	}
	rfc3339(t, v, "drill", "latest_time")

	c := runJSON(t, exitOK, "check", "--location", url, "--json")
	steps := at(t, c, "steps").([]any)
	if str(t, c, "location") != url || at(t, c, "ok") != true || len(steps) != 8 ||
		at(t, c, "archive", "exists") != true || at(t, c, "archive", "encrypted") != false {
		t.Fatalf("check --json: %v", c)
	}
	for i := range steps {
		if str(t, c, "steps", i, "name") == "" || at(t, c, "steps", i, "ok") != true || num(t, c, "steps", i, "seconds") < 0 {
			t.Fatalf("check --json step %d: %v", i, steps[i])
		}
	}
	c = runJSON(t, exitOK, "check", "--location", "file://"+t.TempDir(), "--json")
	if at(t, c, "ok") != true || at(t, c, "archive", "exists") != false {
		t.Fatalf("check --json of an empty location: %v", c)
	}

	root := t.TempDir()
	dir := filepath.Join(root, "restored")
	r := runJSON(t, exitOK, "restore", "--from", url, "--json", dir)
	if at(t, r, "restored") != true || str(t, r, "dir") != dir || num(t, r, "timeline") != 1 || num(t, r, "sequence") != float64(latest) ||
		num(t, r, "base", "sequence") != float64(baseSeq) || num(t, r, "base", "timeline") != 1 ||
		num(t, r, "segments") < 1 || num(t, r, "batches") < 120 || num(t, r, "base_bytes") < 1 || num(t, r, "segment_bytes") < 1 ||
		at(t, r, "hand_off") != false {
		t.Fatalf("restore --json: %v", r)
	}
	for _, k := range []string{"download_seconds", "replay_seconds", "finish_seconds"} {
		if s := num(t, r, k); s <= 0 || s > 60 {
			t.Fatalf("restore --json: %s %v, want seconds", k, s)
		}
	}
	rfc3339(t, r, "time")
	rfc3339(t, r, "base", "time")

	r = runJSON(t, exitOK, "restore", "--from", url, "--json", "--if-db-not-exists", dir)
	if len(r) != 2 || at(t, r, "restored") != false || !strings.Contains(str(t, r, "reason"), "--if-db-not-exists") {
		t.Fatalf("restore --json --if-db-not-exists into a database: %v", r)
	}
	empty := "file://" + t.TempDir()
	r = runJSON(t, exitOK, "restore", "--from", empty, "--json", "--if-replica-exists", filepath.Join(root, "none"))
	if len(r) != 2 || at(t, r, "restored") != false || !strings.Contains(str(t, r, "reason"), "--if-replica-exists") {
		t.Fatalf("restore --json --if-replica-exists from an empty location: %v", r)
	}

	// No result: nothing on standard output, the error on standard error.
	for _, args := range [][]string{
		{"verify", "--from", empty, "--json"},
		{"restore", "--from", empty, "--json", filepath.Join(root, "none")},
		{"restore", "--from", url, "--json", "--to-seq", "x", filepath.Join(root, "none")},
		{"base", "--db", filepath.Join(root, "no-db"), "--to", url, "--json"},
		{"check", "--location", "relative/path", "--json"},
	} {
		if code, out, errOut := runCLI(t, args...); code == exitOK || out != "" || errOut == "" {
			t.Errorf("rockstream %q: exit %d, stdout %q, stderr %q; want a failure on stderr only", args, code, out, errOut)
		}
	}

	// A damaged segment: ok false, the object and what is wrong, exit 5.
	damaged := copyTree(t, app.bucket)
	segs, _ := filepath.Glob(filepath.Join(damaged, "segments", "00000001", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment in the archive")
	}
	key, _ := filepath.Rel(damaged, segs[0])
	data := readAll(t, segs[0])
	data[len(data)/2] ^= 0x5a
	writeAll(t, segs[0], data)
	v = runJSON(t, exitCorrupt, "verify", "--from", "file://"+damaged, "--json")
	problems := at(t, v, "problems").([]any)
	if at(t, v, "ok") != false || len(problems) == 0 {
		t.Fatalf("verify --json of a damaged archive: %v", v)
	}
	named := false
	for i := range problems {
		named = named || str(t, v, "problems", i, "key") == key && str(t, v, "problems", i, "what") != ""
	}
	if !named {
		t.Fatalf("verify --json of a damaged archive names no problem of %s: %v", key, problems)
	}
}

// TestJSONPromote: promote --json, of a running standby (its HTTP answer)
// and of a stopped one's folder, prints the result with the timings in
// seconds; with --from also the archiver to start.
func TestJSONPromote(t *testing.T) {
	for _, running := range []bool{true, false} {
		app := newAppDB(t, "app")
		url := "file://" + app.bucket
		if code, out, errOut := runCLI(t, "base", "--db", app.dir, "--to", url); code != exitOK {
			t.Fatalf("base: exit %d\n%s%s", code, out, errOut)
		}
		seq := app.db.GetLatestSequenceNumber()
		sbDir := filepath.Join(t.TempDir(), "standby")
		addr := freeAddr(t)
		sb := startCLI(t, nil, "standby", "--from", url, "--listen", addr, "--poll", "10ms", "--writer-id", "w2", sbDir)
		waitUntilT(t, "the standby to catch up", func() bool { sb.failIfExited(t); a, _ := standbyApplied(addr); return a == seq })
		var p map[string]any
		if running {
			p = runJSON(t, exitOK, "promote", "--standby", "http://"+addr, "--json")
			if _, ok := p["next_command"]; ok {
				t.Errorf("promote --standby --json: a next_command: %v", p)
			}
		} else {
			if code := sb.stop(t); code != exitOK {
				t.Fatalf("standby: exit %d\n%s", code, sb.out)
			}
			p = runJSON(t, exitOK, "promote", "--from", url, "--writer-id", "w2", "--json", sbDir)
			if want := "rockstream archive --db " + sbDir + " --to " + url + " --writer-id w2"; str(t, p, "next_command") != want {
				t.Errorf("promote --from --json: next_command %q, want %q", str(t, p, "next_command"), want)
			}
		}
		if num(t, p, "timeline") != 2 || num(t, p, "parent") != 1 || num(t, p, "branch") != float64(seq) || num(t, p, "epoch") < 1 ||
			str(t, p, "writer_id") != "w2" || !strings.HasPrefix(str(t, p, "marker"), "segments/00000001/") {
			t.Fatalf("promote --json (running %v): %v", running, p)
		}
		for _, k := range []string{"drain_seconds", "fence_seconds", "commit_seconds", "total_seconds"} {
			if s := num(t, p, "timings", k); s < 0 || s > 60 {
				t.Fatalf("promote --json: timings.%s %v, want seconds", k, s)
			}
		}
		if num(t, p, "timings", "total_seconds") <= 0 {
			t.Fatalf("promote --json: %v", p)
		}
		if running {
			if code := sb.stop(t); code != exitOK {
				t.Fatalf("the standby turned archiver: exit %d\n%s", code, sb.out)
			}
		}
	}
}

// TestJSONHelp: the --help of each command says what --json prints.
func TestJSONHelp(t *testing.T) {
	for cmd, says := range map[string]string{"verify": "problems [{key, what}]", "base": "file_count", "check": "steps [{name, ok, seconds, error}]",
		"restore": "{restored: false, reason}", "promote": "total_seconds"} {
		code, out, _ := runCLI(t, cmd, "--help")
		if code != exitOK || !strings.Contains(out, "--json") || !strings.Contains(strings.Join(strings.Fields(out), " "), says) {
			t.Errorf("%s --help: exit %d, lacks --json saying %q:\n%s", cmd, code, says, out)
		}
	}
}

// TestJSONVerifyMissingKey: verify --json with a key file that lacks a key
// of the archive prints the report, ok false, the key in missing_keys,
// and exits 2 as without --json.
func TestJSONVerifyMissingKey(t *testing.T) {
	r := newRotated(t)
	v := runJSON(t, exitUsage, "--log-level", "error", "verify", "--from", r.f.url, "--encryption-key-file", r.onlyB, "--json")
	missing, _ := at(t, v, "missing_keys").([]any)
	if at(t, v, "ok") != false || len(missing) != 1 || missing[0] != r.keyA || len(at(t, v, "problems").([]any)) == 0 {
		t.Fatalf("verify --json with key B alone: %v; want ok false and missing key A %s", v, r.keyA)
	}
}
