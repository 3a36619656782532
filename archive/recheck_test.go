package archive_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand"
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

// slowHeads makes each HEAD of a base file take a while, and records how
// many ran at once.
type slowHeads struct {
	objstore.Store
	mu        sync.Mutex
	now, most int
	heads     int
}

func (h *slowHeads) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if strings.HasPrefix(key, manifest.BasesPrefix) || strings.HasPrefix(key, manifest.SSTPrefix) {
		h.mu.Lock()
		h.now++
		h.heads++
		h.most = max(h.most, h.now)
		h.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		defer func() { h.mu.Lock(); h.now--; h.mu.Unlock() }()
	}
	return h.Store.Head(ctx, key)
}

// TestBaseChecksFilesInParallel: the check of a committed base's files
// runs Concurrency HEADs at once, no more.
func TestBaseChecksFilesInParallel(t *testing.T) {
	h := &slowHeads{Store: newStore(t)}
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(35)), 200)
	if _, err := archive.TakeBase(context.Background(), src, h, archive.Options{WorkDir: t.TempDir(), Concurrency: 3}); err != nil {
		t.Fatal(err)
	}
	if h.heads < 4 || h.most != 3 {
		t.Fatalf("%d HEADs, at most %d at once: want 3 at once", h.heads, h.most)
	}
	checkBasesWhole(t, h.Store)
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

// TestBaseAdoptedListOfOtherDatabase: a stored file list at the sequence
// of a new base, of another database, or whose content is of another base
// than its key, is never adopted: the try stops, naming the list and what
// to do, and the base is not added.
func TestBaseAdoptedListOfOtherDatabase(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(34))
	src.write(rng, 60)
	if _, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	first, err := manifestFileList(ctx, s, manifest.FileListKey(1, src.lastSeq()))
	if err != nil {
		t.Fatal(err)
	}
	src.write(rng, 5)
	key := manifest.FileListKey(1, src.lastSeq())
	for _, tt := range []struct {
		name string
		fl   manifest.FileList
		want string
	}{
		{"other database", manifest.FileList{Identity: "db-other"}, "is of database db-other"},
		{"other base", manifest.FileList{Identity: first.Identity, Sequence: first.Sequence}, "its key is of timeline"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fl := *first
			fl.Identity = tt.fl.Identity
			if tt.fl.Sequence == 0 { // a list of this key's base
				fl.Sequence = src.lastSeq()
				fl.Files = nil
				for _, f := range first.Files {
					f.Key, _ = manifest.FileKey(1, fl.Sequence, f.Name, f.SHA256)
					fl.Files = append(fl.Files, f)
				}
			}
			data, err := json.Marshal(&fl)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Put(ctx, key, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			_, err = archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()})
			if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "delete "+key) {
				t.Fatalf("a stored list of %s: %v", tt.name, err)
			}
			if m := checkBasesWhole(t, s); len(m.Bases) != 1 {
				t.Fatalf("%d bases: the list of %s was adopted", len(m.Bases), tt.name)
			}
		})
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
