package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
)

// tamperFixture is an encrypted file archive of one base (with an SST file
// of more than one encryption block) and segments after it (one of them of
// more than one block), with the keys of the objects that the cases
// change and the paths that hold them.
type tamperFixture struct {
	f                    *encFixture
	segs                 []catalog.Segment
	bigSeg               catalog.Segment
	fileList, baseFile   string // keys
	sst                  manifest.File
	sstPath              string // the SST file's stored object, under its keyed name
	blockEnd             int64  // the end of the first block of an object of several
	latest, baseSequence uint64
}

func newTamperFixture(t *testing.T) *tamperFixture {
	t.Helper()
	f := newEncFixture(t)
	rng := rand.New(rand.NewPCG(5, 6))
	f.put(t, "a", 200, 50, rng)
	f.flush(t)
	f.bigBatch(t, "big-sst-", 3, 700<<10, rng) // random: an SST of about 2 MiB
	f.flush(t)
	p := f.archiver(t, f.key)
	for round := range 5 { // a segment or more each
		f.put(t, fmt.Sprintf("s%d-", round), 40, 30, rng)
		f.waitArchived(t, f.store, p)
		if round == 2 {
			f.bigBatch(t, "big-seg-", 3, 700<<10, rng) // a segment of about 2 MiB
			f.waitArchived(t, f.store, p)
		}
	}
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	ctx := context.Background()
	c, err := catalog.Load(ctx, f.store)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Manifest.Bases) != 1 || len(c.Segments[1]) < 6 {
		t.Fatalf("want one base and at least 6 segments: %d bases, %d segments", len(c.Manifest.Bases), len(c.Segments[1]))
	}
	x := &tamperFixture{f: f, segs: c.Segments[1], latest: f.latest(), baseSequence: c.Manifest.Bases[0].Sequence,
		blockEnd: crypt.HeaderSize + crypt.BlockSize + crypt.TagSize}
	for _, s := range x.segs[:len(x.segs)-1] {
		if s.Size > 2*crypt.BlockSize {
			x.bigSeg = s
		}
	}
	if x.bigSeg.Key == "" || x.segs[1].Size > crypt.BlockSize || x.segs[2].Size > crypt.BlockSize {
		t.Fatalf("want a segment of more than 2 MiB before the last, and small segments 1 and 2: %+v", x.segs)
	}
	b := c.Manifest.Bases[0]
	fl, err := manifest.LoadFileList(ctx, f.store, c.Manifest, b)
	if err != nil {
		t.Fatal(err)
	}
	x.fileList = b.FileList
	for _, file := range fl.Files {
		switch {
		case manifest.IsSST(file.Name) && file.Size > crypt.BlockSize:
			x.sst = file
		case strings.HasPrefix(file.Name, "MANIFEST-"):
			x.baseFile = file.Key
		}
	}
	if x.sst.Key == "" || x.baseFile == "" {
		t.Fatalf("the base lacks an SST file of more than 1 MiB or a MANIFEST: %+v", fl.Files)
	}
	// Its stored object: under a keyed name that the test does not work
	// out; the only one of its sealed size.
	for key, path := range objectFiles(t, f.bucket) {
		if fi, err := os.Stat(path); err == nil && strings.HasPrefix(key, "sst/") && fi.Size() == crypt.SealedSize(x.sst.Size) {
			if x.sstPath != "" {
				t.Fatalf("two SST objects of %d bytes", fi.Size())
			}
			x.sstPath = path
		}
	}
	if x.sstPath == "" || strings.Contains(x.sstPath, x.sst.SHA256) {
		t.Fatalf("the SST file %s is not stored under a keyed name: %q", x.sst.Key, x.sstPath)
	}
	return x
}

// tamperCase is one change of an object.
type tamperCase struct {
	name   string
	key    string // the object that the messages must name
	path   string // the stored file to change
	damage func(t *testing.T, path string)
}

// cases are the changes that TestEncryptionTamper makes, each to a copy of
// the archive.
func (x *tamperFixture) cases() []tamperCase {
	f := x.f
	segPath := func(s catalog.Segment) string { return filepath.Join(f.bucket, s.Key) }
	flip := func(off func(size int64) int64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			b := readAll(t, path)
			b[off(int64(len(b)))] ^= 0x20
			writeAll(t, path, b)
		}
	}
	middle := flip(func(n int64) int64 { return n / 2 })
	cut := func(at func(size int64) int64) func(t *testing.T, path string) {
		return func(t *testing.T, path string) {
			b := readAll(t, path)
			writeAll(t, path, b[:at(int64(len(b)))])
		}
	}
	atBlock := cut(func(int64) int64 { return x.blockEnd })
	return []tamperCase{
		{"flip in a segment", x.segs[1].Key, segPath(x.segs[1]), middle},
		{"flip in the second block of a segment", x.bigSeg.Key, segPath(x.bigSeg), flip(func(int64) int64 { return x.blockEnd + 1000 })},
		{"flip in a segment's salt", x.segs[2].Key, segPath(x.segs[2]), flip(func(int64) int64 { return 20 })},
		{"flip in a segment's magic", x.segs[2].Key, segPath(x.segs[2]), flip(func(int64) int64 { return 1 })},
		{"flip in a base file", x.baseFile, filepath.Join(f.bucket, x.baseFile), middle},
		{"flip in an SST file", x.sst.Key, x.sstPath, middle},
		{"flip in files.json", x.fileList, filepath.Join(f.bucket, x.fileList), middle},
		{"a segment copied over another", x.segs[1].Key, segPath(x.segs[1]), func(t *testing.T, path string) {
			writeAll(t, path, readAll(t, segPath(x.segs[2])))
		}},
		{"a segment cut at a block boundary", x.bigSeg.Key, segPath(x.bigSeg), atBlock},
		{"an SST file cut at a block boundary", x.sst.Key, x.sstPath, atBlock},
		{"a segment without its tag", x.segs[1].Key, segPath(x.segs[1]), cut(func(n int64) int64 { return n - crypt.TagSize })},
	}
}

// damaged applies c to a copy of the pristine archive and returns its URL.
func (x *tamperFixture) damaged(t *testing.T, c tamperCase) string {
	t.Helper()
	root := copyTree(t, x.f.bucket)
	rel, err := filepath.Rel(x.f.bucket, c.path)
	if err != nil {
		t.Fatal(err)
	}
	c.damage(t, filepath.Join(root, rel))
	return "file://" + root
}

// TestEncryptionTamper changes the objects of an encrypted archive in the
// ways that its authentication must catch: a byte flipped in the middle
// of a segment, of a later block of a segment, of a base file, of an SST
// file, of files.json and in a segment's header (its salt, its magic); a
// segment copied over another; a segment and an SST file cut at a block
// boundary; a small segment without its tag (its last 16 bytes). For each,
// restore exits 5 naming the object and leaves no target folder, and
// verify exits 5 naming it.
func TestEncryptionTamper(t *testing.T) {
	x := newTamperFixture(t)
	f := x.f
	// The checks of the pristine archive, which the cases change.
	if code, out, errOut := runCLI(t, "--log-level", "error", "verify", "--from", f.url, "--encryption-key-file", f.key); code != exitOK {
		t.Fatalf("verify of the pristine archive: exit %d\n%s%s", code, out, errOut)
	}
	mustRestoreEqual(t, "the pristine archive", f.url, f.key, x.latest, f.modelAt(x.latest))

	for _, c := range x.cases() {
		t.Run(c.name, func(t *testing.T) {
			url := x.damaged(t, c)
			dir, code, out := restoreKey(t, url, f.key)
			if code != exitCorrupt || !strings.Contains(out, c.key) {
				t.Errorf("restore: exit %d, want %d naming %s:\n%s", code, exitCorrupt, c.key, out)
			}
			noStackTrace(t, out)
			gone(t, "the failed restore", dir)
			code, vout, verr := runCLI(t, "--log-level", "error", "verify", "--from", url, "--encryption-key-file", f.key)
			if code != exitCorrupt || !strings.Contains(vout+verr, c.key) {
				t.Errorf("verify: exit %d, want %d naming %s:\n%s%s", code, exitCorrupt, c.key, vout, verr)
			}
			noStackTrace(t, vout+verr)
			if testing.Verbose() {
				t.Logf("restore says: %s", strings.SplitN(out, "\n", 2)[0])
			}
		})
	}
}

// TestEncryptionTamperStandby runs 'rockstream standby' on each damaged
// copy of TestEncryptionTamper's archive: for a damaged segment, from a
// folder restored to the base from the pristine archive, so that it meets
// the damage while following; for a damaged base object, into an empty
// folder (its bootstrap). It must exit 5 naming the object, as it does for
// a damaged plaintext archive (TestDamage), without going back, and a
// failed bootstrap must leave nothing.
func TestEncryptionTamperStandby(t *testing.T) {
	x := newTamperFixture(t)
	for _, c := range x.cases() {
		t.Run(c.name, func(t *testing.T) {
			x.standby(t, x.damaged(t, c), c.key, strings.HasPrefix(c.key, "segments/"))
		})
	}
}

func (x *tamperFixture) standby(t *testing.T, url, key string, following bool) {
	t.Helper()
	f := x.f
	dir := filepath.Join(t.TempDir(), "standby")
	if following {
		code, _, errOut := runCLI(t, "--log-level", "error", "restore", "--from", f.url, "--encryption-key-file", f.key,
			"--to-seq", fmt.Sprint(x.baseSequence), dir)
		if code != exitOK {
			t.Fatalf("restore of the pristine archive to the base: exit %d\n%s", code, errOut)
		}
	}
	addr := freeAddr(t)
	p := startCLI(t, nil, "--log-level", "warn", "standby", "--from", url, "--encryption-key-file", f.key,
		"--listen", addr, "--poll", "10ms", dir)
	code, out, stopped := standbyStops(t, p, addr)
	if !stopped || code != exitCorrupt || !strings.Contains(out, key) {
		t.Errorf("standby: exit %d, want %d naming %s:\n%s", code, exitCorrupt, key, out)
	}
	if !following {
		gone(t, "the failed bootstrap", dir)
		return
	}
	if _, seq := testdb.Digest(t, dir); seq < x.baseSequence {
		t.Errorf("the standby went back to %d, below the base %d", seq, x.baseSequence)
	}
}

// TestEncryptionTamperKeyID flips a byte of the key id in a segment's
// header: the object names a key that the archive was never written with
// (the manifest lists its keys), which is tampering, not a key file to go
// and find. restore and verify must exit 5 naming the object.
func TestEncryptionTamperKeyID(t *testing.T) {
	x := newTamperFixture(t)
	f := x.f
	root := copyTree(t, f.bucket)
	key := x.segs[2].Key
	path := filepath.Join(root, key)
	b := readAll(t, path)
	b[10] ^= 0x20 // in the key id, bytes 8 to 16
	writeAll(t, path, b)
	url := "file://" + root
	dir, code, out := restoreKey(t, url, f.key)
	if code != exitCorrupt || !strings.Contains(out, key) {
		t.Errorf("restore: exit %d, want %d naming %s:\n%s", code, exitCorrupt, key, out)
	}
	gone(t, "the failed restore", dir)
	code, vout, verr := runCLI(t, "--log-level", "error", "verify", "--from", url, "--encryption-key-file", f.key)
	if code != exitCorrupt || !strings.Contains(vout+verr, key) {
		t.Errorf("verify: exit %d, want %d naming %s:\n%s%s", code, exitCorrupt, key, vout, verr)
	}
}
