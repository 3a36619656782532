package restore

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/segments"
)

// leftovers lists what a restore into dir left beside it.
func leftovers(t *testing.T, dir string) []string {
	t.Helper()
	left, err := filepath.Glob(filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".*"))
	if err != nil {
		t.Fatal(err)
	}
	return left
}

// mustFail runs a restore that must fail with an error that matches want
// and names every string of says, and checks that nothing is left.
func mustFail(t *testing.T, s objstore.Store, opts Options, want error, says ...string) error {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = filepath.Join(t.TempDir(), "restored")
	}
	opts.Logger = quiet()
	_, err := Run(context.Background(), s, opts)
	if err == nil {
		t.Fatal("the restore succeeded")
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error %v, want one that matches %v", err, want)
	}
	t.Logf("refused as expected: %v", err)
	for _, s := range says {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not say %q", err, s)
		}
	}
	if left := leftovers(t, opts.Dir); len(left) != 0 {
		t.Fatalf("the failed restore left %q", left)
	}
	return err
}

// segmentKeys lists the segment keys of timeline 1 of the shared archive.
func segmentKeys(t *testing.T, a *archived) []catalog.Segment {
	t.Helper()
	c, err := catalog.Load(context.Background(), fileStore(t, a.bucket))
	if err != nil {
		t.Fatal(err)
	}
	return c.Segments[1]
}

// segmentAfter is a segment of timeline 1 that starts after seq and is not
// the last.
func segmentAfter(t *testing.T, a *archived, seq uint64) catalog.Segment {
	t.Helper()
	segs := segmentKeys(t, a)
	for _, s := range segs[:len(segs)-1] {
		if s.First > seq {
			return s
		}
	}
	t.Fatalf("no segment after %d", seq)
	return catalog.Segment{}
}

func TestRestoreIntoNonEmptyDir(t *testing.T) {
	a := sharedArchive(t)
	dir := filepath.Join(t.TempDir(), "db")
	os.Mkdir(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "precious"), []byte("keep me"), 0o644)
	err := mustFail(t, fileStore(t, a.bucket), Options{Dir: dir}, ErrNotEmpty, dir, "--force")
	if b, _ := os.ReadFile(filepath.Join(dir, "precious")); string(b) != "keep me" {
		t.Fatalf("the refused restore touched the folder (%v)", err)
	}

	// --force with a restore that fails leaves the old folder as it was.
	_, fs := copyBucket(t, a)
	seg := segmentAfter(t, a, a.bases[1])
	if err := os.WriteFile(filepath.Join(fs.Root(), seg.Key), []byte("not a segment"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustFail(t, fs, Options{Dir: dir, Force: true}, segments.ErrCorrupt, seg.Key)
	if b, _ := os.ReadFile(filepath.Join(dir, "precious")); string(b) != "keep me" {
		t.Fatal("a failed --force restore touched the old folder")
	}

	// --force that succeeds replaces it, and removes the old contents.
	_, res := restoreTo(t, a, Options{Dir: dir, Force: true})
	if _, err := os.Stat(filepath.Join(dir, "precious")); !os.IsNotExist(err) {
		t.Fatalf("the old contents survive a --force restore: %v", err)
	}
	checkAgainstModel(t, a, dir, res.Sequence)
	if left := leftovers(t, dir); len(left) != 0 {
		t.Fatalf("--force left %q", left)
	}
}

func TestRestoreIntoEmptyOrMissingDir(t *testing.T) {
	a := sharedArchive(t)
	empty := filepath.Join(t.TempDir(), "empty")
	os.Mkdir(empty, 0o755)
	_, res := restoreTo(t, a, Options{Dir: empty, ToSeq: seqp(a.bases[0])})
	checkAgainstModel(t, a, empty, res.Sequence)
	deep := filepath.Join(t.TempDir(), "a", "b", "db")
	_, res = restoreTo(t, a, Options{Dir: deep, ToSeq: seqp(a.bases[0])})
	checkAgainstModel(t, a, deep, res.Sequence)
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	mustFail(t, fileStore(t, a.bucket), Options{Dir: file, Force: true}, nil, "not a folder")
}

// TestRestoreOutOfRange: a target before the first base, inside a hole or
// past the end is refused, with the restorable ranges in the message.
func TestRestoreOutOfRange(t *testing.T) {
	a := sharedArchive(t)
	s := fileStore(t, a.bucket)
	ranges := "[250, 2888]"
	if a.bases[0] != 250 || a.latest != 2888 {
		ranges = "restorable: [" // the workload changed; the shape still holds
	}
	mustFail(t, s, Options{ToSeq: seqp(a.bases[0] - 1)}, manifest.ErrNotRestorable, ranges)
	mustFail(t, s, Options{ToSeq: seqp(a.latest + 1)}, manifest.ErrNotRestorable, ranges)
	mustFail(t, s, Options{ToSeq: seqp(a.bases[0]), Timeline: 7}, manifest.ErrNotRestorable, "no timeline 7")

	// A hole: the manifest records batches as missing.
	_, fs := copyBucket(t, a)
	from, to := a.bases[0]+100, a.bases[0]+200
	_, _, err := manifest.Update(context.Background(), fs, nil, func(m *manifest.Manifest) error {
		m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: from, To: to, Reason: "test"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = mustFail(t, fs, Options{ToSeq: seqp(from + 50)}, manifest.ErrNotRestorable)
	if !strings.Contains(err.Error(), "[250, 349]") && a.bases[0] == 250 {
		t.Fatalf("the refusal does not list the ranges around the hole: %v", err)
	}
	t.Logf("in a hole: %v", err)
}

// TestRestoreCorruptSegment: a byte flipped on the way (faultstore) or on
// disk fails the restore with the segment's key, and leaves nothing.
func TestRestoreCorruptSegment(t *testing.T) {
	a := sharedArchive(t)
	seg := segmentAfter(t, a, a.bases[1])
	fs := faultstore.New(fileStore(t, a.bucket))
	fs.FlipByte(seg.Key, 300)
	mustFail(t, fs, Options{}, segments.ErrCorrupt, seg.Key)

	_, damaged := copyBucket(t, a)
	flipOnDisk(t, filepath.Join(damaged.Root(), seg.Key), seg.Size/2)
	mustFail(t, damaged, Options{}, segments.ErrCorrupt, seg.Key)
}

func flipOnDisk(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0x55
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreMissingSegment: a segment that the listing showed is gone
// when the restore reads it.
func TestRestoreMissingSegment(t *testing.T) {
	a := sharedArchive(t)
	seg := segmentAfter(t, a, a.bases[1])
	fs := faultstore.New(fileStore(t, a.bucket))
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: seg.Key,
		Err: &objstore.Error{Op: "get", Key: seg.Key, Err: objstore.ErrNotFound}})
	mustFail(t, fs, Options{}, ErrCorrupt, seg.Key, "missing")

	// Deleted before the restore starts: the listing shows a gap, and the
	// targets after it are not restorable from the first base.
	_, gone := copyBucket(t, a)
	seg = segmentAfter(t, a, a.bases[0])
	os.Remove(filepath.Join(gone.Root(), seg.Key))
	mustFail(t, gone, Options{ToSeq: seqp(seg.First + 1)}, manifest.ErrNotRestorable, "restorable")

	// Deleted in the middle, with no hole recorded: the catalog trusts
	// the key names, so the segment before it seems to run to the next
	// one. The replay finds the gap and names that segment.
	_, gap := copyBucket(t, a)
	segs := segmentKeys(t, a)
	os.Remove(filepath.Join(gap.Root(), segs[3].Key))
	mustFail(t, gap, Options{ToSeq: seqp(segs[4].First + 1)}, ErrCorrupt, segs[2].Key, "its batches end at sequence")
}

// TestRestoreBadBaseFile: a truncated, a changed and a missing base file
// each fail with the file's key.
func TestRestoreBadBaseFile(t *testing.T) {
	a := sharedArchive(t)
	fl := baseFiles(t, a, 1)
	sst := largestSST(t, fl)
	cases := []struct {
		name   string
		damage func(path string)
		says   string
	}{
		{"truncated", func(p string) { os.Truncate(p, sst.Size/2) }, "bytes, files.json says"},
		{"changed", func(p string) { flipOnDisk(t, p, sst.Size/3) }, "sha256"},
		{"grown", func(p string) { appendTo(t, p, "extra") }, "larger than"},
		{"missing", func(p string) { os.Remove(p) }, "missing"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, fs := copyBucket(t, a)
			c.damage(filepath.Join(fs.Root(), sst.Key))
			mustFail(t, fs, Options{ToSeq: seqp(a.bases[1])}, ErrCorrupt, sst.Key, c.says)
		})
	}
	fs := faultstore.New(fileStore(t, a.bucket))
	fs.CutShort(sst.Key, 10)
	mustFail(t, fs, Options{ToSeq: seqp(a.bases[1])}, nil, sst.Key)
}

func appendTo(t *testing.T, path, s string) {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(s)
	f.Close()
}

func baseFiles(t *testing.T, a *archived, i int) *manifest.FileList {
	t.Helper()
	s := fileStore(t, a.bucket)
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range m.Bases {
		if b.Sequence == a.bases[i] {
			fl, err := manifest.LoadFileList(context.Background(), s, m, b)
			if err != nil {
				t.Fatal(err)
			}
			return fl
		}
	}
	t.Fatalf("no base at %d", a.bases[i])
	return nil
}

func largestFile(fl *manifest.FileList) manifest.File {
	var best manifest.File
	for _, f := range fl.Files {
		if f.Size > best.Size {
			best = f
		}
	}
	return best
}

func largestSST(t *testing.T, fl *manifest.FileList) manifest.File {
	t.Helper()
	var best manifest.File
	for _, f := range fl.Files {
		if manifest.IsSST(f.Name) && f.Size > best.Size {
			best = f
		}
	}
	if best.Key == "" {
		t.Fatal("the base has no SST file")
	}
	return best
}

// TestRestoreHostileFileList: a files.json rewritten with a name that
// leaves the folder, or with other sizes than the manifest's, is refused
// before anything is written.
func TestRestoreHostileFileList(t *testing.T) {
	a := sharedArchive(t)
	fl := baseFiles(t, a, 0)
	key := manifest.FileListKey(1, a.bases[0])
	cases := map[string]func(b []byte) []byte{
		"path escape": func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"name": "CURRENT"`, `"name": "../../CURRENT"`, 1))
		},
		"size": func(b []byte) []byte {
			return []byte(strings.Replace(string(b), `"size": `+strconv.FormatInt(largestFile(fl).Size, 10), `"size": 1`, 1))
		},
		"not json": func([]byte) []byte { return []byte("{{{") },
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			_, fs := copyBucket(t, a)
			path := filepath.Join(fs.Root(), key)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, edit(b), 0o644); err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "x", "restored")
			mustFail(t, fs, Options{Dir: dir, ToSeq: seqp(a.bases[0])}, manifest.ErrInvalid, key)
			if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "CURRENT")); err == nil {
				t.Fatal("a hostile name was written outside the folder")
			}
		})
	}
}

// TestRestoreBrokenTransfer: a segment transfer that breaks off once is
// resumed with a ranged get; one that always breaks fails with the key.
func TestRestoreBrokenTransfer(t *testing.T) {
	a := sharedArchive(t)
	seg := segmentAfter(t, a, a.bases[1])
	fs := faultstore.New(fileStore(t, a.bucket))
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: seg.Key, Nth: 1, Cut: true, CutAt: seg.Size / 3})
	dir, res := restoreFromStore(t, fs, Options{})
	if res.Sequence != a.latest {
		t.Fatalf("restored to %d, want %d", res.Sequence, a.latest)
	}
	checkAgainstModel(t, a, dir, a.latest)

	fs = faultstore.New(fileStore(t, a.bucket))
	fs.CutShort(seg.Key, 100)
	mustFail(t, fs, Options{}, nil, seg.Key, "the transfer stopped")
}

func restoreFromStore(t *testing.T, s objstore.Store, opts Options) (string, Result) {
	t.Helper()
	return restoreFrom(t, s, opts)
}

// TestRestoreLeftovers: of the folders that interrupted restores leave
// beside DIR (kill -9 gives no chance to clean up), a temporary folder
// whose lock nobody holds is removed; one whose lock is held (a restore
// running) is kept; a legacy temporary folder and an ".old-" folder (what
// DIR held before --force) are named in a warning and kept; another
// destination's folders are not looked at.
func TestRestoreLeftovers(t *testing.T) {
	a := sharedArchive(t)
	parent := t.TempDir()
	dir := filepath.Join(parent, "db")
	oldDir := filepath.Join(parent, ".db.old-123")
	legacy := filepath.Join(parent, ".db.restore-456")
	abandoned := filepath.Join(parent, ".db.restoring-111")
	busy := filepath.Join(parent, ".db.restoring-222")
	other := filepath.Join(parent, ".dbx.restoring-789") // another destination's
	for _, d := range []string{oldDir, legacy, abandoned, busy, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := tryLock(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	var logs strings.Builder
	opts := Options{Dir: dir, ToSeq: seqp(a.bases[0]), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	if _, err := Run(context.Background(), fileStore(t, a.bucket), opts); err != nil {
		t.Fatalf("restore: %v", err)
	}
	for _, d := range []string{oldDir, legacy, busy, abandoned} {
		if !strings.Contains(logs.String(), d) {
			t.Errorf("no log line names %s; logs:\n%s", d, logs.String())
		}
	}
	for _, d := range []string{oldDir, legacy, busy, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the restore removed %s: %v", d, err)
		}
	}
	if _, err := os.Stat(abandoned); !os.IsNotExist(err) {
		t.Errorf("the abandoned temporary folder %s is still there: %v", abandoned, err)
	}
	if strings.Contains(logs.String(), other) {
		t.Errorf("the logs name another destination's folder %s", other)
	}
	left, _ := filepath.Glob(filepath.Join(parent, ".db.restoring-*"))
	if len(left) != 1 || left[0] != busy {
		t.Errorf("temporary folders after the restore: %v, want only %s (the restore's own must be gone)", left, busy)
	}
}

// TestRestoreBeforeInstall: a file that BeforeInstall adds arrives with the
// database in the rename; its error stops the restore and leaves nothing.
func TestRestoreBeforeInstall(t *testing.T) {
	a := sharedArchive(t)
	var got Result
	add := func(tmp string, res Result) error {
		got = res
		return os.WriteFile(filepath.Join(tmp, "MINE"), []byte("x"), 0o644)
	}
	dir, res := restoreTo(t, a, Options{ToSeq: seqp(a.bases[0]), BeforeInstall: add})
	if _, err := os.Stat(filepath.Join(dir, "MINE")); err != nil || got.Sequence != res.Sequence || got.Timeline != res.Timeline {
		t.Fatalf("BeforeInstall's file: %v; it saw %+v, the restore gave %+v", err, got, res)
	}
	checkAgainstModel(t, a, dir, res.Sequence)
	dir = filepath.Join(t.TempDir(), "restored")
	mustFail(t, fileStore(t, a.bucket), Options{Dir: dir, ToSeq: seqp(a.bases[0]),
		BeforeInstall: func(string, Result) error { return errors.New("disk full") }}, nil, "disk full")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a failed BeforeInstall left %s: %v", dir, err)
	}
}
