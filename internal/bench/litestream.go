package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/datagen"
	"github.com/rockstream/rockstream/internal/miniotest"
)

// Litestream, the baseline of the lag figure, is built from the Go module
// proxy at a pinned version, never a dependency of rockstream's module. It
// is cached beside MinIO (ROCKSTREAM_CACHE, default ~/.cache/rockstream),
// so only the first run pays the build (about 2 minutes on two cores).
const (
	litestreamModule  = "github.com/benbjohnson/litestream"
	litestreamVersion = "v0.5.18" // restore -f (follow mode) exists since v0.5.9
)

func cacheDir() string {
	if d := os.Getenv("ROCKSTREAM_CACHE"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "rockstream")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "rockstream")
}

// installLitestream returns the cached binary, building it first if
// needed, and builds the SQLite helper (internal/bench/sqliteload) into the
// work folder.
func (b *bench) installLitestream(ctx context.Context) (string, error) {
	bin := filepath.Join(cacheDir(), "litestream-"+litestreamVersion, "litestream")
	if _, err := os.Stat(bin); err != nil {
		b.logf("building Litestream %s from the Go module proxy into %s (once; about 2 minutes)", litestreamVersion, filepath.Dir(bin))
		tmp := b.path("tmp", "litestream-build")
		cmd := exec.CommandContext(ctx, "go", "install", litestreamModule+"/cmd/litestream@"+litestreamVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go install %s/cmd/litestream@%s: %w\n%s", litestreamModule, litestreamVersion, err, out)
		}
		if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
			return "", err
		}
		if err := os.Rename(filepath.Join(tmp, "litestream"), bin); err != nil {
			return "", err
		}
	}
	return bin, b.buildHelper(ctx)
}

// helperPath is the SQLite helper built into the work folder.
func (b *bench) helperPath() string { return b.path("sqliteload") }

func (b *bench) buildHelper(ctx context.Context) error {
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "sqliteload")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", b.helperPath(), ".")
	cmd.Dir = src
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the SQLite helper in %s: %w\n%s", src, err, out)
	}
	return nil
}

// litestreamSession is Litestream replicating a SQLite database written by
// the helper into a MinIO bucket, and following it into another file.
type litestreamSession struct {
	db, replica, payload string
	replicate, follow    *proc
}

// startLitestream sets up a session with the sync interval age and the
// follow interval poll, in a fresh bucket.
func (b *bench) startLitestream(ctx context.Context, age, poll time.Duration) (*litestreamSession, error) {
	dir := b.path(fmt.Sprintf("litestream-%v", age))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	loc, err := b.minioLocation(ctx)
	if err != nil {
		return nil, err
	}
	s := &litestreamSession{db: filepath.Join(dir, "app.db"), replica: filepath.Join(dir, "follower.db"), payload: filepath.Join(dir, "payload")}
	if err := writePayload(s.payload, 16<<20); err != nil {
		return nil, err
	}
	if _, _, err := b.runProc(ctx, "sqliteload-init", b.helperPath(), []string{"init", s.db}); err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "litestream.yml")
	if err := os.WriteFile(cfg, []byte(litestreamConfig(s.db, loc, age)), 0o600); err != nil {
		return nil, err
	}
	if s.replicate, err = b.start("litestream-replicate", b.lsPath, []string{"replicate", "-config", cfg}, noCABundle); err != nil {
		return nil, err
	}
	if err := waitFor(ctx, "Litestream's first snapshot", time.Minute, s.replicate, func() bool {
		return strings.Contains(s.replicate.log(), "snapshot complete")
	}); err != nil {
		return s, err
	}
	s.follow, err = b.start("litestream-follow", b.lsPath, []string{"restore", "-config", cfg, "-f", "-follow-interval", poll.String(), "-o", s.replica, s.db}, noCABundle)
	if err != nil {
		return s, err
	}
	return s, waitFor(ctx, "Litestream's follower", time.Minute, s.follow, func() bool {
		return strings.Contains(s.follow.log(), "entering follow mode")
	})
}

// noCABundle unsets AWS_CA_BUNDLE for Litestream: with it set, Litestream
// v0.5.18 fails to load its S3 config ("unable to add custom RootCAs
// HTTPClient"), and MinIO on loopback speaks plain HTTP anyway.
const noCABundle = "AWS_CA_BUNDLE="

// litestreamConfig replicates db to the bucket of loc through its proxy,
// with the sync interval age and a monitor interval (how often Litestream
// looks at the WAL) of 100 ms. At the archiver's 10 ms poll, Litestream
// makes an LTX file every 10 ms and its follower, which fetches them one by
// one, fell 2 to 3 s behind on MinIO in trials; 100 ms and 250 ms gave it
// the same lag as each other, its best.
func litestreamConfig(db string, loc *location, age time.Duration) string {
	return fmt.Sprintf(`dbs:
  - path: %s
    monitor-interval: 100ms
    replica:
      type: s3
      bucket: %s
      path: litestream
      endpoint: %s
      region: us-east-1
      force-path-style: true
      access-key-id: %s
      secret-access-key: %s
      sync-interval: %s
`, db, loc.bucket, loc.proxy.Endpoint, miniotest.AccessKey, miniotest.SecretKey, age)
}

// writePayload writes n bytes of datagen values, the rows the helper
// writes.
func writePayload(path string, n int) error {
	g := datagen.New(41)
	data := make([]byte, 0, n)
	for len(data) < n {
		data = g.Value(data, valueSize)
	}
	return os.WriteFile(path, data, 0o644)
}

// stop stops both processes.
func (s *litestreamSession) stop() error {
	var errs []error
	for _, p := range []*proc{s.follow, s.replicate} {
		if p != nil {
			if err := p.stop(30 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

// window runs the helper at rate MB/s and returns the lags of each run.
func (b *bench) litestreamWindow(ctx context.Context, s *litestreamSession, rate float64) (lagResult, error) {
	args := []string{"run", "--db", s.db, "--replica", s.replica, "--payload", s.payload,
		"--commit-bytes", fmt.Sprint(commitBytes(rate)), "--period", commitPeriod.String(),
		"--warmup", b.cfg.LagWarmup.String(), "--window", b.cfg.LagWindow.String(), "--runs", fmt.Sprint(b.cfg.Runs)}
	cmd := exec.CommandContext(ctx, b.helperPath(), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return lagResult{}, fmt.Errorf("sqliteload %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var res struct {
		Runs    [][]int64 `json:"runs"`
		Bytes   int64     `json:"bytes"`
		Seconds float64   `json:"seconds"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return lagResult{}, fmt.Errorf("sqliteload printed %q: %w", out, err)
	}
	lr := lagResult{rate: float64(res.Bytes) / 1e6 / res.Seconds}
	for _, run := range res.Runs {
		lr.runs = append(lr.runs, nanos(run))
	}
	return lr, nil
}

func nanos(ns []int64) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n)
	}
	return out
}
