package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/segments"
)

// The damage part of the fault suite (docs/RELIABILITY.md): each kind of
// object of an archive is damaged in each way, and verify, restore and
// standby must each detect it and name the object; a failed restore (or
// standby bootstrap) leaves nothing behind.

// damaged is an archive of one base (with two SST files) and segments
// after it, and the key of one object of each kind.
type damaged struct {
	bucket string // the pristine archive's folder
	base   uint64
	latest uint64
	keys   map[string]string // kind -> key
	other  map[string]string // kind -> the key whose bytes replace it
}

// Kinds of object, in the order the tests report them.
var objectKinds = []string{"manifest", "files.json", "sst", "base file", "segment", "last segment"}

func damageFixture(t *testing.T) *damaged {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "db")
	db := testdb.Open(t, dir)
	defer db.Close()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	for _, p := range []string{"a", "b"} { // two SST files in the base
		putN(t, db, p, 200)
		if err := db.Flush(fo); err != nil {
			t.Fatal(err)
		}
	}
	bucket := filepath.Join(root, "bucket")
	w := &liveDB{dir: dir, db: db, wo: grocksdb.NewDefaultWriteOptions(), rng: newRand(3)}
	arch := w.startArchiver(t, mustFileStore(t, bucket))
	store := mustFileStore(t, bucket)
	waitManifest(t, store)
	for range 6 {
		w.write(t, 40)
		time.Sleep(80 * time.Millisecond) // a segment or so each
	}
	latest := db.GetLatestSequenceNumber()
	waitUntilT(t, "the archive", func() bool { return archivedTo(t, store, 1) == latest })
	if err := arch.stop(); err != nil {
		t.Fatal(err)
	}
	c, err := catalog.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Manifest.Bases) != 1 || len(c.Segments[1]) < 4 {
		t.Fatalf("want one base and at least 4 segments: %d bases, %d segments", len(c.Manifest.Bases), len(c.Segments[1]))
	}
	b := c.Manifest.Bases[0]
	fl, err := manifest.LoadFileList(context.Background(), store, c.Manifest, b)
	if err != nil {
		t.Fatal(err)
	}
	var ssts []string
	var other, options string
	for _, f := range fl.Files {
		switch {
		case manifest.IsSST(f.Name):
			ssts = append(ssts, f.Key)
		case strings.HasPrefix(f.Name, "MANIFEST-"):
			other = f.Key
		case strings.HasPrefix(f.Name, "OPTIONS-"):
			options = f.Key
		}
	}
	if len(ssts) < 2 || other == "" || options == "" {
		t.Fatalf("the base lacks two SST files, a MANIFEST or an OPTIONS file: %+v", fl.Files)
	}
	segs := c.Segments[1]
	return &damaged{
		bucket: bucket, base: b.Sequence, latest: latest,
		keys: map[string]string{"manifest": manifest.ManifestKey, "files.json": b.FileList, "sst": ssts[0],
			"base file": other, "segment": segs[1].Key, "last segment": segs[len(segs)-1].Key},
		other: map[string]string{"manifest": b.FileList, "files.json": manifest.ManifestKey, "sst": ssts[1],
			"base file": options, "segment": segs[2].Key, "last segment": segs[len(segs)-2].Key},
	}
}

// Damages of an object, in place, in a copy of the archive.
var damages = []struct {
	name string
	do   func(t *testing.T, root, key, other string)
}{
	{"flip", func(t *testing.T, root, key, _ string) {
		path := filepath.Join(root, key)
		b := readAll(t, path)
		b[len(b)/2] ^= 0x5a
		writeAll(t, path, b)
	}},
	{"truncate", func(t *testing.T, root, key, _ string) {
		path := filepath.Join(root, key)
		writeAll(t, path, readAll(t, path)[:len(readAll(t, path))/2])
	}},
	{"delete", func(t *testing.T, root, key, _ string) {
		if err := os.Remove(filepath.Join(root, key)); err != nil {
			t.Fatal(err)
		}
	}},
	{"replace", func(t *testing.T, root, key, other string) {
		writeAll(t, filepath.Join(root, key), readAll(t, filepath.Join(root, other)))
	}},
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeAll(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyTree copies the folder from into a new folder and returns it.
func copyTree(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "bucket")
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v: %s", from, to, err, out)
	}
	return to
}

// TestDamage damages each kind of object in each way (24 cases) and runs
// verify, restore and standby on the damaged archive: each must fail with
// a non-zero exit naming the damaged object, and a failed restore or
// standby bootstrap must leave nothing behind. The standby is bootstrapped
// into an empty folder for the manifest and base objects; for segments it
// continues a folder restored to the base, so that it meets the damage
// while following.
//
// One damage cannot be seen: the archive's newest segment deleted. Nothing
// names it (the manifest does not list segments), so the archive simply
// ends earlier; the test checks that verify and restore say so, and the
// archiver's next segment turns the loss into a gap that they report.
func TestDamage(t *testing.T) {
	f := damageFixture(t)
	for _, kind := range objectKinds {
		for _, d := range damages {
			t.Run(kind+"/"+d.name, func(t *testing.T) {
				root := copyTree(t, f.bucket)
				d.do(t, root, f.keys[kind], f.other[kind])
				c := damageCase{f: f, url: "file://" + root, key: f.keys[kind], code: exitCorrupt}
				switch {
				case kind == "manifest" && d.name == "delete":
					c.code = exitFailure // the location holds no archive
				case kind == "last segment" && d.name == "delete":
					c.undetectable(t)
					return
				}
				c.verify(t)
				c.restore(t)
				c.standby(t, strings.Contains(kind, "segment"))
			})
		}
	}
}

// damageCase is one damaged copy of the fixture.
type damageCase struct {
	f    *damaged
	url  string
	key  string // the damaged object
	code int    // the exit code every command must give
}

func (c *damageCase) check(t *testing.T, what string, code int, out string) {
	t.Helper()
	if code != c.code || !strings.Contains(out, c.key) {
		t.Errorf("%s: exit %d, want %d naming %s:\n%s", what, code, c.code, c.key, out)
	}
	noStackTrace(t, out)
}

func (c *damageCase) verify(t *testing.T) {
	code, out, errOut := runCLI(t, "--log-level", "error", "verify", "--from", c.url)
	c.check(t, "verify", code, out+errOut)
}

// restore restores the latest state; it must fail and leave nothing.
func (c *damageCase) restore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "restored")
	code, out, errOut := runCLI(t, "--log-level", "error", "restore", "--from", c.url, dir)
	c.check(t, "restore", code, out+errOut)
	if left, _ := os.ReadDir(filepath.Dir(dir)); len(left) != 0 {
		t.Errorf("the failed restore left %v", left)
	}
}

// standby runs 'rockstream standby' on the damaged archive: into an empty
// folder, or (following) into a folder restored to the base from the
// pristine archive.
func (c *damageCase) standby(t *testing.T, following bool) {
	dir := filepath.Join(t.TempDir(), "standby")
	if following {
		code, _, errOut := runCLI(t, "--log-level", "error", "restore", "--from", "file://"+c.f.bucket, "--to-seq", fmt.Sprint(c.f.base), dir)
		if code != exitOK {
			t.Fatalf("restore of the pristine archive to the base: %s", errOut)
		}
	}
	p := startCLI(t, nil, "--log-level", "error", "standby", "--from", c.url, "--listen=", "--poll", "10ms", dir)
	code := p.wait(t, 30*time.Second)
	c.check(t, "standby", code, p.out.String())
	if !following {
		if left, _ := os.ReadDir(filepath.Dir(dir)); len(left) != 0 {
			t.Errorf("the failed bootstrap left %v", left)
		}
		return
	}
	if _, seq := testdb.Digest(t, dir); seq < c.f.base {
		t.Errorf("the standby went back to %d, below the base %d", seq, c.f.base)
	}
}

// undetectable: the newest segment deleted. verify passes and a restore
// ends at the segment before; once the archive goes on, verify, restore and
// a standby following from the base report the missing segment.
func (c *damageCase) undetectable(t *testing.T) {
	root := strings.TrimPrefix(c.url, "file://")
	code, out, errOut := runCLI(t, "--log-level", "error", "verify", "--from", c.url)
	if code != exitOK {
		t.Fatalf("verify of an archive whose newest segment is gone: exit %d\n%s%s", code, out, errOut)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	code, out, errOut = runCLI(t, "--log-level", "error", "restore", "--from", c.url, dir)
	_, seq := testdb.Digest(t, dir)
	_, first, _ := manifest.ParseSegmentKey(c.key)
	if code != exitOK || seq != first-1 {
		t.Fatalf("restore: exit %d, sequence %d, want the end of the segment before (%d)\n%s%s", code, seq, first-1, out, errOut)
	}
	// The archiver's next segment comes after the deleted one.
	writeAll(t, filepath.Join(root, manifest.SegmentKey(1, c.f.latest+1)), segmentAt(t, c.f.latest+1))
	c.verify(t)
	c.restore(t)
	c.standby(t, true)
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }

// segmentAt is a segment of timeline 1 with one batch of one operation at
// seq (its payload is not a real write batch: verify does not apply it).
func segmentAt(t *testing.T, seq uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Codec: segments.CodecZstd, Timeline: 1, FirstSeq: seq}, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := binary.LittleEndian.AppendUint64(nil, seq)
	data = binary.LittleEndian.AppendUint32(data, 1)
	if err := w.Append(segments.Batch{Seq: seq, Count: 1, Time: time.Now(), Data: append(data, "payload"...)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
