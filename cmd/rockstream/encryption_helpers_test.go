package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/cryptstore"
	"github.com/rockstream/rockstream/rocks"
)

// Helpers of the encryption tests (encryption_*_test.go).

// keygenFile runs 'rockstream keygen' (with --rotate when rotate) on path,
// checks that the file has mode 0600 and that the output names the new
// key, and returns the new key's id.
func keygenFile(t *testing.T, path string, rotate bool) string {
	t.Helper()
	args := []string{"keygen"}
	if rotate {
		args = append(args, "--rotate")
	}
	code, out, errOut := runCLI(t, append(args, path)...)
	if code != exitOK {
		t.Fatalf("rockstream %q: exit %d\n%s%s", args, code, out, errOut)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("keygen wrote %s with mode %04o, want 0600", path, fi.Mode().Perm())
	}
	id := loadRing(t, path).IDs()[0]
	if !strings.Contains(out, id) {
		t.Fatalf("keygen does not print the new key's id %s:\n%s", id, out)
	}
	return id
}

func loadRing(t *testing.T, path string) *crypt.Keyring {
	t.Helper()
	r, err := crypt.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// encryptedStore is the archive at url read through the keys of keyFile.
func encryptedStore(t *testing.T, url, keyFile string) objstore.Store {
	t.Helper()
	return cryptstore.New(openLocation(t, url), loadRing(t, keyFile))
}

// encFixture is a database written by this process (single puts, so that
// its content at any sequence is known) and a file:// location for an
// encrypted archive of it, with the key file that encrypts it.
type encFixture struct {
	root, dir, bucket, url string
	key, keyID             string
	db                     *grocksdb.DB
	wo                     *grocksdb.WriteOptions
	fo                     *grocksdb.FlushOptions
	plain, store           objstore.Store // the archive as stored, and read with the key
	log                    []encPut       // every put, in sequence order
}

type encPut struct {
	seq   uint64
	key   string
	value []byte
}

func newEncFixture(t *testing.T) *encFixture {
	t.Helper()
	root := t.TempDir()
	f := &encFixture{root: root, dir: filepath.Join(root, "db"), bucket: filepath.Join(root, "bucket"),
		key: filepath.Join(root, "keys", "rockstream.key"),
		wo:  grocksdb.NewDefaultWriteOptions(), fo: grocksdb.NewDefaultFlushOptions()}
	if err := os.MkdirAll(filepath.Dir(f.key), 0o700); err != nil {
		t.Fatal(err)
	}
	f.url = "file://" + f.bucket
	f.keyID = keygenFile(t, f.key, false)
	f.db = testdb.Open(t, f.dir)
	t.Cleanup(func() {
		if f.db != nil {
			f.db.Close()
		}
	})
	f.plain = openLocation(t, f.url)
	f.store = encryptedStore(t, f.url, f.key)
	return f
}

// put writes n single puts of prefix%04d, each value of size bytes (at
// least the few of "v<i>"): random bytes when rng is set.
func (f *encFixture) put(t *testing.T, prefix string, n, size int, rng *rand.Rand) {
	t.Helper()
	for i := range n {
		k := fmt.Sprintf("%s%04d", prefix, i)
		v := fmt.Appendf(nil, "v%d-", i)
		for len(v) < size {
			if rng != nil {
				v = append(v, byte(rng.Uint32()))
			} else {
				v = append(v, 'x')
			}
		}
		if err := f.db.Put(f.wo, []byte(k), v); err != nil {
			t.Fatal(err)
		}
		f.log = append(f.log, encPut{seq: f.db.GetLatestSequenceNumber(), key: k, value: v})
	}
}

// bigBatch writes one batch of n values of size random bytes.
func (f *encFixture) bigBatch(t *testing.T, prefix string, n, size int, rng *rand.Rand) {
	t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	var puts []encPut
	for i := range n {
		v := make([]byte, size)
		for j := range v {
			v[j] = byte(rng.Uint32())
		}
		k := fmt.Sprintf("%s%04d", prefix, i)
		wb.Put([]byte(k), v)
		puts = append(puts, encPut{key: k, value: v})
	}
	if err := f.db.Write(f.wo, wb); err != nil {
		t.Fatal(err)
	}
	for i := range puts {
		puts[i].seq = f.db.GetLatestSequenceNumber()
	}
	f.log = append(f.log, puts...)
}

func (f *encFixture) flush(t *testing.T) {
	t.Helper()
	if err := f.db.Flush(f.fo); err != nil {
		t.Fatal(err)
	}
}

func (f *encFixture) latest() uint64 { return f.db.GetLatestSequenceNumber() }

// modelAt is the digest of the database after the puts up to seq.
func (f *encFixture) modelAt(seq uint64) rocks.Digest {
	model := map[string][]byte{}
	for _, p := range f.log {
		if p.seq > seq {
			break
		}
		model[p.key] = p.value
	}
	return modelDigest(model)
}

// archiver starts 'rockstream archive' with the key file keyFile ("" for
// none) and waits until it claimed the archive.
func (f *encFixture) archiver(t *testing.T, keyFile string, extra ...string) *proc {
	t.Helper()
	args := []string{"--log-level", "warn", "archive", "--db", f.dir, "--to", f.url, "--segment-age", "50ms", "--nice", "0"}
	if keyFile != "" {
		args = append(args, "--encryption-key-file", keyFile)
	}
	p := startArchiver(t, f.plain, append(args, extra...)...)
	waitManifest(t, f.plain) // its first base: what is written next goes to segments
	return p
}

// archivedSeq is the last sequence that timeline 1 of the archive holds:
// that of its last segment, or of its newest base when it is newer.
func archivedSeq(t *testing.T, store objstore.Store) uint64 {
	seq := archivedTo(t, store, 1)
	if m, _, err := manifest.Load(context.Background(), store); err == nil {
		for _, b := range m.Bases {
			if b.Timeline == 1 {
				seq = max(seq, b.Sequence)
			}
		}
	}
	return seq
}

// waitArchived waits until the archive, read through store, holds every
// batch written.
func (f *encFixture) waitArchived(t *testing.T, store objstore.Store, p *proc) {
	t.Helper()
	want := f.latest()
	for deadline := time.Now().Add(60 * time.Second); archivedSeq(t, store) != want; time.Sleep(5 * time.Millisecond) {
		if p != nil {
			p.failIfExited(t)
		}
		if time.Now().After(deadline) {
			out := ""
			if p != nil {
				out = p.out.String()
			}
			t.Fatalf("timed out waiting for the archive to reach %d (it is at %d); the archiver says:\n%s", want, archivedSeq(t, store), out)
		}
	}
}

// restoreKey restores the archive at url with the key file keyFile ("" for
// none) into a new folder, with more flags; it returns the folder, the
// exit code and the output.
func restoreKey(t *testing.T, url, keyFile string, flags ...string) (string, int, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	args := []string{"--log-level", "warn", "restore", "--from", url}
	if keyFile != "" {
		args = append(args, "--encryption-key-file", keyFile)
	}
	code, out, errOut := runCLI(t, append(append(args, flags...), dir)...)
	return dir, code, out + errOut
}

// mustRestoreEqual restores with restoreKey and checks the database's last
// sequence and content.
func mustRestoreEqual(t *testing.T, what, url, keyFile string, seq uint64, want rocks.Digest, flags ...string) {
	t.Helper()
	dir, code, out := restoreKey(t, url, keyFile, flags...)
	if code != exitOK {
		t.Fatalf("%s: restore %q: exit %d\n%s", what, flags, code, out)
	}
	got, gotSeq := testdb.Digest(t, dir)
	if gotSeq != seq || got.Diff(want) != "" {
		t.Fatalf("%s: the restore ends at %d (want %d): %s", what, gotSeq, seq, got.Diff(want))
	}
	os.RemoveAll(dir)
}

// bucketSnapshot lists every file under root (but the file store's own
// locks and temporary files) with its size and the SHA-256 of its bytes.
func bucketSnapshot(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".objstore" {
				return filepath.SkipDir
			}
			lines = append(lines, rel+"/")
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		lines = append(lines, fmt.Sprintf("%s %d %s", rel, len(b), hex.EncodeToString(sum[:])))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// objectFiles are the objects of the file archive root: their keys and
// paths.
func objectFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			if rel == ".objstore" {
				return filepath.SkipDir
			}
			return nil
		}
		out[filepath.ToSlash(rel)] = path
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// headerKeyID is the key id in the encryption header of the stored object
// at path, or "" when it has none.
func headerKeyID(t *testing.T, path string) string {
	t.Helper()
	b := readAll(t, path)
	h, err := crypt.ParseHeader(path, b)
	if err != nil {
		return ""
	}
	return h.ID.String()
}

// gone fails the test when path exists.
func gone(t *testing.T, what, path string) {
	t.Helper()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		entries, _ := os.ReadDir(path)
		t.Errorf("%s: %s exists afterwards (%v; holds %v)", what, path, err, entries)
	}
}

// standbyStops waits until the standby p, serving its status on addr,
// exits, and returns its exit code and output. A standby that retries
// instead (its error count reaches 3: on a file location, nothing that
// may pass) is killed, and stops reports that with ok false and its last
// line of output.
func standbyStops(t *testing.T, p *proc, addr string) (code int, out string, ok bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-p.err:
			return p.cmd.ProcessState.ExitCode(), p.out.String(), true
		case <-time.After(20 * time.Millisecond):
		}
		if n := standbyErrors(addr); n >= 3 || time.Now().After(deadline) {
			p.cmd.Process.Kill()
			<-p.err
			lines := strings.Split(strings.TrimSpace(p.out.String()), "\n")
			return -1, fmt.Sprintf("still running, %d errors retried; its last line (of %d):\n%s", n, len(lines), lines[len(lines)-1]), false
		}
	}
}
