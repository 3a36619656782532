package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testdb"
)

// The bad-input table of the fault suite (docs/RELIABILITY.md): every
// command, given missing or malformed flags and URLs, wrong credentials,
// an unreachable endpoint, a missing bucket, a folder that is not a
// database, a non-empty target or a target outside the archive, must fail
// with a clear message naming the value, a non-zero exit, no stack trace
// and no secret, and write nothing: the archives, the databases and the
// target folders stay as they were.

// badRow is one bad invocation.
type badRow struct {
	cmd  string   // the command, for the row's name
	name string   // what is wrong
	args []string // after "rockstream"
	env  []string // added to the environment (a wrong secret, fewer attempts)
	code int
	says []string // each must appear in the output
}

// badEnv is what the rows run against.
type badEnv struct {
	file, fileURL string // a file archive of db
	latest        uint64 // its last sequence
	db            string // the archived database
	other         string // another database
	notDB         string // a folder with a file, not a database
	full          string // a non-empty folder
	empty         string // a folder that holds no archive
	s3, s3URL     string // an empty MinIO bucket
	targets       string // a folder for the targets that the rows name (and must not create)
	noBucket      string // a URL of a bucket that does not exist
	down          string // a URL of an endpoint where nothing listens
	root          string // the test's whole work folder: every folder above is in it
	cwd, tmp      string // the rows' working folder and TMPDIR, in root
	srv           *miniotest.Server
}

const badSecret = "wrong-secret-do-not-print" // the wrong credentials of the store rows

func newBadEnv(t *testing.T) *badEnv {
	t.Helper()
	file, latest := restoreArchive(t)
	srv := miniotest.Shared(t)
	e := &badEnv{file: file, fileURL: "file://" + file, latest: latest, db: filepath.Join(filepath.Dir(file), "db"),
		notDB: t.TempDir(), full: t.TempDir(), empty: t.TempDir(), s3: srv.NewBucket(t), srv: srv}
	writeAll(t, filepath.Join(e.notDB, "notes.txt"), []byte("not a database"))
	writeAll(t, filepath.Join(e.full, "keep"), []byte("precious"))
	e.other = filepath.Join(t.TempDir(), "other")
	odb := testdb.Open(t, e.other)
	putN(t, odb, "o", 10)
	odb.Close()
	e.s3URL = "s3://" + e.s3 + "/db?endpoint=" + srv.Endpoint
	e.noBucket = "s3://no-such-bucket-rs/db?endpoint=" + srv.Endpoint
	e.down = "s3://" + e.s3 + "/db?endpoint=http://127.0.0.1:1"
	e.targets = filepath.Join(t.TempDir(), "targets")
	e.cwd, e.tmp = t.TempDir(), t.TempDir()
	// t.TempDir gives folders of one parent: the rows must leave all of it
	// as it was, the folders they name and any other.
	e.root = filepath.Dir(e.notDB)
	for _, d := range []string{file, e.full, e.empty, e.other, e.targets, e.cwd, e.tmp} {
		if !strings.HasPrefix(d, e.root+string(filepath.Separator)) {
			t.Fatalf("%s is not in the test's work folder %s", d, e.root)
		}
	}
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	return e
}

var (
	wrongCreds = []string{"AWS_SECRET_ACCESS_KEY=" + badSecret}
	fewTries   = []string{"AWS_MAX_ATTEMPTS=2"} // an unreachable endpoint fails in 1 s, not 26
)

// storeRows are the rows of a command that takes a location: a malformed
// URL, wrong credentials, an unreachable endpoint, a missing bucket.
func (e *badEnv) storeRows(cmd string, build func(url string) []string) []badRow {
	return []badRow{
		{cmd, "malformed URL", build("s3:/bad"), nil, exitUsage, []string{`"s3:/bad"`, "bad location URL"}},
		{cmd, "unknown scheme", build("ftp://host/x"), nil, exitUsage, []string{"ftp://host/x", "unknown scheme"}},
		{cmd, "relative file URL", build("file://relative/x"), nil, exitUsage, []string{"file://relative/x"}},
		{cmd, "wrong credentials", build(e.s3URL), wrongCreds, exitUnreachable, []string{e.s3, "access denied"}},
		{cmd, "unreachable endpoint", build(e.down), fewTries, exitUnreachable, []string{"127.0.0.1:1", "unreachable"}},
		{cmd, "missing bucket", build(e.noBucket), nil, exitUnreachable, []string{"no-such-bucket-rs", "bucket does not exist"}},
	}
}

func (e *badEnv) archiveRows() []badRow {
	to := func(url string) []string { return []string{"archive", "--db", e.db, "--to", url} }
	return append(e.storeRows("archive", to),
		badRow{"archive", "no --db", []string{"archive", "--to", e.fileURL}, nil, exitUsage, []string{"--db is required (or set ROCKSTREAM_DB)"}},
		badRow{"archive", "no --to", []string{"archive", "--db", e.db}, nil, exitUsage, []string{"--to is required (or set ROCKSTREAM_TO)"}},
		badRow{"archive", "not a database", []string{"archive", "--db", e.notDB, "--to", e.fileURL}, nil, exitUsage, []string{e.notDB, "not a rocksdb database"}},
		badRow{"archive", "missing database", []string{"archive", "--db", filepath.Join(e.empty, "missing"), "--to", e.fileURL}, nil, exitUsage, []string{filepath.Join(e.empty, "missing")}},
		badRow{"archive", "another database's archive", []string{"archive", "--db", e.other, "--to", e.fileURL}, nil, exitUsage, []string{"belongs to another database", "--allow-other-database"}},
		badRow{"archive", "wal-dir missing", []string{"archive", "--db", e.db, "--to", e.fileURL, "--wal-dir", filepath.Join(e.empty, "nowal")}, nil, exitUsage, []string{"--wal-dir", filepath.Join(e.empty, "nowal"), "not a folder"}},
		badRow{"archive", "zero segment size", []string{"archive", "--db", e.db, "--to", e.fileURL, "--segment-size", "0"}, nil, exitUsage, []string{"--segment-size"}},
		badRow{"archive", "segment size text", []string{"archive", "--db", e.db, "--to", e.fileURL, "--segment-size", "lots"}, nil, exitUsage, []string{`--segment-size "lots"`}},
		badRow{"archive", "negative segment age", []string{"archive", "--db", e.db, "--to", e.fileURL, "--segment-age", "-1s"}, nil, exitUsage, []string{"--segment-age"}},
		badRow{"archive", "nice out of range", []string{"archive", "--db", e.db, "--to", e.fileURL, "--nice", "40"}, nil, exitUsage, []string{"--nice 40"}},
		badRow{"archive", "an argument", []string{"archive", "--db", e.db, "--to", e.fileURL, "extra"}, nil, exitUsage, []string{"no arguments", "extra"}},
	)
}

func (e *badEnv) baseRows() []badRow {
	to := func(url string) []string { return []string{"base", "--db", e.db, "--to", url} }
	return append(e.storeRows("base", to),
		badRow{"base", "no --db", []string{"base", "--to", e.fileURL}, nil, exitUsage, []string{"--db is required"}},
		badRow{"base", "not a database", []string{"base", "--db", e.notDB, "--to", e.fileURL}, nil, exitUsage, []string{e.notDB, "not a rocksdb database"}},
	)
}

func (e *badEnv) statusRows() []badRow {
	from := func(url string) []string { return []string{"status", "--from", url} }
	return append(e.storeRows("status", from),
		badRow{"status", "no --from", []string{"status"}, nil, exitUsage, []string{"--from is required (or set ROCKSTREAM_FROM)"}},
		badRow{"status", "no archive", from("file://" + e.empty), nil, exitFailure, []string{e.empty, "holds no rockstream archive"}},
		badRow{"status", "no archive in the bucket", from(e.s3URL), nil, exitFailure, []string{e.s3, "holds no rockstream archive"}},
		badRow{"status", "an argument", []string{"status", "--from", e.fileURL, "extra"}, nil, exitUsage, []string{"no arguments"}},
	)
}

func (e *badEnv) checkRows() []badRow {
	loc := func(url string) []string { return []string{"check", "--location", url} }
	return append(e.storeRows("check", loc),
		badRow{"check", "no --location", []string{"check"}, nil, exitUsage, []string{"--location is required (or set ROCKSTREAM_LOCATION)"}},
		badRow{"check", "a file, not a folder", loc("file://" + filepath.Join(e.full, "keep")), nil, exitFailure, []string{filepath.Join(e.full, "keep")}},
	)
}

func (e *badEnv) restoreRows() []badRow {
	dir := filepath.Join(e.targets, "restored")
	from := func(url string) []string { return []string{"restore", "--from", url, dir} }
	seq := func(n uint64) []string {
		return []string{"restore", "--from", e.fileURL, "--to-seq", fmt.Sprint(n), dir}
	}
	return append(e.storeRows("restore", from),
		badRow{"restore", "no --from", []string{"restore", dir}, nil, exitUsage, []string{"--from is required (or set ROCKSTREAM_FROM)"}},
		badRow{"restore", "no DIR", []string{"restore", "--from", e.fileURL}, nil, exitUsage, []string{"one argument"}},
		badRow{"restore", "two DIRs", []string{"restore", "--from", e.fileURL, dir, "other"}, nil, exitUsage, []string{"one argument"}},
		badRow{"restore", "flags after DIR", []string{"restore", "--from", e.fileURL, dir, "--force"}, nil, exitUsage, []string{"flags go before DIR"}},
		badRow{"restore", "a path, not a URL", from("relative/path"), nil, exitUsage, []string{"relative/path", "no scheme"}},
		badRow{"restore", "negative sequence", []string{"restore", "--from", e.fileURL, "--to-seq", "-1", dir}, nil, exitUsage, []string{`--to-seq "-1"`}},
		badRow{"restore", "timeline 0", []string{"restore", "--from", e.fileURL, "--timeline", "0", dir}, nil, exitUsage, []string{`--timeline "0"`}},
		badRow{"restore", "zero concurrency", []string{"restore", "--from", e.fileURL, "--concurrency", "0", dir}, nil, exitUsage, []string{"--concurrency 0"}},
		badRow{"restore", "non-empty DIR", []string{"restore", "--from", e.fileURL, e.full}, nil, exitUsage, []string{e.full, "not empty", "--force"}},
		badRow{"restore", "past the end", seq(e.latest + 1), nil, exitUsage, []string{fmt.Sprint(e.latest + 1), "restorable: ["}},
		badRow{"restore", "before the first base", seq(1), nil, exitUsage, []string{"restorable: ["}},
		badRow{"restore", "beyond any sequence", []string{"restore", "--from", e.fileURL, "--to-seq", "72057594037927936", dir}, nil, exitUsage, []string{`--to-seq "72057594037927936"`}},
		badRow{"restore", "sequence text", []string{"restore", "--from", e.fileURL, "--to-seq", "five", dir}, nil, exitUsage, []string{`--to-seq "five"`}},
		badRow{"restore", "time before the archive", []string{"restore", "--from", e.fileURL, "--to-time", "2000-01-01T00:00:00Z", dir}, nil, exitUsage, []string{"earliest base"}},
		badRow{"restore", "time text", []string{"restore", "--from", e.fileURL, "--to-time", "yesterday", dir}, nil, exitUsage, []string{`"yesterday"`, "RFC 3339"}},
		badRow{"restore", "both targets", []string{"restore", "--from", e.fileURL, "--to-seq", "5", "--to-time", "2025-01-01T00:00:00Z", dir}, nil, exitUsage, []string{"exclusive"}},
		badRow{"restore", "unknown timeline", []string{"restore", "--from", e.fileURL, "--timeline", "9", dir}, nil, exitUsage, []string{"no timeline 9"}},
		badRow{"restore", "no archive", from("file://" + e.empty), nil, exitFailure, []string{"holds no rockstream archive"}},
	)
}

func (e *badEnv) verifyRows() []badRow {
	from := func(url string) []string { return []string{"verify", "--from", url} }
	return append(e.storeRows("verify", from),
		badRow{"verify", "no --from", []string{"verify"}, nil, exitUsage, []string{"--from is required (or set ROCKSTREAM_FROM)"}},
		badRow{"verify", "no archive", from("file://" + e.empty), nil, exitFailure, []string{"holds no rockstream archive"}},
		badRow{"verify", "zero concurrency", []string{"verify", "--from", e.fileURL, "--concurrency", "0"}, nil, exitUsage, []string{"--concurrency 0"}},
		badRow{"verify", "an argument", []string{"verify", "--from", e.fileURL, "extra"}, nil, exitUsage, []string{"no arguments"}},
	)
}

func (e *badEnv) standbyRows() []badRow {
	dir := filepath.Join(e.targets, "standby")
	from := func(url string) []string { return []string{"standby", "--from", url, "--listen=", dir} }
	return append(e.storeRows("standby", from),
		badRow{"standby", "no --from", []string{"standby", dir}, nil, exitUsage, []string{"--from is required"}},
		badRow{"standby", "no DIR", []string{"standby", "--from", e.fileURL}, nil, exitUsage, []string{"one argument"}},
		badRow{"standby", "not a database", []string{"standby", "--from", e.fileURL, "--listen=", e.notDB}, nil, exitUsage, []string{e.notDB, "holds no RocksDB database"}},
		badRow{"standby", "another archive's database", []string{"standby", "--from", e.fileURL, "--listen=", e.other}, nil, exitUsage, []string{e.other, "another archive"}},
		badRow{"standby", "no archive", from("file://" + e.empty), nil, exitFailure, []string{"holds no rockstream archive"}},
		badRow{"standby", "zero poll", []string{"standby", "--from", e.fileURL, "--poll", "0s", dir}, nil, exitUsage, []string{"--poll"}},
		badRow{"standby", "poll text", []string{"standby", "--from", e.fileURL, "--poll", "fast", dir}, nil, exitUsage, []string{"fast"}},
		badRow{"standby", "catch-up text", []string{"standby", "--from", e.fileURL, "--catch-up", "lots", dir}, nil, exitUsage, []string{`--catch-up "lots"`, "or off"}},
		badRow{"standby", "zero catch-up", []string{"standby", "--from", e.fileURL, "--catch-up", "0", dir}, nil, exitUsage, []string{`--catch-up "0"`}},
		badRow{"standby", "public listen without token", []string{"standby", "--from", e.fileURL, "--listen", "0.0.0.0:0", dir}, nil, exitUsage, []string{"0.0.0.0:0", "--token"}},
	)
}

func (e *badEnv) promoteRows() []badRow {
	from := func(url string) []string { return []string{"promote", "--from", url, e.db} }
	return append(e.storeRows("promote", from),
		badRow{"promote", "neither --standby nor --from", []string{"promote"}, nil, exitUsage, []string{"--standby URL", "--from URL DIR"}},
		badRow{"promote", "both --standby and --from", []string{"promote", "--standby", "http://127.0.0.1:1", "--from", e.fileURL, e.db}, nil, exitUsage, []string{"--standby URL"}},
		badRow{"promote", "--from without DIR", []string{"promote", "--from", e.fileURL}, nil, exitUsage, []string{"one argument"}},
		badRow{"promote", "--standby with DIR", []string{"promote", "--standby", "http://127.0.0.1:1", e.db}, nil, exitUsage, []string{"no arguments"}},
		badRow{"promote", "no standby listens", []string{"promote", "--standby", "http://127.0.0.1:1"}, nil, exitFailure, []string{"http://127.0.0.1:1", "connection refused"}},
		badRow{"promote", "not a database", []string{"promote", "--from", e.fileURL, e.notDB}, nil, exitUsage, []string{e.notDB}},
		badRow{"promote", "another archive's database", []string{"promote", "--from", e.fileURL, e.other}, nil, exitUsage, []string{e.other, "another archive"}},
		badRow{"promote", "no archive", []string{"promote", "--from", "file://" + e.empty, e.db}, nil, exitFailure, []string{"holds no rockstream archive"}},
	)
}

// pruneRows are the rows of 'rockstream prune', and of the archiver's
// retention flags.
func (e *badEnv) pruneRows() []badRow {
	from := func(url string) []string { return []string{"prune", "--from", url, "--keep-last", "1"} }
	p := func(args ...string) []string { return append([]string{"prune", "--from", e.fileURL}, args...) }
	a := func(args ...string) []string {
		return append([]string{"archive", "--db", e.db, "--to", e.fileURL}, args...)
	}
	return append(e.storeRows("prune", from),
		badRow{"prune", "no --from", []string{"prune", "--keep-last", "2"}, nil, exitUsage, []string{"--from is required (or set ROCKSTREAM_FROM)"}},
		badRow{"prune", "no policy", p(), nil, exitUsage, []string{"no retention policy: give --keep-last N, --keep-within DURATION"}},
		badRow{"prune", "keep-last 0", p("--keep-last", "0"), nil, exitUsage, []string{"--keep-last 0: want 1 or more"}},
		badRow{"prune", "keep-last negative", p("--keep-last", "-3"), nil, exitUsage, []string{"--keep-last -3"}},
		badRow{"prune", "keep-last text", p("--keep-last", "two"), nil, exitUsage, []string{"keep-last"}},
		badRow{"prune", "keep-within text", p("--keep-within", "banana"), nil, exitUsage, []string{`--keep-within: duration "banana"`}},
		badRow{"prune", "keep-within zero", p("--keep-within", "0d"), nil, exitUsage, []string{"want a duration above zero"}},
		badRow{"prune", "keep-within negative", p("--keep-within", "-7d"), nil, exitUsage, []string{"--keep-within"}},
		badRow{"prune", "grace text", p("--keep-last", "1", "--grace", "soon"), nil, exitUsage, []string{"--grace"}},
		badRow{"prune", "timeout text", p("--keep-last", "1", "--timeout", "later"), nil, exitUsage, []string{"timeout"}},
		badRow{"prune", "an argument", p("--keep-last", "1", "extra"), nil, exitUsage, []string{"no arguments"}},
		badRow{"prune", "no archive", []string{"prune", "--from", "file://" + e.empty, "--keep-last", "1"}, nil, exitFailure, []string{"holds no rockstream archive"}},
		badRow{"archive", "retention keep-last 0", a("--retention-keep-last", "0"), nil, exitUsage, []string{"--retention-keep-last 0: want 1 or more"}},
		badRow{"archive", "retention keep-within text", a("--retention-keep-within", "soon"), nil, exitUsage, []string{"--retention-keep-within"}},
		badRow{"archive", "retention interval 0", a("--retention-keep-last", "2", "--retention-interval", "0"), nil, exitUsage, []string{"--retention-interval"}},
		badRow{"archive", "retention grace text", a("--retention-keep-last", "2", "--retention-grace", "x"), nil, exitUsage, []string{"--retention-grace"}},
	)
}

// TestBadInputEveryCommand runs the bad-input table of every command.
func TestBadInputEveryCommand(t *testing.T) {
	e := newBadEnv(t)
	rows := slices.Concat(e.archiveRows(), e.baseRows(), e.statusRows(), e.checkRows(), e.restoreRows(),
		e.verifyRows(), e.standbyRows(), e.promoteRows(), e.pruneRows())
	start := time.Now()
	for _, r := range rows {
		t.Run(r.cmd+"/"+r.name, func(t *testing.T) { e.run(t, r) })
	}
	t.Logf("%d rows over 9 commands in %v", len(rows), time.Since(start).Round(time.Millisecond))
}

// run runs one row as a process and checks its exit, its output and that
// nothing was written.
func (e *badEnv) run(t *testing.T, r badRow) {
	before := e.snapshot(t)
	p := startCLIIn(t, e.cwd, append([]string{"TMPDIR=" + e.tmp}, r.env...), r.args...)
	code := p.wait(t, time.Minute)
	out := p.out.String()
	if code != r.code {
		t.Errorf("rockstream %q: exit %d, want %d\n%s", r.args, code, r.code, out)
	}
	for _, s := range r.says {
		if !strings.Contains(out, s) {
			t.Errorf("rockstream %q: the output does not say %q:\n%s", r.args, s, out)
		}
	}
	if strings.Contains(out, "goroutine ") || strings.Contains(out, "panic") || strings.Contains(out, badSecret) {
		t.Errorf("rockstream %q printed a stack trace or the secret:\n%s", r.args, out)
	}
	if after := e.snapshot(t); after != before {
		t.Errorf("rockstream %q wrote something:\nbefore:\n%s\nafter:\n%s", r.args, before, after)
	}
}

// snapshot describes everything the rows must leave alone: the test's
// whole work folder (the file archive without the file store's own lock
// and temporary files, the databases, the folders, the targets, the rows'
// working folder and TMPDIR) and every bucket of the MinIO server with
// its objects (a row must not create a bucket either).
func (e *badEnv) snapshot(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(treeOf(t, e.root), "\n") {
		if !strings.Contains(line, "/.objstore/") {
			b.WriteString(line + "\n")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := e.srv.Client(miniotest.AccessKey, miniotest.SecretKey)
	buckets, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatal(err)
	}
	for _, bk := range buckets.Buckets {
		fmt.Fprintf(&b, "bucket %s\n", aws.ToString(bk.Name))
		p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: bk.Name})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range out.Contents {
				fmt.Fprintf(&b, "s3 %s/%s %s\n", aws.ToString(bk.Name), aws.ToString(o.Key), aws.ToString(o.ETag))
			}
		}
	}
	return b.String()
}
