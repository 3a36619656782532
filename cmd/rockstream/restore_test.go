package main

import (
	"context"
	"fmt"
	"github.com/rockstream/rockstream/internal/testdb"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/rocks"
)

// restoreArchive is a small archive of a real database: a base, then
// segments. It returns the archive's folder and the last sequence.
func restoreArchive(t *testing.T) (string, uint64) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "db")
	db := testdb.Open(t, dir)
	defer db.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	put := func(n int) {
		for i := range n {
			if err := db.Put(wo, fmt.Appendf(nil, "k%05d", i), fmt.Appendf(nil, "v%d-%d", i, db.GetLatestSequenceNumber())); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(50)
	bucket := filepath.Join(root, "bucket")
	store, err := filestore.New(bucket)
	if err != nil {
		t.Fatal(err)
	}
	src, err := rocks.NewFollowerSource(dir, filepath.Join(root, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	a, err := archive.New(src, store, archive.Options{WorkDir: filepath.Join(root, "work"), SegmentSize: 1 << 10,
		SegmentAge: 10 * time.Millisecond, Poll: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for a.Stats().Bases == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	put(200)
	for a.Stats().LastSequence != db.GetLatestSequenceNumber() {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("archive: %v", err)
	}
	return bucket, db.GetLatestSequenceNumber()
}

// TestRestoreAndVerifyCLI runs restore and verify on a healthy archive,
// then on one with a damaged segment.
func TestRestoreAndVerifyCLI(t *testing.T) {
	bucket, latest := restoreArchive(t)
	from := "file://" + bucket
	dir := filepath.Join(t.TempDir(), "restored")
	code, out, errOut := runCLI(t, "restore", "--from", from, dir)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("restored timeline 1, sequence %d", latest)) {
		t.Fatalf("restore: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "CURRENT")); err != nil {
		t.Fatalf("no database in %s: %v", dir, err)
	}
	t.Setenv("ROCKSTREAM_FROM", from)
	t.Setenv("ROCKSTREAM_TO_SEQ", fmt.Sprint(latest-10))
	code, out, errOut = runCLI(t, "restore", filepath.Join(t.TempDir(), "env"))
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("sequence %d", latest-10)) {
		t.Fatalf("restore from the environment: exit %d\n%s%s", code, out, errOut)
	}
	os.Unsetenv("ROCKSTREAM_TO_SEQ")
	code, out, errOut = runCLI(t, "verify", "--drill")
	if code != exitOK || !strings.Contains(out, "OK") || !strings.Contains(out, "Drill") {
		t.Fatalf("verify --drill: exit %d\n%s%s", code, out, errOut)
	}

	c, err := catalog.Load(context.Background(), mustFileStore(t, bucket))
	if err != nil {
		t.Fatal(err)
	}
	seg := c.Segments[1][1]
	path := filepath.Join(bucket, seg.Key)
	b, _ := os.ReadFile(path)
	b[len(b)/2] ^= 0xff
	os.WriteFile(path, b, 0o644)
	code, out, errOut = runCLI(t, "verify")
	if code != exitCorrupt || !strings.Contains(out, "BAD "+seg.Key) {
		t.Fatalf("verify of a damaged archive: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, "restore", filepath.Join(t.TempDir(), "bad"))
	if code != exitCorrupt || !strings.Contains(errOut, seg.Key) {
		t.Fatalf("restore of a damaged archive: exit %d\n%s", code, errOut)
	}
	noStackTrace(t, out+errOut)
}

func mustFileStore(t *testing.T, dir string) *filestore.Store {
	s, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func noStackTrace(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "goroutine ") || strings.Contains(s, "panic") {
		t.Errorf("a stack trace:\n%s", s)
	}
}
