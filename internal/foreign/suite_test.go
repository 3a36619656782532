package foreign_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/internal/foreign"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/rocks"
)

// outcome is what rockstream must do with a configuration: archive,
// restore and follow it exactly (works), or refuse it when the archiver
// starts, saying so (refused: the archiver must exit non-zero with this
// text in its output), or, for writes that never reach the WAL (holes), a
// restore at a mark must equal it or be refused, never silently differ,
// the latest state must restore exactly, and a standby must reach it or
// stop saying it must be rebuilt.
type outcome struct {
	refused string
	holes   bool
}

var (
	works = outcome{}
	holes = outcome{holes: true}
)

// foreignCase is one application configuration of the suite.
type foreignCase struct {
	shape string
	minio bool // archive to MinIO instead of file://
	// encrypted runs every command with a key file (client-side
	// encryption): the archive, restores, the standby and the promotion.
	encrypted bool
	// stream runs a second standby during the archive step, following the
	// archiver's live stream (archive --stream, standby --primary), and
	// compares it with the final mark.
	stream  bool
	threads int // writer threads (0: one)
	want    outcome
}

func (c foreignCase) name() string {
	n := c.shape
	if c.encrypted {
		n += "+encrypted"
	}
	if c.stream {
		n += "+stream"
	}
	if c.minio {
		n += "@minio"
	}
	return n
}

// foreignCases is the suite's table: every shape of package foreign (and
// db_bench's merge workload, shape dbbench) and what rockstream must do
// with it. docs/COMPATIBILITY.md says what each does today.
var foreignCases = []foreignCase{
	{shape: "plain", want: works},
	{shape: "plain", minio: true, want: works},
	{shape: "homeserver", threads: 2, want: works}, // pipelined writes, contended
	{shape: "homeserver", encrypted: true, want: works},
	{shape: "homeserver", stream: true, want: works},
	{shape: "txn", stream: true, want: works},
	{shape: "cfchurn", stream: true, want: works},
	{shape: "merge", want: works},
	{shape: "txn", want: works},
	{shape: "cfchurn", want: works},
	{shape: "walzstd", want: works},
	{shape: "smallmem", want: works},
	{shape: "waldir", want: works},
	{shape: "unordered", threads: 2, want: works},
	{shape: "avoidflush", want: works},
	{shape: "blobdb", want: works},
	{shape: "comparator", want: works},
	{shape: "udt", want: works},
	{shape: "unlogged", want: holes},
	{shape: "dbbench", want: works},
}

// TestForeignWriters runs, for each configuration, an application that
// writes with its own options (cmd/foreignwriter, or db_bench) while
// 'rockstream archive' runs beside it as a sidecar, then checks each step
// as a subtest: the archive reaches the writer's final sequence; a restore
// of the latest state and at several of the writer's marks (its initial
// mark, which the first base holds, and three later) equals the state the
// writer recorded there, family by family (the set of families too), with
// the first differing key named; a standby built from the archive equals
// the final state; once promoted, and the restored folder too, the
// application opens it read-write with its own options, sees the final
// state and writes. Configurations run in parallel (most of a run waits on
// processes); the log ends with a table of every step's outcome.
//
// ROCKSTREAM_LONG=1 writes ten times as many batches.
func TestForeignWriters(t *testing.T) {
	runs := make([]*run, len(foreignCases)) // each subtest sets its own
	// after the parallel subtests
	t.Cleanup(func() { t.Logf("outcome per configuration and step:\n%s", matrix(runs)) })
	for i, c := range foreignCases {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel() // -parallel, GOMAXPROCS by default: most of a run waits on processes
			if c.shape == "dbbench" {
				testenv.RequireTool(t, "db_bench") // fails under CI=true
			}
			r := newRun(t, c)
			r.parent = t
			runs[i] = r
			ok := r.step(t, "archive", r.archive)
			if c.want.refused != "" {
				return
			}
			if !ok && len(r.marks) == 0 {
				t.Fatalf("the writer recorded no marks, nothing to compare with")
			}
			r.steps(t)
		})
	}
}

// step runs one step as a subtest and records its outcome.
func (r *run) step(t *testing.T, name string, f func(*testing.T)) bool {
	ok := t.Run(name, f)
	r.results = append(r.results, stepResult{name, ok})
	return ok
}

type stepResult struct {
	name string
	ok   bool
}

// matrix is a table of every run's steps, for the log.
func matrix(runs []*run) string {
	var b strings.Builder
	for _, r := range runs {
		if r == nil { // skipped before it started (a missing tool outside CI)
			continue
		}
		fmt.Fprintf(&b, "%-12s", r.c.name())
		for _, s := range r.results {
			v := "PASS"
			if !s.ok {
				v = "FAIL"
			}
			fmt.Fprintf(&b, " %s:%s", s.name, v)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// run is one configuration's run: its folders, archive, processes, marks.
type run struct {
	c          foreignCase
	rockstream string
	writer     string
	root       string
	db         string
	marksFile  string
	url        string
	env        []string
	marks      []foreign.Mark
	results    []stepResult
	standbyP   *proc  // the running standby, between the standby and promote steps
	standbyA   string // its --listen address
	streamAddr string // the archiver's --listen address
	parent     *testing.T
	archived   uint64 // the last sequence the archive held when the archive step ended
}

func newRun(t *testing.T, c foreignCase) *run {
	rs, w := bins(t)
	root := t.TempDir()
	r := &run{c: c, rockstream: rs, writer: w, root: root, db: filepath.Join(root, "db"),
		marksFile: filepath.Join(root, "marks", "marks.jsonl"), url: "file://" + filepath.Join(root, "archive")}
	if err := os.MkdirAll(filepath.Dir(r.marksFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if c.minio {
		srv := miniotest.Shared(t)
		r.url = "s3://" + srv.NewBucket(t) + "/" + c.shape + "?endpoint=" + srv.Endpoint
		r.env = []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey, "AWS_REGION=us-east-1"}
	}
	if c.encrypted {
		key := filepath.Join(root, "encryption.key")
		if _, err := crypt.Keygen(key, false, time.Now()); err != nil {
			t.Fatal(err)
		}
		r.env = append(r.env, "ROCKSTREAM_ENCRYPTION_KEY_FILE="+key)
	}
	return r
}

// steps checks the restores, the standby and the application's open.
func (r *run) steps(t *testing.T) {
	final := r.marks[len(r.marks)-1]
	if r.c.encrypted {
		// Everything below runs on an archive that is really encrypted.
		m, err := os.ReadFile(filepath.Join(strings.TrimPrefix(r.url, "file://"), "manifest.json"))
		if err != nil || !strings.Contains(string(m), `"key_ids"`) {
			t.Fatalf("the archive of an encrypted run is not marked encrypted (%v):\n%s", err, m)
		}
	}
	latest := filepath.Join(r.root, "restore-latest")
	r.step(t, "restore-latest", func(t *testing.T) {
		r.restore(t, latest, 0)
		r.compare(t, latest, final)
	})
	for i, m := range restorePoints(r.marks) {
		name := "restore-at-initial"
		if i > 0 {
			name = fmt.Sprintf("restore-at-mark-%d", i)
		}
		r.step(t, name, func(t *testing.T) {
			dir := filepath.Join(r.root, fmt.Sprintf("restore-%d", m.Seq))
			if !r.c.want.holes {
				r.restore(t, dir, m.Seq)
			} else if r.refusedRestore(t, dir, m.Seq) {
				return
			}
			r.compare(t, dir, m)
		})
	}
	if pts := restorePoints(r.marks); len(pts) > 0 && !r.c.want.holes {
		r.step(t, "standby-catch-up", func(t *testing.T) { r.standbyCatchUp(t, pts[0], final) })
	}
	r.step(t, "standby", func(t *testing.T) { r.standby(t, final) })
	r.step(t, "promote", func(t *testing.T) { r.promote(t, final) })
	r.step(t, "app-open", func(t *testing.T) {
		if _, err := os.Stat(filepath.Join(latest, "CURRENT")); err != nil {
			t.Fatalf("no restored folder to open (restore-latest failed): %v", err)
		}
		out, err := r.verify(latest, final.Seq, "--read-write")
		if err != nil {
			t.Fatalf("the application (%s options) cannot open the restored folder read-write and find its final state: %v\n%s", r.c.shape, err, out)
		}
	})
}

// restorePoints are the marks a restore targets besides the latest: the
// initial mark (where the first base is) and three marks spread over the
// rest, the final one excluded.
func restorePoints(ms []foreign.Mark) []foreign.Mark {
	final := ms[len(ms)-1]
	var mid []foreign.Mark
	for _, m := range ms[1:] {
		if m.Name == "mark" && m.Seq < final.Seq && m.Seq > ms[0].Seq {
			mid = append(mid, m)
		}
	}
	out := []foreign.Mark{ms[0]}
	if ms[0].Seq == final.Seq {
		return nil
	}
	if len(mid) <= 3 {
		return append(out, mid...)
	}
	for i := range 3 {
		out = append(out, mid[(i*(len(mid)-1))/2])
	}
	return out
}

func (r *run) restore(t *testing.T, dir string, seq uint64) {
	t.Helper()
	if p := r.runRestore(t, dir, seq); p.err != nil {
		t.Fatalf("rockstream %s: %v\n%s", strings.Join(p.cmd.Args[1:], " "), p.err, tail(p.output()))
	}
}

func (r *run) runRestore(t *testing.T, dir string, seq uint64) *proc {
	t.Helper()
	args := []string{"restore", "--from", r.url}
	if seq != 0 {
		args = append(args, "--to-seq", strconv.FormatUint(seq, 10))
	}
	p := start(t, r.env, nil, r.rockstream, append(args, dir)...)
	<-p.done
	return p
}

// refusedRestore tries a restore to seq that may be refused (a hole): it
// reports whether it was, with the message, which must name the
// restorable ranges. A restore that succeeds is left for compare.
func (r *run) refusedRestore(t *testing.T, dir string, seq uint64) bool {
	t.Helper()
	p := r.runRestore(t, dir, seq)
	if p.err == nil {
		return false
	}
	if !strings.Contains(p.output(), "restorable") {
		t.Fatalf("a restore to %d, refused, says nothing of the restorable ranges: %v\n%s", seq, p.err, tail(p.output()))
	}
	t.Logf("refused, as it may be (writes outside the WAL): %s", tail(p.output()))
	return true
}

// compare opens dir with the application's options, read-only, and checks
// that it holds the state of mark m; the writer names the first differing
// key of each family that differs.
func (r *run) compare(t *testing.T, dir string, m foreign.Mark) {
	t.Helper()
	out, err := r.verify(dir, m.Seq)
	if err != nil {
		t.Fatalf("%s is not the writer's state at sequence %d (%s mark after batch %d): %v\n%s",
			filepath.Base(dir), m.Seq, m.Name, m.Batch, err, out)
	}
}

// verify runs the writer's verify mode on dir against the mark at seq.
func (r *run) verify(dir string, seq uint64, extra ...string) (string, error) {
	args := append([]string{"--shape", r.c.shape, "--verify", dir, "--marks", r.marksFile,
		"--mark", strconv.FormatUint(seq, 10)}, extra...)
	p := startNoT(r.writer, args...)
	<-p.done
	return tail(p.output()), p.err
}

// startNoT runs a short command whose failure is the result, not a test
// error.
func startNoT(name string, args ...string) *proc {
	p := &proc{name: filepath.Base(name), done: make(chan struct{})}
	p.cmd = newCmd(name, args...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		p.err = err
		close(p.done)
		return p
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	return p
}

// standby builds a standby from the archive, waits until it applied the
// writer's final sequence and compares it (running) with the final mark. It
// leaves the standby running for the promote step.
func (r *run) standby(t *testing.T, final foreign.Mark) {
	if r.archived < final.Seq {
		t.Fatalf("the archive holds up to sequence %d, not the final mark's %d (see the archive step): no standby can reach it", r.archived, final.Seq)
	}
	dir := filepath.Join(r.root, "standby")
	addr := freeAddr(t)
	p := startOwned(t, r.parent, r.env, nil, r.rockstream, "standby", "--from", r.url, "--listen", addr, "--poll", "20ms",
		"--work-dir", filepath.Join(r.root, "standby-work"), "--segment-age", "100ms", dir)
	var last string
	err := waitFor(p, waitLimit, func() bool {
		if r.c.want.holes && p.exited() && strings.Contains(p.output(), "rebuil") {
			return true // it stopped, saying it must be rebuilt: allowed after a hole
		}
		st, err := standbyStatus(addr)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", st)
		return st.Applied >= final.Seq
	})
	if err != nil {
		p.stop(t)
		t.Fatalf("the standby never applied the writer's final sequence %d: %v\nits last status: %s", final.Seq, err, last)
	}
	if p.exited() {
		t.Logf("the standby stopped at a hole, saying it must be rebuilt (allowed for %s): %s", r.c.shape, tail(p.output()))
		return
	}
	r.standbyP, r.standbyA = p, addr
	r.compareLive(t, dir, final)
}

// standbyCatchUp starts a standby on a folder restored at mark from (the
// initial mark), far behind the archive, with --catch-up 1B: it replays the
// backlog as a restore does (the families flushed together, stopping before
// the first transaction marker) and follows from there (the output must say
// "catching up"). Stopped once it has
// applied the final mark, its folder must equal the final state. A first
// run is killed (SIGKILL) 50 ms into its catch-up: the families flush
// together, so the folder holds one sequence's state, from which the second
// run goes on.
func (r *run) standbyCatchUp(t *testing.T, from, final foreign.Mark) {
	if r.archived < final.Seq {
		t.Fatalf("the archive holds up to sequence %d, not the final mark's %d (see the archive step)", r.archived, final.Seq)
	}
	dir := filepath.Join(r.root, "standby-catch-up")
	r.restore(t, dir, from.Seq)
	k := startOwned(t, t, r.env, nil, r.rockstream, "standby", "--from", r.url, "--listen", "", "--catch-up", "1B", dir)
	if err := waitFor(k, waitLimit, func() bool { return strings.Contains(k.output(), "catching up") }); err != nil {
		t.Fatalf("the standby restored at sequence %d did not start to catch up: %v", from.Seq, err)
	}
	time.Sleep(50 * time.Millisecond)
	k.cmd.Process.Kill()
	<-k.done
	t.Logf("killed during the catch-up (it had finished: %v)", strings.Contains(k.output(), "caught up"))
	addr := freeAddr(t)
	p := startOwned(t, t, r.env, nil, r.rockstream, "standby", "--from", r.url, "--listen", addr, "--poll", "20ms",
		"--catch-up", "1B", dir)
	var last string
	err := waitFor(p, waitLimit, func() bool {
		st, err := standbyStatus(addr)
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%+v", st)
		return st.State == "following" && st.Applied >= final.Seq
	})
	if err != nil {
		p.stop(t)
		t.Fatalf("the standby restored at sequence %d never applied the final sequence %d: %v\nits last status: %s", from.Seq, final.Seq, err, last)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("the standby: %v\n%s", err, tail(p.output()))
	}
	// The catch-up opens the folder with bulk-load options (vector
	// memtables, atomic flush) and keeps the application's aside meanwhile:
	// after the kill and the second run the application's are the newest
	// again and the copy is gone.
	if _, err := os.Stat(filepath.Join(dir, rocks.KeptOptionsName)); !os.IsNotExist(err) {
		t.Fatalf("%s is still in the standby's folder after a clean stop: %v", rocks.KeptOptionsName, err)
	}
	if opts := newestOptionsText(t, dir); strings.Contains(opts, "VectorRepFactory") {
		t.Fatalf("the standby's folder kept the catch-up's bulk-load options as its own:\n%s", opts)
	}
	// The killed run may have caught up all the way before the kill: the
	// second then has nothing to catch up with.
	for _, l := range strings.Split(p.output(), "\n") {
		if strings.Contains(l, "caught up") {
			t.Log(l)
		}
	}
	r.compare(t, dir, final)
}

// compareLive is compare on the folder of a running standby: a read-only
// open there races the standby's own compactions (a file that the open's
// MANIFEST names can be deleted before the open reads it). Such an open
// is tried again, up to liveOpenTries times; any other difference fails
// at once.
func (r *run) compareLive(t *testing.T, dir string, m foreign.Mark) {
	t.Helper()
	for try := 1; ; try++ {
		out, err := r.verify(dir, m.Seq)
		if err == nil {
			return
		}
		if try == liveOpenTries || !strings.Contains(out, "No such file or directory") {
			t.Fatalf("%s is not the writer's state at sequence %d (%s mark after batch %d): %v\n%s",
				filepath.Base(dir), m.Seq, m.Name, m.Batch, err, out)
		}
	}
}

// liveOpenTries bounds the read-only opens of a running standby's folder.
const liveOpenTries = 10

// promote promotes the running standby, opens the promoted folder as the
// application does (read-write, its own options: the final state, and a
// write), and stops the process, which archives the folder after the
// promotion.
func (r *run) promote(t *testing.T, final foreign.Mark) {
	sb := r.standbyP
	if sb == nil {
		t.Fatalf("no standby caught up to promote (see the standby step; after a hole it may have stopped, then there is nothing to promote)")
	}
	defer func() {
		if err := sb.stop(t); err != nil {
			t.Errorf("the standby exits with %v on SIGTERM after its promotion:\n%s", err, tail(sb.output()))
		}
	}()
	pr := start(t, r.env, nil, r.rockstream, "promote", "--standby", "http://"+r.standbyA)
	<-pr.done
	if pr.err != nil {
		t.Fatalf("rockstream promote: %v\n%s\nthe standby:\n%s", pr.err, tail(pr.output()), tail(sb.output()))
	}
	dir := filepath.Join(r.root, "standby")
	out, err := r.verify(dir, final.Seq, "--read-write")
	if err != nil {
		t.Fatalf("the application (%s options) cannot open the promoted folder read-write and find its final state: %v\n%s", r.c.shape, err, out)
	}
}

// newestOptionsText returns the text of the newest OPTIONS-<n> file of the
// database in dir.
func newestOptionsText(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	best, bestN := "", -1
	for _, e := range ents {
		n, err := strconv.Atoi(strings.TrimPrefix(e.Name(), "OPTIONS-"))
		if strings.HasPrefix(e.Name(), "OPTIONS-") && err == nil && n > bestN {
			best, bestN = e.Name(), n
		}
	}
	if best == "" {
		t.Fatalf("no OPTIONS file in %s", dir)
	}
	b, err := os.ReadFile(filepath.Join(dir, best))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
