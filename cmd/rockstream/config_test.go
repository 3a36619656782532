package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// writeConfig writes a config file and returns its path.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rockstream.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// resolved runs `rockstream ARGS` with archive's and standby's actions
// replaced by one that reads the config file as they do, and returns each
// database's value of keys (the top level's under "(top)").
func resolved(t *testing.T, keys []string, args ...string) (map[string]map[string]string, int, string) {
	t.Helper()
	app := newApp()
	var errOut bytes.Buffer
	app.Writer, app.ErrWriter = io.Discard, &errOut
	got := map[string]map[string]string{}
	values := func(c *cli.Context) map[string]string {
		m := map[string]string{}
		for _, k := range keys {
			m[k] = flagValue(c, k)
		}
		return m
	}
	for _, cmd := range app.Commands {
		read := map[string]func(*cli.Context) (*cli.Context, []*dbContext, error){
			"archive": archiveDatabases, "standby": standbyDatabases}[cmd.Name]
		if read == nil {
			continue
		}
		cmd.Action = func(c *cli.Context) error {
			top, dbs, err := read(c)
			if err != nil {
				return err
			}
			got["(top)"] = values(top)
			for _, d := range dbs {
				got[d.name] = values(d.c)
			}
			return nil
		}
	}
	code := exitOK
	if err := runApp(app, append([]string{"rockstream"}, args...)); err != nil {
		code = exitCode(err)
		fmt.Fprintln(&errOut, err)
	}
	return got, code, errOut.String()
}

// TestConfigPrecedence sets segment-age in every combination of the four
// sources: the flag, the environment, the database's entry, the file's top
// level. The first set wins, in that order; else the default.
func TestConfigPrecedence(t *testing.T) {
	const flagV, envV, dbV, topV, defaultV = "6s", "5s", "4s", "3s", "1s"
	for mask := range 16 {
		hasFlag, hasEnv, hasDB, hasTop := mask&8 != 0, mask&4 != 0, mask&2 != 0, mask&1 != 0
		name := fmt.Sprintf("flag=%v,env=%v,db=%v,top=%v", hasFlag, hasEnv, hasDB, hasTop)
		t.Run(name, func(t *testing.T) {
			file := "databases:\n  - name: a\n    db: /srv/a\n    to: file:///srv/archive/a\n"
			if hasDB {
				file += "    segment-age: " + dbV + "\n"
			}
			file += "  - name: b\n    db: /srv/b\n    to: file:///srv/archive/b\n"
			if hasTop {
				file += "segment-age: " + topV + "\n"
			}
			args := []string{"archive", "--config", writeConfig(t, file)}
			if hasFlag {
				args = append(args, "--segment-age", flagV)
			}
			if hasEnv {
				t.Setenv("ROCKSTREAM_SEGMENT_AGE", envV)
			}
			got, code, errOut := resolved(t, []string{"segment-age"}, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			first := func(vals ...string) string {
				for _, v := range vals {
					if v != "" {
						return v
					}
				}
				return defaultV
			}
			pick := func(ok bool, v string) string {
				if ok {
					return v
				}
				return ""
			}
			wantA := first(pick(hasFlag, flagV), pick(hasEnv, envV), pick(hasDB, dbV), pick(hasTop, topV))
			wantB := first(pick(hasFlag, flagV), pick(hasEnv, envV), pick(hasTop, topV))
			if a, b := got["a"]["segment-age"], got["b"]["segment-age"]; a != wantA || b != wantB {
				t.Fatalf("segment-age: a %s, b %s; want a %s, b %s", a, b, wantA, wantB)
			}
		})
	}
}

// TestConfigEmptyEnv: an empty environment variable (ROCKSTREAM_TOKEN= from
// a compose file whose ${TOKEN} is unset) counts as unset, for every type of
// flag: the value comes from the flag, else the database's entry, else the
// top level, else the default, as if the variable were not there.
func TestConfigEmptyEnv(t *testing.T) {
	const dbs = "databases:\n  - name: a\n    db: /srv/a\n    to: file:///srv/archive/a\n    from: file:///srv/archive/a\n    dir: /srv/a\n"
	for _, k := range []struct {
		cmd, key                   string
		flagV, dbV, topV, defaultV string
	}{
		{"standby", "token", "from-flag", "from-db", "from-top", ""},
		{"standby", "listen", "127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003", "127.0.0.1:9465"},
		{"archive", "takeover", "true", "false", "true", "false"},
		{"archive", "segment-age", "6s", "4s", "3s", "1s"},
		{"archive", "retention-keep-last", "6", "4", "3", "0"},
	} {
		for mask := range 8 {
			hasFlag, hasDB, hasTop := mask&4 != 0, mask&2 != 0, mask&1 != 0
			file, want := dbs, k.defaultV
			if hasTop {
				file, want = k.key+": "+k.topV+"\n"+file, k.topV
			}
			if hasDB {
				file, want = file+"    "+k.key+": "+k.dbV+"\n", k.dbV
			}
			if k.cmd == "archive" {
				file = strings.ReplaceAll(strings.ReplaceAll(file, "    from: file:///srv/archive/a\n", ""), "    dir: /srv/a\n", "")
			} else {
				file = strings.ReplaceAll(strings.ReplaceAll(file, "    db: /srv/a\n", ""), "    to: file:///srv/archive/a\n", "")
			}
			args := []string{k.cmd, "--config", writeConfig(t, file)}
			if hasFlag {
				args, want = append(args, "--"+k.key+"="+k.flagV), k.flagV
			}
			t.Setenv("ROCKSTREAM_"+envName(k.key), "")
			got, code, errOut := resolved(t, []string{k.key}, args...)
			if code != exitOK {
				t.Fatalf("%s flag=%v db=%v top=%v: exit %d: %s", k.key, hasFlag, hasDB, hasTop, code, errOut)
			}
			if got["a"][k.key] != want {
				t.Errorf("%s with ROCKSTREAM_%s empty, flag=%v db=%v top=%v: %q, want %q",
					k.key, envName(k.key), hasFlag, hasDB, hasTop, got["a"][k.key], want)
			}
		}
	}
}

// TestEmptyEnvWithoutConfig: without a config file too, an empty variable
// leaves the flag's default.
func TestEmptyEnvWithoutConfig(t *testing.T) {
	t.Setenv("ROCKSTREAM_LISTEN", "")
	t.Setenv("ROCKSTREAM_SEGMENT_AGE", "")
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	var listen, age string
	for _, cmd := range app.Commands {
		if cmd.Name == "standby" {
			cmd.Action = func(c *cli.Context) error {
				listen, age = c.String("listen"), c.Duration("segment-age").String()
				return nil
			}
		}
	}
	if err := runApp(app, []string{"rockstream", "standby", "/srv/a"}); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1:9465" || age != "1s" {
		t.Errorf("with ROCKSTREAM_LISTEN and ROCKSTREAM_SEGMENT_AGE empty: listen %q, segment-age %s; want the defaults 127.0.0.1:9465 and 1s", listen, age)
	}
}

// TestConfigProcessSettings checks the settings of the whole process: the
// log level of the file is used unless a flag before or after the command
// name, or the environment, sets it; listen comes from the top level.
func TestConfigProcessSettings(t *testing.T) {
	path := writeConfig(t, `
log-level: warn
listen: 127.0.0.1:9999
takeover: true
databases:
  - name: a
    db: /srv/a
    to: s3://bucket/a
    takeover: false
  - name: b
    db: /srv/b
    to: s3://bucket/b
`)
	keys := []string{"log-level", "listen", "takeover"}
	for _, tc := range []struct {
		env  string
		args []string
		want string
	}{
		{"", []string{"archive", "--config", path}, "warn"},
		{"", []string{"--log-level", "error", "archive", "--config", path}, "error"},
		{"", []string{"archive", "--log-level", "debug", "--config", path}, "debug"},
		{"info", []string{"archive", "--config", path}, "info"},
	} {
		if tc.env != "" {
			t.Setenv("ROCKSTREAM_LOG_LEVEL", tc.env)
		}
		got, code, errOut := resolved(t, keys, tc.args...)
		if code != exitOK {
			t.Fatalf("%q: exit %d: %s", tc.args, code, errOut)
		}
		if got["(top)"]["log-level"] != tc.want || got["a"]["log-level"] != tc.want {
			t.Errorf("%q (env %q): log-level %q, want %q", tc.args, tc.env, got["(top)"]["log-level"], tc.want)
		}
		if got["(top)"]["listen"] != "127.0.0.1:9999" || got["a"]["takeover"] != "false" || got["b"]["takeover"] != "true" {
			t.Errorf("%q: %v", tc.args, got)
		}
	}
}

// TestConfigBadFiles: every mistake in the file is refused with exit 2,
// naming the file, the line and the key, and never showing a value that may
// be a secret.
func TestConfigBadFiles(t *testing.T) {
	const marker = "MARKER-c0nf1g-s3cr3t"
	two := "  - name: a\n    db: /srv/a\n    to: file:///srv/archive/a\n  - name: b\n    db: /srv/b\n    to: file:///srv/archive/b\n"
	for _, tc := range []struct {
		name, file string
		cmd        string // default archive
		says       []string
	}{
		{"empty", "", "", []string{"is empty"}},
		{"not yaml", "databases: [a\n", "", []string{"not valid YAML"}},
		{"two documents", "databases: []\n---\nx: 1\n", "", []string{"more than one YAML document"}},
		{"a list", "- a\n- b\n", "", []string{"line 1", "must be a mapping"}},
		{"no databases", "segment-age: 1s\n", "", []string{"no databases"}},
		{"databases a mapping", "databases:\n  a: 1\n", "", []string{"line 2", "databases must be a list"}},
		{"databases empty", "databases: []\n", "", []string{"databases is empty"}},
		{"database a value", "databases:\n  - a\n", "", []string{"line 2", "a database must be a mapping"}},
		{"no name", "databases:\n  - db: /srv/a\n    to: file:///x\n", "", []string{"line 2", "has no name"}},
		{"bad name", "databases:\n  - name: 'a b'\n", "", []string{"line 2", "name must be"}},
		{"same name", "databases:\n  - name: a\n    db: /a\n  - name: a\n    db: /b\n", "", []string{`two databases are named "a"`, "lines 2 and 4"}},
		{"unknown key", "databases:\n" + two + "bogus: " + marker + "\n", "", []string{"line 8", "unknown key bogus"}},
		{"unknown key in a database", "databases:\n  - name: a\n    segment_age: 1s\n", "", []string{"line 3", "unknown key segment_age", "did you mean segment-age"}},
		{"short name", "databases:\n  - name: a\n    d: /srv/a\n", "", []string{"line 3", "unknown key d"}},
		{"key twice", "databases:\n  - name: a\n    db: /a\n    db: /b\n", "", []string{"line 4", "db is given twice (first at line 3)"}},
		{"bad duration", "segment-age: fast\ndatabases:\n" + two, "", []string{"line 1", "segment-age", `"fast"`}},
		{"a list value", "databases:\n  - name: a\n    segment-age: [1s]\n", "", []string{"line 3", "segment-age takes one value, not a list"}},
		{"bad bool", "databases:\n  - name: a\n    takeover: maybe\n", "", []string{"line 3", "takeover"}},
		{"bad int", "nice: ten\ndatabases:\n" + two, "", []string{"line 1", "nice"}},
		{"process key in a database", "databases:\n  - name: a\n    listen: 127.0.0.1:1\n", "", []string{"line 3", "listen applies to the whole process"}},
		{"config in config", "config: /x\ndatabases:\n" + two, "", []string{"line 1", "unknown key config"}},
		{"cpu-profile in config", "cpu-profile: /tmp/p\ndatabases:\n" + two, "", []string{"line 1", "unknown key cpu-profile"}},
		{"secret key", "secret-access-key: " + marker + "\ndatabases:\n" + two, "", []string{"line 1", "credentials do not belong"}},
		{"access key in a database", "databases:\n  - name: a\n    aws_access_key_id: " + marker + "\n", "", []string{"line 3", "credentials do not belong"}},
		{"no to", "databases:\n  - name: a\n    db: /srv/a\n", "", []string{"database a", "line 2", "has no to"}},
		{"no db", "databases:\n  - name: a\n    to: file:///srv/x\n", "", []string{"database a", "has no db"}},
		{"same db", "databases:\n  - name: a\n    db: /srv/a\n    to: file:///x/a\n  - name: b\n    db: /srv/a/\n    to: file:///x/b\n", "",
			[]string{"databases a and b share db", "line 3", "line 6"}},
		{"same location", "databases:\n  - name: a\n    db: /srv/a\n    to: s3://bk1/p\n  - name: b\n    db: /srv/b\n    to: s3://bk1/p/\n", "",
			[]string{"databases a and b share to"}},
		{"nested location", "databases:\n  - name: a\n    db: /srv/a\n    to: file:///x\n  - name: b\n    db: /srv/b\n    to: file:///x/b\n", "",
			[]string{"databases a and b overlap in to", "file:///x (a, line 4)"}},
		{"same work dir", "work-dir: /srv/work\ndatabases:\n" + two, "", []string{"databases a and b share work-dir: /srv/work (a, line 1, top level)"}},
		{"bad url", "databases:\n  - name: a\n    db: /srv/a\n    to: s3://" + marker + ":" + marker + "@bucket/x\n", "", []string{"database a", "credentials do not belong in a URL"}},
		{"bad log level", "log-level: loud\ndatabases:\n" + two, "", []string{"log-level"}},
		{"standby: shared listen", "databases:\n  - name: a\n    from: file:///x/a\n    dir: /s/a\n  - name: b\n    from: file:///x/b\n    dir: /s/b\n", "standby",
			[]string{"databases a and b share listen: 127.0.0.1:9465 (a, the default)"}},
		{"standby: no dir", "databases:\n  - name: a\n    from: file:///x/a\n", "standby", []string{"database a", "has no dir"}},
		{"standby: dir at the top", "dir: /s\ndatabases:\n  - name: a\n", "standby", []string{"line 1", "unknown key dir at the top level"}},
		{"standby: public listen", "databases:\n  - name: a\n    from: file:///x/a\n    dir: /s/a\n    listen: 0.0.0.0:1\n", "standby", []string{"database a", "--token"}},
		{"standby: bad token type", "token: [" + marker + "]\ndatabases:\n  - name: a\n", "standby", []string{"line 1", "token takes one value"}},
	} {
		cmd := tc.cmd
		if cmd == "" {
			cmd = "archive"
		}
		code, out, errOut := runCLI(t, cmd, "--config", writeConfig(t, tc.file))
		all := out + errOut
		ok := code == exitUsage && strings.Contains(all, "rockstream.yaml")
		for _, s := range tc.says {
			ok = ok && strings.Contains(all, s)
		}
		if !ok || strings.Contains(all, marker) || strings.Contains(all, "goroutine ") {
			t.Errorf("%s: exit %d, want %d saying %q (and never the marker)\n%s", tc.name, code, exitUsage, tc.says, all)
		}
	}
}

// TestConfigFileMissing: a file that cannot be read, and a DIR argument
// beside --config, are bad usage.
func TestConfigFileMissing(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yaml")
	for _, args := range [][]string{
		{"archive", "--config", missing},
		{"standby", "--config", missing},
		{"archive", "--config", t.TempDir()},
	} {
		code, _, errOut := runCLI(t, args...)
		if code != exitUsage || !strings.Contains(errOut, "--config") {
			t.Errorf("%q: exit %d: %s", args, code, errOut)
		}
	}
	t.Setenv("ROCKSTREAM_CONFIG", missing)
	if code, _, errOut := runCLI(t, "archive"); code != exitUsage || !strings.Contains(errOut, missing) {
		t.Errorf("ROCKSTREAM_CONFIG: exit %d: %s", code, errOut)
	}
	path := writeConfig(t, "databases:\n  - name: a\n    from: file:///x\n    dir: /s\n")
	if code, _, errOut := runCLI(t, "standby", "--config", path, "/some/dir"); code != exitUsage || !strings.Contains(errOut, "--config") {
		t.Errorf("standby --config FILE DIR: exit %d: %s", code, errOut)
	}
}

// TestConfigDocExamples reads every YAML example of the README and
// docs/OPERATIONS.md as the command its first line names would.
func TestConfigDocExamples(t *testing.T) {
	n := 0
	for _, doc := range []string{"../../README.md", "../../docs/OPERATIONS.md"} {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, block := range strings.Split(string(text), "```yaml\n")[1:] {
			example, _, _ := strings.Cut(block, "```")
			cmd := "archive"
			if first, _, _ := strings.Cut(example, "\n"); strings.Contains(first, "standby") {
				cmd = "standby"
			}
			_, code, errOut := resolved(t, nil, cmd, "--config", writeConfig(t, example))
			if code != exitOK {
				t.Errorf("%s: the example for %s does not load: exit %d: %s\n%s", doc, cmd, code, errOut, example)
			}
			n++
		}
	}
	if n < 3 {
		t.Fatalf("found %d YAML examples in the docs, want at least 3", n)
	}
}

// TestConfigExpandsEnv: ${NAME} and ${NAME:-DEFAULT} in the config file's
// values come from the environment; $$ is a $; an unset variable is an
// error that names it and its line, never the value.
func TestConfigExpandsEnv(t *testing.T) {
	t.Setenv("RS_TEST_BUCKET", "backups")
	t.Setenv("RS_TEST_EMPTY", "")
	for _, tc := range []struct{ value, want, err string }{
		{"s3://${RS_TEST_BUCKET}/app", "s3://backups/app", ""},
		{"s3://${RS_TEST_UNSET:-fallback}/app", "s3://fallback/app", ""},
		{"s3://${RS_TEST_EMPTY:-fallback}/a$$b", "s3://fallback/a$b", ""},
		{"s3://bkt/a$b", "s3://bkt/a$b", ""},
		{"s3://${RS_TEST_UNSET}/app", "", "line 4: to: ${RS_TEST_UNSET} is not set"},
		{"s3://${RS_TEST_EMPTY}/app", "", "${RS_TEST_EMPTY} is not set (or is empty)"},
		{"s3://${RS_TEST_BUCKET/app", "", "a ${ that is not ${NAME}"},
		{"s3://${RS_TEST_BUCKET}/${bad-name}", "", "a ${ that is not ${NAME}"},
	} {
		file := writeConfig(t, "databases:\n  - name: a\n    db: /srv/a\n    to: "+tc.value+"\n")
		got, code, errOut := resolved(t, []string{"to"}, "archive", "--config", file)
		if tc.err == "" {
			if code != exitOK || got["a"]["to"] != tc.want {
				t.Errorf("to: %s: %q, exit %d %s; want %q", tc.value, got["a"]["to"], code, errOut, tc.want)
			}
			continue
		}
		if code != exitUsage || !strings.Contains(errOut, tc.err) || strings.Contains(errOut, "backups") {
			t.Errorf("to: %s: exit %d, %q; want %d and %q, without the value", tc.value, code, errOut, exitUsage, tc.err)
		}
	}
}
