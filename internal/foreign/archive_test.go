package foreign_test

import (
	"encoding/json"
	"fmt"
	"github.com/rockstream/rockstream/standby"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/foreign"
	"github.com/rockstream/rockstream/internal/testenv"
)

// writerArgs are the writer's sizes: a few MB and a few seconds of writing
// per shape, ten times as much under ROCKSTREAM_LONG=1.
func writerArgs() []string {
	return []string{"--seed", "7", "--initial", "200",
		"--batches", strconv.Itoa(testenv.Scale(1600, 16000)),
		"--mark-every", strconv.Itoa(testenv.Scale(280, 2800))}
}

// archive runs the writer with the archiver beside it: the writer writes
// its initial batches and waits; the archiver starts (its first base holds
// them); the writer writes the rest once the archive holds the initial
// mark; the archiver is stopped once the archive holds the final mark.
func (r *run) archive(t *testing.T) {
	defer r.loadMarks(t)
	if r.c.shape == "dbbench" {
		r.archiveDBBench(t)
		return
	}
	stdin, goLine := io.Pipe()
	defer goLine.Close()
	args := append([]string{"--db", r.db, "--shape", r.c.shape, "--marks", r.marksFile,
		"--threads", strconv.Itoa(max(r.c.threads, 1))}, writerArgs()...)
	w := start(t, nil, stdin, r.writer, args...)
	initial := r.waitLine(t, w, "ready")
	a := r.startArchiver(t)
	if r.c.want.refused != "" {
		r.checkRefused(t, a)
		w.stop(t)
		return
	}
	// An archive that misses the initial mark is reported, and the writer
	// goes on all the same, so that every later step has its marks; the
	// wait for the final mark is then left out (the archiver is stuck or
	// gone).
	stuck := !r.waitArchived(t, a, initial, "initial")
	var sb *proc
	var sbAddr string
	if r.c.stream && !stuck {
		sb, sbAddr = r.startStreamingStandby(t)
		// The writer goes on once the standby follows the stream: a
		// bootstrap slower than the writer would see every batch come
		// from the bucket, and prove nothing of the stream.
		err := waitFor(sb, waitLimit, func() bool {
			st, err := standbyStatus(sbAddr)
			return err == nil && st.State == standby.Following && st.Stream != nil && st.Stream.Connected
		})
		if err != nil {
			t.Errorf("the streaming standby never followed the stream: %v\n%s", err, tail(sb.output()))
		}
	}
	fmt.Fprintln(goLine, "go")
	goLine.Close() // exec copies stdin: Wait returns only once it ends
	final := r.waitLine(t, w, "done")
	if !stuck {
		r.waitArchived(t, a, final, "final")
	}
	if sb != nil {
		r.checkStreamingStandby(t, sb, sbAddr, final)
	}
	if err := w.stop(t); err != nil {
		t.Errorf("the writer exits with %v on SIGTERM:\n%s", err, tail(w.output()))
	}
	stopArchiver(t, a)
}

// startStreamingStandby starts a standby that follows the archiver's live
// stream while the writer writes.
func (r *run) startStreamingStandby(t *testing.T) (*proc, string) {
	addr := freeAddr(t)
	p := start(t, r.env, nil, r.rockstream, "standby", "--from", r.url, "--listen", addr, "--poll", "20ms",
		"--primary", "http://"+r.streamAddr, "--work-dir", filepath.Join(r.root, "stream-standby-work"),
		filepath.Join(r.root, "stream-standby"))
	return p, addr
}

// checkStreamingStandby waits until the streaming standby applied the
// final sequence, checks that batches came by the stream, compares it with
// the writer's final state, and stops it.
func (r *run) checkStreamingStandby(t *testing.T, p *proc, addr string, final uint64) {
	t.Helper()
	defer func() {
		if err := p.stop(t); err != nil {
			t.Errorf("the streaming standby exits with %v on SIGTERM:\n%s", err, tail(p.output()))
		}
	}()
	var last standby.Status
	err := waitFor(p, waitLimit, func() bool {
		st, err := standbyStatus(addr)
		last = st
		return err == nil && st.Applied >= final
	})
	if err != nil {
		t.Errorf("the streaming standby never applied the writer's final sequence %d: %v\nits status: %+v\n%s", final, err, last, tail(p.output()))
		return
	}
	if last.Stream == nil || last.Stream.Batches == 0 {
		t.Errorf("the streaming standby applied nothing from the stream: %+v", last.Stream)
	}
	t.Logf("the streaming standby applied %d batches from the stream", last.Stream.Batches)
	r.compareLive(t, filepath.Join(r.root, "stream-standby"), foreign.Mark{Name: "final", Seq: final})
}

// stopArchiver stops a running archiver, which must exit 0; one that
// already exited was reported by the wait that saw it.
func stopArchiver(t *testing.T, a *proc) {
	t.Helper()
	if a.exited() {
		return
	}
	if err := a.stop(t); err != nil {
		t.Errorf("the archiver exits with %v on SIGTERM:\n%s", err, tail(a.output()))
	}
}

func (r *run) startArchiver(t *testing.T) *proc {
	args := []string{"archive", "--db", r.db, "--to", r.url,
		"--work-dir", filepath.Join(r.root, "work"), "--segment-age", "100ms", "--nice", "0", "--summary-interval", "0"}
	r.streamAddr = freeAddr(t)
	args = append(args, "--listen", r.streamAddr)
	if r.c.stream {
		args = append(args, "--stream")
	}
	return start(t, r.env, nil, r.rockstream, args...)
}

// waitLine waits for the writer's line "prefix SEQ" and returns SEQ.
func (r *run) waitLine(t *testing.T, w *proc, prefix string) uint64 {
	t.Helper()
	var seq uint64
	err := waitFor(w, waitLimit, func() bool {
		var ok bool
		seq, ok = lineValue(w.output(), prefix)
		return ok
	})
	if err != nil {
		t.Fatalf("the writer (%s) never printed %q: %v", r.c.shape, prefix, err)
	}
	return seq
}

// waitArchived waits until the archive holds seq; an archiver that exits
// first, or an archive that does not get there, fails the step.
func (r *run) waitArchived(t *testing.T, a *proc, seq uint64, what string) bool {
	t.Helper()
	var got uint64
	err := waitFor(a, waitLimit, func() bool {
		got = archivedSeq(r.rockstream, r.url, r.env)
		return got >= seq
	})
	r.archived = got
	if err != nil {
		msg := fmt.Sprintf("the archive never held the writer's %s mark (sequence %d; it holds up to %d): %v", what, seq, got, err)
		if !a.exited() {
			msg += "\nthe archiver, still running, said:\n" + tail(a.output())
		}
		t.Error(msg)
		return false
	}
	return true
}

// checkRefused checks that the archiver refuses the configuration at start
// with the expected message.
func (r *run) checkRefused(t *testing.T, a *proc) {
	t.Helper()
	if err := waitFor(nil, waitLimit, a.exited); err != nil {
		t.Fatalf("the archiver must refuse %s saying %q; it still runs: %v\n%s", r.c.shape, r.c.want.refused, err, tail(a.output()))
	}
	if a.err == nil || !strings.Contains(a.output(), r.c.want.refused) {
		t.Fatalf("the archiver must refuse %s saying %q; it exited with %v:\n%s", r.c.shape, r.c.want.refused, a.err, tail(a.output()))
	}
}

func (r *run) loadMarks(t *testing.T) {
	ms, err := foreign.ReadMarks(r.marksFile)
	if err != nil {
		t.Errorf("the writer's marks: %v", err)
	}
	r.marks = ms
}

// archiveDBBench: db_bench creates the database (fillseq), the archiver
// starts, db_bench merges into it (mergerandom, uint64add); the marks are
// the states the writer program reads from the finished database.
func (r *run) archiveDBBench(t *testing.T) {
	bench := testenv.RequireTool(t, "db_bench")
	common := []string{"--db=" + r.db, "--wal_ttl_seconds=3600", "--merge_operator=uint64add", "--value_size=8",
		"--key_size=16", "--compression_type=none", "--write_buffer_size=262144", "--seed=7", "--threads=1"}
	r.dbBench(t, bench, append(common, "--benchmarks=fillseq", "--num=2000")...)
	initial := r.recordMark(t, "initial")
	a := r.startArchiver(t)
	if !r.waitArchived(t, a, initial.Seq, "initial") {
		return
	}
	num := testenv.Scale(20000, 200000)
	r.dbBench(t, bench, append(common, "--benchmarks=mergerandom", "--use_existing_db=1", "--num="+strconv.Itoa(num))...)
	final := r.recordMark(t, "final")
	r.waitArchived(t, a, final.Seq, "final")
	stopArchiver(t, a)
}

func (r *run) dbBench(t *testing.T, bench string, args ...string) {
	t.Helper()
	out, err := exec.Command(bench, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("db_bench %s: %v\n%s", strings.Join(args, " "), err, tail(string(out)))
	}
}

// recordMark reads the finished db_bench database with the writer's verify
// mode (read-only) and appends its state to the marks file.
func (r *run) recordMark(t *testing.T, name string) foreign.Mark {
	t.Helper()
	out, err := exec.Command(r.writer, "--shape", "dbbench", "--verify", r.db).Output()
	if err != nil {
		t.Fatalf("read the db_bench database: %v\n%s", err, out)
	}
	var m foreign.Mark
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("the writer's verify output: %v\n%s", err, out)
	}
	m.Name = name
	if err := foreign.AppendMark(r.marksFile, m); err != nil {
		t.Fatal(err)
	}
	return m
}

func newCmd(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = os.Environ()
	return cmd
}
