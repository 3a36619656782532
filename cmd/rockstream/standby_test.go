package main

import (
	"context"
	"fmt"
	"github.com/rockstream/rockstream/internal/testdb"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
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

	mu  sync.Mutex
	log []modelBatch // every batch written, for modelAt
}

// modelBatch is one batch that sbSource wrote: its puts and the last
// sequence of the database after it.
type modelBatch struct {
	last uint64
	puts [][2][]byte
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
		var b modelBatch
		for range 1 + s.rng.IntN(3) {
			kv := [2][]byte{fmt.Appendf(nil, "k%04d", s.rng.IntN(300)), fmt.Appendf(nil, "v%d", s.rng.Int64())}
			wb.Put(kv[0], kv[1])
			b.puts = append(b.puts, kv)
		}
		err := s.db.Write(s.wo, wb)
		wb.Destroy()
		if err != nil {
			t.Error(err)
			return
		}
		b.last = s.db.GetLatestSequenceNumber()
		s.mu.Lock()
		s.log = append(s.log, b)
		s.mu.Unlock()
	}
}

// modelAt is the digest of the source's content after its batches up to
// sequence seq, from the record of what it wrote: an oracle that does not
// read any database.
func (s *sbSource) modelAt(seq uint64) rocks.Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	model := map[string][]byte{}
	for _, b := range s.log {
		if b.last > seq {
			break
		}
		for _, kv := range b.puts {
			model[string(kv[0])] = kv[1]
		}
	}
	return modelDigest(model)
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
