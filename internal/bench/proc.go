package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// proc is a child process: the archiver, the standby, Litestream. It dies
// with the harness (SIGKILL on the harness's death), and logs into the
// work folder.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	started time.Time
	ended   time.Time // set before done closes
	done    chan struct{}
	hwm     atomic.Int64 // VmHWM in bytes, last read
	err     error
}

// start starts name (a path or a command on PATH) with args; env adds
// variables to the harness's environment.
func (e *env) start(label, name string, args []string, env ...string) (*proc, error) {
	e.logSeq++
	logPath := filepath.Join(e.dir, "logs", fmt.Sprintf("%03d-%s.log", e.logSeq, label))
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), e.childEnv...), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: label, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", label, err)
	}
	e.procs[p] = true
	go p.watchRSS()
	go func() {
		p.err = cmd.Wait()
		p.ended = time.Now()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits for the exit (SIGKILL after limit). An exit
// other than 0 after SIGTERM is an error that quotes the log's tail.
func (p *proc) stop(limit time.Duration) error {
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-p.done:
	case <-time.After(limit):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop %v after SIGTERM; killed (log %s)", p.name, limit, p.logPath)
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, p.err, p.tail())
	}
	return nil
}

// wait waits for the process to end by itself.
func (p *proc) wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop(10 * time.Second)
		return ctx.Err()
	}
	if p.err != nil {
		return fmt.Errorf("%s: %w\n%s", p.name, p.err, p.tail())
	}
	return nil
}

// maxRSS is the process's peak resident set in bytes: its VmHWM, read
// every 20 ms while it ran. (wait4's ru_maxrss cannot serve: it counts the
// harness's own memory, which the child shares between fork and exec.)
func (p *proc) maxRSS() int64 { return p.hwm.Load() }

func (p *proc) watchRSS() {
	path := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if kb := readHWM(path); kb > 0 {
			p.hwm.Store(kb * 1024)
		}
		select {
		case <-p.done:
			return
		case <-tick.C:
		}
	}
}

// readHWM reads VmHWM (kB) from a /proc/PID/status file; 0 if unknown.
func readHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// log is the process's output so far.
func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail() string {
	s := p.log()
	if len(s) > 1500 {
		s = "..." + s[len(s)-1500:]
	}
	return strings.TrimSpace(s)
}

// runProc runs a command to its end and returns its output and duration.
func (e *env) runProc(ctx context.Context, label, name string, args []string, env ...string) (*proc, time.Duration, error) {
	p, err := e.start(label, name, args, env...)
	if err != nil {
		return nil, 0, err
	}
	err = p.wait(ctx)
	return p, p.ended.Sub(p.started), err
}

// getJSON reads a JSON document from a loopback HTTP endpoint.
func getJSON(url string, v any) error {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// waitFor polls cond every 10 ms until it holds, the process p (if any)
// exits, or limit passes.
func waitFor(ctx context.Context, what string, limit time.Duration, p *proc, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if p != nil && p.exited() {
			return fmt.Errorf("waiting for %s: %s exited: %v\n%s", what, p.name, p.err, p.tail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v", what, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

var errNotMeasured = errors.New("not measured")
