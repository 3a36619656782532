package archive_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/prune"
	"github.com/rockstream/rockstream/segments"
)

// churnSource is a memSource whose checkpoints also hold an SST file that
// alternates between two contents, as compaction makes an SST file go and
// an identical one come back: a base reuses an SST file that only a base
// dropped by a prune names.
type churnSource struct {
	*memSource
	mu sync.Mutex
	n  int
}

func (c *churnSource) Checkpoint(dir string) (uint64, error) {
	seq, err := c.memSource.Checkpoint(dir)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.n++
	n := c.n
	c.mu.Unlock()
	return seq, os.WriteFile(filepath.Join(dir, "000099.sst"), fmt.Appendf(nil, "churn %d", n%2), 0o644)
}

// checkBasesWhole fails unless every file of every base the manifest names
// is in the store.
func checkBasesWhole(t *testing.T, s objstore.Store) *manifest.Manifest {
	t.Helper()
	ctx := context.Background()
	m, _, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Bases {
		fl, err := manifest.LoadFileList(ctx, s, m, b)
		if err != nil {
			t.Fatalf("base %d: %v", b.Sequence, err)
		}
		for _, f := range fl.Files {
			if _, err := s.Head(ctx, f.Key); err != nil {
				t.Fatalf("base %d: %s (%s): %v", b.Sequence, f.Name, f.Key, err)
			}
		}
	}
	return m
}

// checkRestorable fails unless timeline 1 is restorable from its oldest
// base to last, in one range, and its segments after that base hold
// exactly the source's batches.
func checkRestorable(t *testing.T, s objstore.Store, src *memSource) {
	t.Helper()
	_, cov := coverage(t, s) // holebg_test.go
	oldest := firstBase(t, s, 1)
	if want := []manifest.Range{{From: oldest.Sequence, To: src.lastSeq()}}; fmt.Sprint(cov[0].Ranges) != fmt.Sprint(want) {
		t.Fatalf("restorable %v, want %v", cov[0].Ranges, want)
	}
	var after []segments.Batch
	for _, b := range archived(t, s, 1) {
		if b.Seq > oldest.Sequence {
			after = append(after, b)
		}
	}
	sameBatches(t, after, src.since(oldest.Sequence))
}

// TestRetentionWhileArchiving: the archiver prunes on its schedule (keep
// the last base, a 300 ms grace) while it archives and takes a base every
// 150 ms, each reusing the SST file that the base before the last named
// (dropped, scheduled, swept); the prunes' compare-and-swaps and the
// archiver's race. Nothing is lost: every kept base is whole and every
// sequence from the oldest kept base on is restorable.
func TestRetentionWhileArchiving(t *testing.T) {
	s := &countStore{Store: newStore(t), keys: map[string]bool{sstOf(t, "churn 0"): true, sstOf(t, "churn 1"): true}}
	src := &churnSource{memSource: newMemSource("db-1")}
	rng := rand.New(rand.NewSource(21))
	src.write(rng, 60)
	opts := testOptions(t, "w")
	opts.BaseInterval = 150 * time.Millisecond
	opts.Retention = &prune.Options{Policy: prune.Policy{KeepLast: 1}, Grace: 300 * time.Millisecond}
	opts.RetentionInterval = 40 * time.Millisecond
	r := start(t, src, s, opts)
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		src.write(rng, 5)
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, "the archive to catch up", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	time.Sleep(500 * time.Millisecond) // a last sweep after the grace
	if err := r.stop(t); err != nil {
		t.Fatalf("the archiver stopped: %v", err)
	}
	st := r.a.Stats()
	t.Logf("%d bases taken, %d prunes, %d objects deleted, %d prune errors", st.Bases, st.Prunes, st.PrunedObjects, st.PruneErrors)
	if st.Bases < 5 || st.Prunes < 5 || st.PrunedObjects == 0 || st.PruneErrors != 0 {
		t.Fatalf("too little happened to show anything: %+v", st)
	}
	// Each new base names the SST file that only the dropped base before
	// the last named: it must be uploaded again (refreshed), not taken as
	// stored.
	t.Logf("the two alternating SST files: %d puts, %d deletes", s.puts, s.deletes)
	if s.puts <= 2 {
		t.Errorf("the alternating SST files were put %d times for %d bases: once each, so a base took one that only a dropped base named as stored", s.puts, st.Bases)
	}
	m := checkBasesWhole(t, s)
	if len(m.Bases) > 3 {
		t.Errorf("%d bases left with keep-last 1", len(m.Bases))
	}
	// The archiver's cache of file lists holds those that the manifest
	// named at its last base, not every base it ever saw.
	if cached := archive.CachedLists(r.a); len(cached) > 3 {
		t.Errorf("the archiver caches %d file lists after %d bases with keep-last 1: %v", len(cached), st.Bases, cached)
	}
	checkRestorable(t, s, src.memSource)
}

// countStore counts the puts and deletes of some keys.
type countStore struct {
	objstore.Store
	keys          map[string]bool
	mu            sync.Mutex
	puts, deletes int
}

func (c *countStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := c.Store.Put(ctx, key, body, size, opts)
	c.mu.Lock()
	if err == nil && c.keys[key] {
		c.puts++
	}
	c.mu.Unlock()
	return info, err
}

func (c *countStore) Delete(ctx context.Context, key string) error {
	err := c.Store.Delete(ctx, key)
	c.mu.Lock()
	if err == nil && c.keys[key] {
		c.deletes++
	}
	c.mu.Unlock()
	return err
}

// deleteAfterList is a store that deletes the SST files a base names right
// after its file list is written, once: a prune that judged them unused
// just before the list appeared.
type deleteAfterList struct {
	objstore.Store
	mu   sync.Mutex
	done bool
}

func (d *deleteAfterList) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := d.Store.Put(ctx, key, body, size, opts)
	d.mu.Lock()
	fire := err == nil && strings.HasSuffix(key, manifest.FileListName) && !d.done
	d.done = d.done || fire
	d.mu.Unlock()
	if fire {
		fl, _ := manifestFileList(ctx, d.Store, key)
		for _, f := range fl.Files {
			if manifest.IsSST(f.Name) {
				d.Store.Delete(ctx, f.Key)
			}
		}
	}
	return info, err
}

func manifestFileList(ctx context.Context, s objstore.Store, key string) (*manifest.FileList, error) {
	rc, _, err := s.Get(ctx, key, objstore.GetOptions{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return manifest.ParseFileList(data)
}

// TestBaseRechecksSSTs: the SST files of a new base vanish between its
// upload and its commit; the archiver finds them missing once the base is
// committed and uploads them again.
func TestBaseRechecksSSTs(t *testing.T) {
	s := &deleteAfterList{Store: newStore(t)}
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(22)), 120) // two SST files
	r := start(t, src, s, testOptions(t, "w"))
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkBasesWhole(t, s)
}

// TestBaseReusesOnlyCommittedSSTs: an SST file that is stored but that no
// committed base names is uploaded again, which refreshes it for a prune
// that spares recent SST files.
func TestBaseReusesOnlyCommittedSSTs(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(23)), 120)
	ctx := context.Background()
	// The SST file the base will hold, stored by an upload that stopped.
	key := sstOf(t, "sst 0 of db-1")
	if _, err := s.Put(ctx, key, strings.NewReader("sst 0 of db-1"), 13, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	root := s.(interface{ Root() string }).Root()
	if err := os.Chtimes(filepath.Join(root, key), old, old); err != nil {
		t.Fatal(err)
	}
	b, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Head(ctx, key)
	if err != nil || info.ModTime.Before(time.Now().Add(-time.Hour)) {
		t.Fatalf("the stored but unnamed SST file was not uploaded again: %v %v", info.ModTime, err)
	}
	// A second base reuses the committed one: no new put.
	if err := os.Chtimes(filepath.Join(root, key), old, old); err != nil {
		t.Fatal(err)
	}
	src.write(rand.New(rand.NewSource(24)), 10)
	if _, err := archive.TakeBase(ctx, src, s, archive.Options{WorkDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	if info, _ := s.Head(ctx, key); !info.ModTime.Equal(old) {
		t.Errorf("the SST file of committed base %d was uploaded again", b.Sequence)
	}
}

func sstOf(t *testing.T, content string) string {
	t.Helper()
	key, err := manifest.SSTKey(sha256Hex(content))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestRetentionErrorGoesOn: a prune that fails (a pending record it does
// not trust) is logged and tried again; archiving goes on.
func TestRetentionErrorGoesOn(t *testing.T) {
	s := newStore(t)
	if _, err := s.Put(context.Background(), "prune/junk", strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(25))
	src.write(rng, 30)
	opts := testOptions(t, "w")
	opts.Retention = &prune.Options{Policy: prune.Policy{KeepLast: 1}}
	opts.RetentionInterval = 20 * time.Millisecond
	r := start(t, src, s, opts)
	waitFor(t, "two failed prunes", func() bool { return r.a.Stats().PruneErrors >= 2 })
	src.write(rng, 100)
	waitFor(t, "the archive to catch up", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatalf("the archiver stopped: %v", err)
	}
	sameBatches(t, archived(t, s, 1), src.since(firstBase(t, s, 1).Sequence))
}

// TestRetentionCountsFailedSweeps: a prune that deletes objects and then
// fails (here the delete of its record) still counts what it deleted.
func TestRetentionCountsFailedSweeps(t *testing.T) {
	fs := faultstore.New(newStore(t))
	fs.Add(faultstore.Rule{Op: faultstore.Delete, KeyContains: manifest.PrunePrefix, Err: errors.New("killed")})
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(27))
	src.write(rng, 30)
	opts := testOptions(t, "w")
	opts.BaseInterval = 50 * time.Millisecond
	opts.Retention = &prune.Options{Policy: prune.Policy{KeepLast: 1}}
	opts.RetentionInterval = 20 * time.Millisecond
	r := start(t, src, fs, opts)
	waitFor(t, "a failed prune that deleted objects", func() bool {
		src.write(rng, 2)
		st := r.a.Stats()
		return st.PruneErrors > 0 && st.PrunedObjects > 0
	})
	if err := r.stop(t); err != nil {
		t.Fatalf("the archiver stopped: %v", err)
	}
	// Every prune that sweeps fails (the record stays, so every later one
	// sweeps it again): what is counted was counted from failed prunes.
	if st := r.a.Stats(); st.PrunedBytes <= 0 {
		t.Errorf("%d objects but %d bytes counted", st.PrunedObjects, st.PrunedBytes)
	}
}

// TestRetentionFenced: when the manifest names another writer, the
// scheduled prune refuses and the archiver stops as fenced (here before
// its own manifest check would notice).
func TestRetentionFenced(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(26)), 30)
	opts := testOptions(t, "w")
	opts.FenceCheck = time.Hour
	opts.Retention = &prune.Options{Policy: prune.Policy{KeepLast: 1}}
	opts.RetentionInterval = 20 * time.Millisecond
	r := start(t, src, s, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	if _, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		m.Writer = &manifest.Writer{Timeline: 1, Epoch: m.Writer.Epoch + 1, ID: "other", Host: "h", Since: time.Now()}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	err := r.wait(t)
	if !errors.Is(err, manifest.ErrFenced) || !strings.Contains(err.Error(), "scheduled prune") {
		t.Fatalf("Run = %v, want fenced by the scheduled prune", err)
	}
}

// TestPruneBetweenBaseAndCommit: a prune commits the manifest while the
// archiver adds a base: the archiver's compare-and-swap fails once, it
// reloads and adds its base (a foreign revision with the same writer is
// not a fence), and both changes stand.
func TestPruneBetweenBaseAndCommit(t *testing.T) {
	inner := newStore(t)
	s := &pruneBeforeCommit{Store: inner}
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(27))
	src.write(rng, 60)
	opts := testOptions(t, "w")
	opts.BaseWALBytes = 8 << 10
	r := start(t, src, s, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases >= 1 })
	src.write(rng, 100)
	waitFor(t, "two bases", func() bool { return r.a.Stats().Bases >= 2 })
	first := firstBase(t, inner, 1)
	s.arm(t)
	src.write(rng, 100)
	waitFor(t, "the prune and the third base", func() bool { return s.fired() && r.a.Stats().Bases >= 3 })
	waitFor(t, "the archive to catch up", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatalf("the archiver stopped: %v", err)
	}
	if s.refused != 1 {
		t.Errorf("the archiver's commit was refused %d times after the prune, want once", s.refused)
	}
	m := checkBasesWhole(t, inner)
	if len(m.Bases) < 2 || m.Writer == nil || m.Writer.ID != "w" || firstBase(t, inner, 1).Sequence == first.Sequence {
		t.Fatalf("bases %+v, writer %+v: want the one the prune kept and the new ones", m.Bases, m.Writer)
	}
	checkRestorable(t, inner, src)
}

// pruneBeforeCommit runs a prune (keep-last 1, no grace) between the
// archiver's read of the manifest and its commit of the next base: after
// the next file list is written, at the next get of the manifest.
type pruneBeforeCommit struct {
	objstore.Store
	mu      sync.Mutex
	armed   bool
	listed  bool // the file list is written: prune at the next manifest get
	done    bool
	refused int // the archiver's manifest puts refused after the prune
	t       *testing.T
}

func (p *pruneBeforeCommit) arm(t *testing.T) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed, p.t = true, t
}

func (p *pruneBeforeCommit) fired() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *pruneBeforeCommit) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := p.Store.Put(ctx, key, body, size, opts)
	p.mu.Lock()
	defer p.mu.Unlock()
	if key == manifest.ManifestKey && objstore.IsPreconditionFailed(err) && p.done {
		p.refused++
	}
	if err == nil && p.armed && strings.HasSuffix(key, manifest.FileListName) {
		p.armed, p.listed = false, true
	}
	return info, err
}

func (p *pruneBeforeCommit) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	rc, info, err := p.Store.Get(ctx, key, opts)
	p.mu.Lock()
	fire := err == nil && p.listed && key == manifest.ManifestKey
	p.listed = p.listed && !fire
	p.mu.Unlock()
	if fire {
		if _, perr := prune.Run(ctx, p.Store, prune.Options{Policy: prune.Policy{KeepLast: 1}}); perr != nil {
			p.t.Errorf("the prune: %v", perr)
		}
		p.mu.Lock()
		p.done = true
		p.mu.Unlock()
	}
	return rc, info, err
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
