package prune_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/prune"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// writer is a RocksDB database that the test writes, with its content
// digest after every batch: the oracle.
type writer struct {
	t      *testing.T
	dir    string
	db     *grocksdb.DB
	wo     *grocksdb.WriteOptions
	model  map[string]string
	ends   []uint64          // the last sequence of each batch, in order
	digest map[uint64]string // restore.FormatDigest of the content after the batch ending there
}

func newWriter(t *testing.T, dir string) *writer {
	w := &writer{t: t, dir: dir, db: testdb.Open(t, dir), wo: grocksdb.NewDefaultWriteOptions(), model: map[string]string{}, digest: map[uint64]string{}}
	t.Cleanup(func() { w.wo.Destroy(); w.db.Close() })
	return w
}

// write writes n batches: mostly one put, some of three operations with a
// delete, over 120 keys, so that later SST files replace earlier keys.
func (w *writer) write(rng *rand.Rand, n int) {
	for range n {
		wb := grocksdb.NewWriteBatch()
		ops := 1
		if rng.IntN(5) == 0 {
			ops = 3
		}
		for j := range ops {
			k := fmt.Sprintf("key%03d", rng.IntN(120))
			if j == 2 {
				wb.Delete([]byte(k))
				delete(w.model, k)
				continue
			}
			v := fmt.Sprintf("value-%d-%s", rng.Int(), strings.Repeat("x", rng.IntN(200)))
			wb.Put([]byte(k), []byte(v))
			w.model[k] = v
		}
		if err := w.db.Write(w.wo, wb); err != nil {
			w.t.Fatal(err)
		}
		wb.Destroy()
		end := w.db.GetLatestSequenceNumber()
		w.ends = append(w.ends, end)
		w.digest[end] = modelDigest(w.model)
	}
}

func (w *writer) flush() {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	if err := w.db.Flush(fo); err != nil {
		w.t.Fatal(err)
	}
}

// want is the sequence and digest a restore to n must reach: the last
// batch that ends at or before n.
func (w *writer) want(n uint64) (uint64, string) {
	i, found := slices.BinarySearch(w.ends, n)
	if !found {
		i--
	}
	return w.ends[i], w.digest[w.ends[i]]
}

// modelDigest is rocks' logical digest of a database of one column family
// holding m, as restore.FormatDigest writes it.
func modelDigest(m map[string]string) string {
	h := sha256.New()
	field := func(s string) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(s)))
		h.Write(l[:])
		h.Write([]byte(s))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		field(k)
		field(m[k])
	}
	cf := rocks.CFDigest{Keys: uint64(len(m))}
	h.Sum(cf.Sum[:0])
	return restore.FormatDigest(rocks.Digest{"default": cf})
}

// startArchiver archives the database in dbDir as a sidecar would.
func startArchiver(t *testing.T, dbDir string, s objstore.Store) (*archive.Archiver, func()) {
	t.Helper()
	work := t.TempDir()
	src, err := rocks.NewFollowerSource(dbDir, filepath.Join(work, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.New(src, s, archive.Options{
		WriterID: "test", WorkDir: filepath.Join(work, "ckpt"), SegmentSize: 8 << 10, SegmentAge: 20 * time.Millisecond,
		Poll: 5 * time.Millisecond, FenceCheck: time.Second, RetryMax: 50 * time.Millisecond, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("archiver: %v", err)
		}
		src.Close()
	}
}

func takeBase(t *testing.T, dbDir string, s objstore.Store) manifest.Base {
	t.Helper()
	work := t.TempDir()
	src, err := rocks.NewFollowerSource(dbDir, filepath.Join(work, "secondary"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b, err := archive.TakeBase(context.Background(), src, s, archive.Options{WorkDir: filepath.Join(work, "ckpt"), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// built is an archive of a database written by the test, with five bases
// that share SST files, one compaction between them.
type built struct {
	w      *writer
	bucket string
	bases  []manifest.Base
}

func buildArchive(t *testing.T) *built {
	rng := rand.New(rand.NewPCG(5, 6))
	w := newWriter(t, filepath.Join(t.TempDir(), "db"))
	w.write(rng, 40)
	w.flush()
	bucket := filepath.Join(t.TempDir(), "bucket")
	s := fileStore(t, bucket)
	a, stop := startArchiver(t, w.dir, s)
	waitFor(t, "the first base", func() bool { return a.Stats().Bases == 1 })
	for i := range 4 {
		w.write(rng, 40)
		w.flush()
		if i == 1 {
			w.db.CompactRange(grocksdb.Range{}) // old SST files go away
		}
		takeBase(t, w.dir, s)
	}
	w.write(rng, 40)
	waitFor(t, "the archive to catch up", func() bool { return a.Stats().LastSequence == w.db.GetLatestSequenceNumber() })
	stop()
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	b := &built{w: w, bucket: bucket, bases: slices.Clone(m.Bases)}
	slices.SortFunc(b.bases, func(x, y manifest.Base) int { return int(x.Sequence) - int(y.Sequence) })
	if len(b.bases) != 5 {
		t.Fatalf("%d bases, want 5", len(b.bases))
	}
	return b
}

func fileStore(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// copyBucket copies the archive for a test that changes it.
func (b *built) copyBucket(t *testing.T) *filestore.Store {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "bucket")
	if out, err := exec.Command("cp", "-a", b.bucket, dir).CombinedOutput(); err != nil {
		t.Fatalf("copy the bucket: %v: %s", err, out)
	}
	return fileStore(t, dir)
}

// restoreTo restores s to n and checks the result against the oracle.
func (b *built) restoreTo(t *testing.T, s objstore.Store, n uint64) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	res, err := restore.Run(context.Background(), s, restore.Options{Dir: dir, ToSeq: &n, Logger: quiet()})
	if err != nil {
		t.Fatalf("restore to %d: %v", n, err)
	}
	wantSeq, wantDigest := b.w.want(n)
	d, seq := testdb.Digest(t, dir)
	if res.Sequence != wantSeq || seq != wantSeq || restore.FormatDigest(d) != wantDigest {
		t.Fatalf("restore to %d: sequence %d (database %d), want %d; digest %s, want %s", n, res.Sequence, seq, wantSeq, restore.FormatDigest(d), wantDigest)
	}
}

// sharedSSTs returns the SST keys that two or more of the bases name.
func sharedSSTs(t *testing.T, s objstore.Store, bases []manifest.Base) map[string]int {
	t.Helper()
	ctx := context.Background()
	m, _, _ := manifest.Load(ctx, s)
	users := map[string]int{}
	for _, b := range bases {
		fl, err := manifest.LoadFileList(ctx, s, m, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fl.Files {
			if manifest.IsSST(f.Name) {
				users[f.Key]++
			}
		}
	}
	return users
}

// TestEndToEnd prunes an archive of a real database to its last three
// bases, while a restore from a dropped base is in flight, and checks:
// the restore finishes (the grace); nothing goes before the grace and the
// dropped bases, the segments before the oldest kept base and the SST
// files only they name go after it; every sequence of the kept window
// restores to the oracle's content; verify finds nothing wrong; and a
// restore to a pruned-away sequence fails with the restorable ranges.
func TestEndToEnd(t *testing.T) {
	b := buildArchive(t)
	t.Run("grace", func(t *testing.T) { b.pruneWithGrace(t) })
	t.Run("no grace", func(t *testing.T) { b.pruneWithoutGrace(t) })
}

// heldRestore starts a restore of s to n that waits at its first base file
// until release is called, and returns once it waits.
func (b *built) heldRestore(t *testing.T, s objstore.Store, n uint64, dir string) (release func(), done chan error) {
	h := &holdStore{Store: s, release: make(chan struct{}), held: make(chan struct{})}
	done = make(chan error, 1)
	go func() {
		_, err := restore.Run(context.Background(), h, restore.Options{Dir: dir, ToSeq: &n, Logger: quiet()})
		if err == nil {
			wantSeq, want := b.w.want(n)
			if d, seq := testdb.Digest(t, dir); seq != wantSeq || restore.FormatDigest(d) != want {
				err = fmt.Errorf("restored %d, want %d, or another content", seq, wantSeq)
			}
		}
		done <- err
	}()
	<-h.held
	return func() { close(h.release) }, done
}

func (b *built) pruneWithGrace(t *testing.T) {
	inner := b.copyBucket(t)
	users := sharedSSTs(t, inner, b.bases)
	shared := 0
	for _, n := range users {
		if n > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("the bases share no SST file: the test shows nothing about shared files")
	}
	kept := b.bases[2:]
	keptUsers := sharedSSTs(t, inner, kept)

	// A restore from the oldest base starts, and waits at its first base
	// file while the prune runs.
	release, restored := b.heldRestore(t, inner, b.bases[0].Sequence+3, filepath.Join(t.TempDir(), "held"))
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	rep, err := prune.Run(ctx, inner, prune.Options{Policy: prune.Policy{KeepLast: 3}, Grace: time.Hour, Now: clock, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Dropped) != 2 || len(rep.Swept) != 0 || len(rep.Records) != 1 {
		t.Fatalf("phase 1: dropped %d, swept %d, records %v", len(rep.Dropped), len(rep.Swept), rep.Records)
	}
	release()
	if err := <-restored; err != nil {
		t.Fatalf("the restore that started before the prune: %v", err)
	}

	// After the grace, everything scheduled goes, and nothing else.
	now = now.Add(time.Hour + time.Minute)
	before := listAll(t, inner)
	rep, err = prune.Run(ctx, inner, prune.Options{Policy: prune.Policy{KeepLast: 3}, Grace: time.Hour, Now: clock, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Swept) != 1 || rep.Swept[0].Deleted == 0 || len(rep.Swept[0].Kept) != 0 {
		t.Fatalf("the sweep: %+v", rep.Swept)
	}
	after := listAll(t, inner)
	deletedSST, deletedSegs := 0, 0
	for _, k := range before {
		if slices.Contains(after, k) {
			continue
		}
		switch {
		case strings.HasPrefix(k, manifest.SSTPrefix):
			deletedSST++
			if keptUsers[k] > 0 {
				t.Errorf("%s of a kept base was deleted", k)
			}
		case strings.HasPrefix(k, manifest.SegmentsPrefix):
			deletedSegs++
		}
	}
	if deletedSST == 0 || deletedSegs == 0 {
		t.Errorf("deleted %d SST files and %d segments: the compaction should leave SST files that only dropped bases name", deletedSST, deletedSegs)
	}
	t.Logf("deleted %d objects (%d SST files, %d segments) of %d", len(before)-len(after), deletedSST, deletedSegs, len(before))

	b.checkKeptWindow(t, inner, kept[0].Sequence)
	vr, err := restore.Verify(ctx, inner, restore.VerifyOptions{Logger: quiet()})
	if err != nil || !vr.OK() {
		t.Fatalf("verify after the prune: %v %v", err, vr.Problems)
	}

	// A pruned-away sequence: refused, with the ranges.
	n := b.bases[1].Sequence
	_, err = restore.Run(ctx, inner, restore.Options{Dir: filepath.Join(t.TempDir(), "gone"), ToSeq: &n, Logger: quiet()})
	want := fmt.Sprintf("restorable: [%d, %d]", kept[0].Sequence, b.w.db.GetLatestSequenceNumber())
	if !errors.Is(err, manifest.ErrNotRestorable) || !strings.Contains(err.Error(), want) {
		t.Fatalf("restore to pruned-away %d: %v; want ErrNotRestorable with %q", n, err, want)
	}
}

// checkKeptWindow restores a dense sample of the sequences from the oldest
// kept base to the end: both ends, each base and the sequences around it,
// and every fifth sequence.
func (b *built) checkKeptWindow(t *testing.T, s objstore.Store, from uint64) {
	t.Helper()
	last := b.w.db.GetLatestSequenceNumber()
	targets := map[uint64]bool{from: true, last: true}
	for n := from; n <= last; n += 5 {
		targets[n] = true
	}
	for _, base := range b.bases {
		if base.Sequence >= from {
			targets[base.Sequence], targets[base.Sequence+1] = true, true
			if base.Sequence > from {
				targets[base.Sequence-1] = true
			}
		}
	}
	for _, n := range slices.Sorted(maps.Keys(targets)) {
		if n <= last {
			b.restoreTo(t, s, n)
		}
	}
	t.Logf("restored %d sequences of [%d, %d] and compared each with the oracle", len(targets), from, last)
}

// pruneWithoutGrace shows that the grace is what saves the held restore:
// with --grace 0 the same restore fails, naming a missing object, and
// leaves nothing behind; the kept window still restores.
func (b *built) pruneWithoutGrace(t *testing.T) {
	inner := b.copyBucket(t)
	dir := filepath.Join(t.TempDir(), "held")
	release, restored := b.heldRestore(t, inner, b.bases[0].Sequence+3, dir)
	if _, err := prune.Run(context.Background(), inner, prune.Options{Policy: prune.Policy{KeepLast: 3}, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	release()
	err := <-restored
	if !errors.Is(err, objstore.ErrNotFound) && !errors.Is(err, restore.ErrCorrupt) {
		t.Fatalf("the restore after a prune without grace: %v, want a missing object", err)
	}
	if _, serr := os.Stat(dir); !os.IsNotExist(serr) {
		t.Errorf("the failed restore left %s: %v", dir, serr)
	}
	t.Logf("as expected without a grace: %v", err)
	b.checkKeptWindow(t, inner, b.bases[2].Sequence)
}

// holdStore holds the first get of a base file until release is closed,
// saying so on held.
type holdStore struct {
	objstore.Store
	once    sync.Once
	held    chan struct{}
	release chan struct{}
}

func (h *holdStore) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if strings.HasPrefix(key, manifest.SSTPrefix) || strings.HasPrefix(key, manifest.BasesPrefix) && !strings.HasSuffix(key, manifest.FileListName) {
		h.once.Do(func() { close(h.held) })
		<-h.release
	}
	return h.Store.Get(ctx, key, opts)
}

func listAll(t *testing.T, s objstore.Store) []string {
	t.Helper()
	var out []string
	for _, p := range []string{manifest.SegmentsPrefix, manifest.BasesPrefix, manifest.SSTPrefix, manifest.PrunePrefix} {
		for info, err := range s.List(context.Background(), p, "") {
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, info.Key)
		}
	}
	return out
}
