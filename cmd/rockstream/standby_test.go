package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/rockstream/rockstream/internal/testdb"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/rocks"
)

// sbSource is a database written by this process and archived by the real
// archiver in this process, into a file store.
type sbSource struct {
	dir, bucket string
	db          *grocksdb.DB
	wo          *grocksdb.WriteOptions
	rng         *rand.Rand
	arch        *archive.Archiver
	fsrc        *rocks.FollowerSource
	cancel      context.CancelFunc
	done        chan error
}

func newSBSource(t *testing.T) *sbSource {
	t.Helper()
	root := t.TempDir()
	s := &sbSource{dir: filepath.Join(root, "db"), bucket: filepath.Join(root, "bucket"),
		wo: grocksdb.NewDefaultWriteOptions(), rng: rand.New(rand.NewPCG(3, 4))}
	s.db = testdb.Open(t, s.dir)
	t.Cleanup(func() { s.stopArchiver(t); s.db.Close() })
	s.write(t, 20)
	store, err := filestore.New(s.bucket)
	if err != nil {
		t.Fatal(err)
	}
	if s.fsrc, err = rocks.NewFollowerSource(s.dir, filepath.Join(root, "secondary")); err != nil {
		t.Fatal(err)
	}
	s.arch, err = archive.New(s.fsrc, store, archive.Options{WriterID: "test", WorkDir: filepath.Join(root, "work"),
		SegmentSize: 16 << 10, SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan error, 1)
	go func() { s.done <- s.arch.Run(ctx) }()
	waitUntilT(t, "the first base", func() bool { return s.arch.Stats().Bases >= 1 })
	return s
}

func (s *sbSource) write(t *testing.T, n int) {
	for range n {
		wb := grocksdb.NewWriteBatch()
		for range 1 + s.rng.IntN(3) {
			wb.Put(fmt.Appendf(nil, "k%04d", s.rng.IntN(300)), fmt.Appendf(nil, "v%d", s.rng.Int64()))
		}
		err := s.db.Write(s.wo, wb)
		wb.Destroy()
		if err != nil {
			t.Error(err)
			return
		}
	}
}

// stopArchiver waits until everything written is archived, and stops it.
func (s *sbSource) stopArchiver(t *testing.T) {
	if s.cancel == nil {
		return
	}
	waitUntilT(t, "the archiver", func() bool { return s.arch.Stats().LastSequence == s.db.GetLatestSequenceNumber() })
	s.cancel()
	s.cancel = nil
	if err := <-s.done; err != nil {
		t.Fatalf("archiver: %v", err)
	}
	s.fsrc.Close()
}

func (s *sbSource) digest(t *testing.T) rocks.Digest {
	f, err := rocks.OpenFollower(s.dir, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func waitUntilT(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// openSeq is the latest sequence of the database in dir, or 0 when there
// is none yet.
func openSeq(t *testing.T, dir string) uint64 {
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		return 0
	}
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		t.Fatalf("the standby's database does not open after kill -9: %v", err)
	}
	defer db.Close()
	return db.LatestSequence()
}

// TestStandbyKill9 kills the standby process at random points while the
// archive grows, restarts it, and checks at the end that it holds exactly
// the source's batches.
func TestStandbyKill9(t *testing.T) {
	src := newSBSource(t)
	dir := filepath.Join(t.TempDir(), "standby")
	from := "file://" + src.bucket
	var stopWriting atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stopWriting.Load() {
			src.write(t, 5)
			time.Sleep(time.Millisecond)
		}
	})
	rng := rand.New(rand.NewPCG(5, 6))
	var last uint64
	for i := range 6 {
		p := startCLI(t, nil, "standby", "--from", from, "--listen=", "--poll", "10ms", dir)
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.wait(t, 30*time.Second)
		seq := openSeq(t, dir)
		if seq < last {
			t.Fatalf("kill %d: the standby went back from %d to %d", i, last, seq)
		}
		t.Logf("kill %d: the standby is at %d (source at %d)", i, seq, src.db.GetLatestSequenceNumber())
		last = seq
	}
	stopWriting.Store(true)
	wg.Wait()
	src.stopArchiver(t)
	want := src.db.GetLatestSequenceNumber()

	addr := freeAddr(t)
	p := startCLI(t, nil, "standby", "--from", from, "--listen", addr, "--poll", "10ms", dir)
	waitUntilT(t, "the standby to catch up", func() bool {
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Applied uint64 `json:"applied_sequence"`
		}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Applied == want
	})
	if code := p.stop(t); code != exitOK {
		t.Fatalf("SIGTERM: exit %d\n%s", code, p.out)
	}
	if got := openSeq(t, dir); got != want {
		t.Fatalf("the standby is at %d, the source at %d", got, want)
	}
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Digest()
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if d := got.Diff(src.digest(t)); d != "" {
		t.Fatalf("after 6 kills the standby differs from the source: %s", d)
	}
}

// TestStandbyBadInput checks the exit codes of what the standby refuses.
func TestStandbyBadInput(t *testing.T) {
	src := newSBSource(t)
	src.stopArchiver(t)
	from := "file://" + src.bucket
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("x"), 0o644)
	m, _, err := manifest.Load(context.Background(), mustFileStore(t, src.bucket))
	if err != nil {
		t.Fatal(err)
	}
	otherArchive := t.TempDir() // an archive of another database
	os.WriteFile(filepath.Join(otherArchive, "manifest.json"), []byte(strings.Replace(mustJSON(t, m), m.Identity, "another-db", 1)), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no from", []string{"standby", t.TempDir()}, exitUsage, "--from is required"},
		{"no dir", []string{"standby", "--from", from}, exitUsage, "one argument"},
		{"bad poll", []string{"standby", "--from", from, "--poll", "0s", t.TempDir()}, exitUsage, "--poll"},
		{"bad poll text", []string{"standby", "--from", from, "--poll", "fast", t.TempDir()}, exitUsage, "poll"},
		{"public listen", []string{"standby", "--from", from, "--listen", "0.0.0.0:0", t.TempDir()}, exitUsage, "--token"},
		{"not a database", []string{"standby", "--from", from, "--listen=", junk}, exitUsage, "holds no RocksDB database"},
		{"another archive", []string{"standby", "--from", "file://" + otherArchive, "--listen=", src.dir}, exitUsage, "another archive"},
		{"no archive", []string{"standby", "--from", "file://" + t.TempDir(), "--listen=", filepath.Join(t.TempDir(), "x")}, exitFailure, "holds no rockstream archive"},
		{"bad url", []string{"standby", "--from", "ftp://x", t.TempDir()}, exitUsage, ""},
	} {
		code, _, errOut := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "goroutine ") {
			t.Errorf("%s: exit %d (want %d), stderr:\n%s", tc.name, code, tc.code, errOut)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
