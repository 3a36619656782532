package manifest_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
)

const goldenDir = "../testdata/manifest"

var t0 = time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)

func newStore(t *testing.T) *filestore.Store {
	t.Helper()
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func readGolden(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func goldenManifest(t testing.TB) *manifest.Manifest {
	t.Helper()
	m, err := manifest.Parse(readGolden(t, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// put writes data at key unconditionally.
func put(t *testing.T, s objstore.Store, key string, data []byte) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(context.Background(), key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// wantErr fails unless err matches target and its message holds every one
// of parts.
func wantErr(t *testing.T, err, target error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", target)
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %q does not match %v", err, target)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// writer returns a writer on timeline tl at epoch e.
func writer(id string, tl uint32, e uint64) *manifest.Writer {
	return &manifest.Writer{Timeline: tl, Epoch: e, ID: id, Host: "host-" + id, Since: t0}
}

// createArchive creates a new archive with writer w and returns its ETag.
func createArchive(t *testing.T, s objstore.Store, w *manifest.Writer) string {
	t.Helper()
	m := manifest.New("db-identity", t0)
	m.Writer = w
	etag, err := manifest.Create(context.Background(), s, m)
	if err != nil {
		t.Fatal(err)
	}
	return etag
}
