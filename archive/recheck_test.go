package archive_test

import (
	"context"
	"errors"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

// Regression tests of the review of prune: once its base is committed, an
// archiver makes sure that every file of it is stored, against a prune's
// sweep that judged a file unused just before.

// afterListPut runs fn once, right after the first file list is written.
type afterListPut struct {
	objstore.Store
	mu   sync.Mutex
	done bool
	fn   func(listKey string)
}

func (h *afterListPut) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := h.Store.Put(ctx, key, body, size, opts)
	h.mu.Lock()
	fire := err == nil && strings.HasSuffix(key, "/"+manifest.FileListName) && !h.done
	h.done = h.done || fire
	h.mu.Unlock()
	if fire {
		h.fn(key)
	}
	return info, err
}

// TestBaseRefreshesReusedSSTAfterDrop: a new base takes an SST file as
// stored because a committed base names it; a prune drops that base before
// the new one is committed. After its commit the archiver puts the file
// again, so that the prune's sweep, which spares SST files written within
// its grace, leaves it.
func TestBaseRefreshesReusedSSTAfterDrop(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(31))
	src.write(rng, 60)
	b1, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	key := sstOf(t, "sst 0 of db-1")
	old := time.Now().Add(-48 * time.Hour)
	root := s.(interface{ Root() string }).Root()
	src.write(rng, 10)
	h := &afterListPut{Store: s, fn: func(string) {
		if _, _, err := manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
			m.Bases = slices.DeleteFunc(m.Bases, func(b manifest.Base) bool { return b.Sequence == b1.Sequence })
			return nil
		}); err != nil {
			t.Error(err)
		}
		if err := os.Chtimes(filepath.Join(root, key), old, old); err != nil {
			t.Error(err)
		}
	}}
	if _, err := archive.TakeBase(ctx, src, h, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if !h.done {
		t.Fatal("the hook did not run")
	}
	info, err := s.Head(ctx, key)
	if err != nil || info.ModTime.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("the SST file that only the dropped base named was not put again after the commit: %v %v", info.ModTime, err)
	}
	checkBasesWhole(t, s)
}

// deleteAfterCommit deletes every file of the first base whose file list
// it sees written, and the list itself, right after the next manifest
// commit: a sweep that judged them unused before the commit.
type deleteAfterCommit struct {
	objstore.Store
	mu   sync.Mutex
	list string
	done bool
}

func (d *deleteAfterCommit) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := d.Store.Put(ctx, key, body, size, opts)
	d.mu.Lock()
	if err == nil && d.list == "" && strings.HasSuffix(key, "/"+manifest.FileListName) {
		d.list = key
	}
	fire := err == nil && key == manifest.ManifestKey && d.list != "" && !d.done
	d.done = d.done || fire
	d.mu.Unlock()
	if fire {
		fl, ferr := manifestFileList(ctx, d.Store, d.list)
		if ferr != nil {
			return info, ferr
		}
		for _, f := range fl.Files {
			d.Store.Delete(ctx, f.Key)
		}
		d.Store.Delete(ctx, d.list)
	}
	return info, err
}

// TestBaseRechecksEveryFile: every file of a new base, its file list
// included, is deleted right after its commit; the archiver finds them
// missing and puts them again.
func TestBaseRechecksEveryFile(t *testing.T) {
	d := &deleteAfterCommit{Store: newStore(t)}
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(32)), 120)
	if _, err := archive.TakeBase(context.Background(), src, d, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if !d.done {
		t.Fatal("nothing was deleted after the commit")
	}
	checkBasesWhole(t, d.Store)
}

// TestBaseAdoptedListChecked: an earlier try wrote its file list and
// stopped before the commit, and one of its files went since. A new try at
// the same sequence adopts the list only after putting the file again from
// its checkpoint; a file that its checkpoint holds no copy of stops it,
// with the key and what to do, and the base is not added.
func TestBaseAdoptedListChecked(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(33))
	src.write(rng, 60)
	if _, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	src.write(rng, 60) // a second SST file
	earlierTry := func() {
		t.Helper()
		fs := faultstore.New(s)
		fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.ManifestKey, Err: errors.New("killed")})
		if _, err := archive.TakeBase(ctx, src, fs, archive.Options{WorkDir: t.TempDir()}); err == nil {
			t.Fatal("the try that cannot commit succeeded")
		}
	}
	earlierTry()
	sst := sstOf(t, "sst 1 of db-1")
	if err := s.Delete(ctx, sst); err != nil {
		t.Fatal(err)
	}
	if _, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	m := checkBasesWhole(t, s)
	if len(m.Bases) != 2 {
		t.Fatalf("%d bases, want 2", len(m.Bases))
	}

	// A MANIFEST file differs in every checkpoint: no copy to put again.
	src.write(rng, 5)
	earlierTry()
	seq := src.lastSeq()
	key := fileKeyOf(t, s, seq, "MANIFEST-000001")
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "delete "+manifest.FileListKey(1, seq)) {
		t.Fatalf("adopting a list whose file cannot be put again: %v", err)
	}
	if m := checkBasesWhole(t, s); len(m.Bases) != 2 {
		t.Fatalf("%d bases: the base that is not whole was added", len(m.Bases))
	}
}

// fileKeyOf returns the key of file name in the stored file list of the
// base of timeline 1 at seq.
func fileKeyOf(t *testing.T, s objstore.Store, seq uint64, name string) string {
	t.Helper()
	fl, err := manifestFileList(context.Background(), s, manifest.FileListKey(1, seq))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fl.Files {
		if f.Name == name {
			return f.Key
		}
	}
	t.Fatalf("no %s in the file list at %d", name, seq)
	return ""
}
