// Package miniotest starts a private MinIO server on a free loopback port,
// with its own data folder, for the tests of a package.
//
// The binary is the one scripts/setup.sh --test builds into its cache
// (scripts/minio-path.sh prints where; $ROCKSTREAM_MINIO overrides it).
// When it is missing, a test that needs MinIO is skipped with the command
// that installs it, except under CI=true (or ROCKSTREAM_REQUIRE_MINIO=1),
// where it fails: CI never counts a skipped S3 test as a pass.
//
// Use it from TestMain so the server stops when the tests end:
//
//	func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }
//
// and in a test: srv := miniotest.Shared(t); bucket := srv.NewBucket(t).
package miniotest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Credentials of every server this package starts.
const (
	AccessKey = "rockstream-test"
	SecretKey = "rockstream-test-secret"
)

// Server is a running MinIO.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	addr     string
	dataDir  string
	binary   string
	logFile  *os.File
	cmd      *exec.Cmd
	waitErr  chan error
}

var (
	sharedMu  sync.Mutex
	shared    *Server
	sharedErr error
	bucketSeq atomic.Int64
)

// Main runs the tests and stops the shared server.
func Main(m *testing.M) int {
	code := m.Run()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared != nil {
		shared.Stop()
		os.RemoveAll(shared.dataDir)
	}
	return code
}

// Required reports whether a missing MinIO fails tests instead of skipping
// them.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("ROCKSTREAM_REQUIRE_MINIO") == "1"
}

// Shared returns the package's server, starting it on first use.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	sharedMu.Lock()
	defer sharedMu.Unlock()
	if shared == nil && sharedErr == nil {
		shared, sharedErr = Start()
	}
	if sharedErr != nil {
		unavailable(tb, sharedErr)
	}
	return shared
}

func unavailable(tb testing.TB, err error) {
	tb.Helper()
	if Required() {
		tb.Fatalf("MinIO is required (CI=true) but cannot start: %v", err)
	}
	tb.Skipf("MinIO unavailable, S3 tests skipped (run scripts/setup.sh --test): %v", err)
}

// Binary finds the MinIO binary.
func Binary() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "minio-path.sh")
	out, err := exec.Command("bash", script).Output()
	if err != nil {
		return "", fmt.Errorf("run %s: %w", script, err)
	}
	path := strings.TrimSpace(string(out))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no MinIO binary at %s: %w", path, err)
	}
	return path, nil
}

// Start starts a new server with a fresh data folder.
func Start() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "rockstream-minio-")
	if err != nil {
		return nil, err
	}
	s := &Server{dataDir: dir, binary: bin}
	for attempt := 0; attempt < 3; attempt++ {
		if s.addr, err = freeAddr(); err != nil {
			return nil, err
		}
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return s, nil
		}
	}
	return nil, err
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *Server) start() error {
	logPath := filepath.Join(filepath.Dir(s.dataDir), filepath.Base(s.dataDir)+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	console, err := freeAddr()
	if err != nil {
		return err
	}
	cmd := exec.Command(s.binary, "server", filepath.Join(s.dataDir, "data"), "--address", s.addr, "--console-address", console, "--quiet")
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+AccessKey, "MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start %s: %w", s.binary, err)
	}
	s.cmd, s.logFile, s.waitErr = cmd, logFile, make(chan error, 1)
	go func() { s.waitErr <- cmd.Wait() }()
	if err := s.waitReady(30 * time.Second); err != nil {
		s.Stop()
		log, _ := os.ReadFile(logPath)
		return fmt.Errorf("minio on %s: %w\n%s", s.addr, err, tail(string(log), 2000))
	}
	return nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (s *Server) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.waitErr:
			s.waitErr <- err
			return fmt.Errorf("exited early: %v", err)
		default:
		}
		resp, err := http.Get(s.Endpoint + "/minio/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not ready in time")
}

// Stop stops the server, keeping its data: Restart brings it back on the
// same port with the same buckets (for outage tests).
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.waitErr:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.waitErr
	}
	s.cmd = nil
	s.logFile.Close()
}

// Restart starts a stopped server again on the same address.
func (s *Server) Restart() error {
	if s.cmd != nil {
		return errors.New("minio is running")
	}
	return s.start()
}

// Client returns an S3 client for the server, with the given credentials.
func (s *Server) Client(accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

// Credentials returns the server's credentials for an s3store.Options.
func (s *Server) Credentials() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")
}

// NewBucket creates an empty bucket with a unique name and returns it.
func (s *Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("test-%d-%d", os.Getpid(), bucketSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client(AccessKey, SecretKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("create bucket %s: %v", name, err)
	}
	return name
}
