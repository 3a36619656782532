package foreign_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/standby"
)

func TestMain(m *testing.M) {
	code := miniotest.Main(m)
	os.RemoveAll(binDir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// bins builds rockstream and foreignwriter once per test binary.
func bins(t *testing.T) (rockstream, writer string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "foreign-bin-")
		if buildErr != nil {
			return
		}
		for _, p := range []string{"./cmd/rockstream", "./internal/foreign/cmd/foreignwriter"} {
			cmd := exec.Command("go", "build", "-o", binDir+"/", p)
			cmd.Dir = "../.."
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "rockstream"), filepath.Join(binDir, "foreignwriter")
}

// proc is a process of the suite, with its output kept.
type proc struct {
	name string
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func start(t *testing.T, env []string, stdin io.Reader, name string, args ...string) *proc {
	t.Helper()
	return startOwned(t, t, env, stdin, name, args...)
}

// startOwned starts a process that outlives the subtest t: owner's cleanup
// kills it.
func startOwned(t, owner *testing.T, env []string, stdin io.Reader, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: filepath.Base(name), cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr, p.cmd.Stdin = p, p, stdin
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	owner.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the exit; it returns the error of Wait.
func (p *proc) stop(t *testing.T) error {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(time.Minute):
		t.Fatalf("%s %q still runs a minute after SIGTERM:\n%s", p.name, p.cmd.Args[1:], tail(p.output()))
		return nil
	}
}

// waitFor polls cond until it holds, the process p (when not nil) exits,
// or limit passes; the limit only turns a hang into a failure.
func waitFor(p *proc, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited (%v) before the condition held:\n%s", p.name, p.err, tail(p.output()))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the condition did not hold after %v", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// waitLimit bounds every wait: it only says how long a stuck step takes to
// fail, so it is far above what a step takes (the initial mark is archived
// in about 0.3 s on a loaded 2-core machine; an unlogged writer's base
// waits for its flush), also on a slow machine running 16 at once.
var waitLimit = testenv.Scale(2*time.Minute, 5*time.Minute)

// tail returns what matters of a process's output: its error lines (logged
// errors and warnings, the final error, an assertion or a crash), or else
// its last lines. A crash's goroutine dump and registers are left out.
func tail(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	var key []string
	for _, l := range lines {
		for _, m := range keyMarkers {
			if strings.Contains(l, m) {
				key = append(key, l)
				break
			}
		}
	}
	switch {
	case len(key) > 12:
		return strings.Join(append(key[:12], "..."), "\n")
	case len(key) > 0:
		return strings.Join(key, "\n")
	case len(lines) > 20:
		lines = append([]string{"..."}, lines[len(lines)-20:]...)
	}
	return strings.Join(lines, "\n")
}

var keyMarkers = []string{"level=ERROR", "level=WARN", "rockstream:", "foreignwriter:", "differs from", "column family", "key by key", "key-by-key",
	"Assertion", "SIGABRT", "SIGSEGV", "fatal error", "panic:", "signal arrived", "Aborted"}

// lineValue returns the number after prefix on a line of the output, when
// there is one.
func lineValue(out, prefix string) (uint64, bool) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var v uint64
		if _, err := fmt.Sscanf(sc.Text(), prefix+" %d", &v); err == nil {
			return v, true
		}
	}
	return 0, false
}

// archivedSeq returns the last sequence the archive at url holds, by
// 'rockstream status --json' (0 when it cannot say yet).
func archivedSeq(bin, url string, env []string) uint64 {
	cmd := exec.Command(bin, "status", "--from", url, "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		return 0
	}
	var st catalog.Status
	if err := json.Unmarshal(out, &st); err != nil {
		return 0
	}
	var last uint64
	for _, tl := range st.Timelines {
		last = max(last, tl.LastSequence)
	}
	return last
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func standbyStatus(addr string) (standby.Status, error) {
	var st standby.Status
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}
