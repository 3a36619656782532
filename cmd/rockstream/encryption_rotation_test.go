package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
)

// rotated is an encrypted archive written with key A, then, after
// 'keygen --rotate' put key B before it in the key file, with B: the
// archiver restarted (new segments) and a new base.
type rotated struct {
	f              *encFixture
	keyA, keyB     string // ids
	onlyA, onlyB   string // key files of one key each
	seqA, seqEnd   uint64 // the last sequence written with A only; the end
	baseA, baseB   manifest.Base
	objectsA, objB int // objects whose header names A, B
}

func newRotated(t *testing.T) *rotated {
	t.Helper()
	f := newEncFixture(t)
	r := &rotated{f: f, keyA: f.keyID}
	r.onlyA = filepath.Join(filepath.Dir(f.key), "a-only.key")
	writeKeyFile(t, r.onlyA, readAll(t, f.key))
	f.put(t, "a", 100, 40, nil)
	f.flush(t) // an SST file in base A
	p := f.archiver(t, f.key)
	f.put(t, "b", 100, 40, nil)
	f.waitArchived(t, f.store, p)
	r.seqA = f.latest()
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive with key A: exit %d\n%s", code, p.out)
	}

	r.keyB = keygenFile(t, f.key, true)
	if ids := loadRing(t, f.key).IDs(); !slices.Equal(ids, []string{r.keyB, r.keyA}) {
		t.Fatalf("keygen --rotate: the key file holds %v, want [B A] = [%s %s]", ids, r.keyB, r.keyA)
	}
	r.onlyB = filepath.Join(filepath.Dir(f.key), "b-only.key")
	writeKeyFile(t, r.onlyB, []byte(firstKeyLine(t, f.key)+"\n"))
	if ids := loadRing(t, r.onlyB).IDs(); !slices.Equal(ids, []string{r.keyB}) {
		t.Fatalf("the B-only key file holds %v", ids)
	}

	f.put(t, "c", 100, 40, nil) // while the archiver is down
	store := encryptedStore(t, f.url, f.key)
	p = f.archiver(t, f.key)
	f.put(t, "d", 100, 40, nil)
	f.waitArchived(t, store, p)
	code, out, errOut := runCLI(t, "--log-level", "warn", "base", "--db", f.dir, "--to", f.url, "--encryption-key-file", f.key)
	if code != exitOK || !strings.Contains(out, "base taken") {
		t.Fatalf("base with the rotated key file: exit %d\n%s%s", code, out, errOut)
	}
	f.put(t, "e", 50, 40, nil)
	f.waitArchived(t, store, p)
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive with keys B, A: exit %d\n%s", code, p.out)
	}
	r.seqEnd = f.latest()

	m, _, err := manifest.Load(context.Background(), f.plain)
	if err != nil {
		t.Fatal(err)
	}
	if m.Format != manifest.FormatEncrypted || m.Encryption == nil || !slices.Equal(m.Encryption.KeyIDs, []string{r.keyA, r.keyB}) {
		t.Fatalf("manifest: format %d, encryption %+v; want format %d and keys [%s %s]", m.Format, m.Encryption, manifest.FormatEncrypted, r.keyA, r.keyB)
	}
	if len(m.Bases) != 2 {
		t.Fatalf("%d bases, want 2", len(m.Bases))
	}
	r.baseA, r.baseB = m.Bases[0], m.Bases[1]
	if r.baseA.Sequence > r.baseB.Sequence {
		r.baseA, r.baseB = r.baseB, r.baseA
	}
	r.checkHeaders(t)
	return r
}

func writeKeyFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// firstKeyLine is the first key of a key file: the one that encrypts.
func firstKeyLine(t *testing.T, path string) string {
	t.Helper()
	for _, l := range strings.Split(string(readAll(t, path)), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	t.Fatalf("no key in %s", path)
	return ""
}

// checkHeaders checks the key that each object names: the segments up to
// seqA and base A's objects A, the later segments and base B's files.json
// B.
func (r *rotated) checkHeaders(t *testing.T) {
	t.Helper()
	f := r.f
	ids := map[string]string{}
	for key, path := range objectFiles(t, f.bucket) {
		if key == manifest.ManifestKey || strings.HasPrefix(key, "probe/") {
			continue
		}
		id := headerKeyID(t, path)
		switch id {
		case r.keyA:
			r.objectsA++
		case r.keyB:
			r.objB++
		default:
			t.Errorf("%s: its header names key %q, neither A (%s) nor B (%s)", key, id, r.keyA, r.keyB)
		}
		ids[key] = id
	}
	c, err := catalog.Load(context.Background(), encryptedStore(t, f.url, f.key))
	if err != nil {
		t.Fatal(err)
	}
	var before, after int
	for _, s := range c.Segments[1] {
		want := r.keyB
		if s.Next-1 <= r.seqA {
			want = r.keyA
			before++
		} else {
			after++
		}
		if ids[s.Key] != want {
			t.Errorf("segment %s (%d..%d; key A wrote up to %d) is encrypted with %s, want %s", s.Key, s.First, s.Next-1, r.seqA, ids[s.Key], want)
		}
	}
	if before == 0 || after == 0 {
		t.Fatalf("%d segments written with A, %d with B: want some of each", before, after)
	}
	if ids[r.baseA.FileList] != r.keyA || ids[r.baseB.FileList] != r.keyB {
		t.Errorf("files.json of base A is encrypted with %s, of base B with %s", ids[r.baseA.FileList], ids[r.baseB.FileList])
	}
}

// TestEncryptionRotation: an archive written with key A, then with key B
// after 'keygen --rotate'. The manifest lists [A, B]; the objects name the
// key that wrote them; the rotated key file (B, A) restores the latest
// state and a point before the rotation, and verify passes. A key file of
// B alone fails on the objects of A, with exit 2 and a message that names
// A (a restore to a point before the rotation, or to base A); a key file
// of A alone fails naming B.
func TestEncryptionRotation(t *testing.T) {
	r := newRotated(t)
	f := r.f
	code, out, errOut := runCLI(t, "status", "--from", f.url, "--encryption-key-file", f.key)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("Encrypted with keys %s, %s", r.keyA, r.keyB)) {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	mustRestoreEqual(t, "latest, with the rotated key file", f.url, f.key, r.seqEnd, f.modelAt(r.seqEnd))
	mustRestoreEqual(t, "before the rotation, with the rotated key file", f.url, f.key, r.seqA, f.modelAt(r.seqA),
		"--to-seq", fmt.Sprint(r.seqA))
	mustRestoreEqual(t, "at base A, with the rotated key file", f.url, f.key, r.baseA.Sequence, f.modelAt(r.baseA.Sequence),
		"--to-seq", fmt.Sprint(r.baseA.Sequence))
	if code, out, errOut := runCLI(t, "--log-level", "warn", "verify", "--from", f.url, "--encryption-key-file", f.key, "--drill"); code != exitOK {
		t.Fatalf("verify --drill with the rotated key file: exit %d\n%s%s", code, out, errOut)
	}

	for _, c := range []struct {
		what, keyFile, names string
		flags                []string
	}{
		{"B alone, before the rotation", r.onlyB, r.keyA, []string{"--to-seq", fmt.Sprint(r.seqA)}},
		{"B alone, at base A", r.onlyB, r.keyA, []string{"--to-seq", fmt.Sprint(r.baseA.Sequence)}},
		{"A alone, latest", r.onlyA, r.keyB, nil},
	} {
		before := bucketSnapshot(t, f.bucket)
		dir, code, out := restoreKey(t, f.url, c.keyFile, c.flags...)
		if code != exitUsage || !strings.Contains(out, c.names) || !strings.Contains(out, "key") {
			t.Errorf("restore %q with key %s: exit %d, want %d naming key %s:\n%s", c.flags, c.what, code, exitUsage, c.names, out)
		}
		noStackTrace(t, out)
		gone(t, "restore with key "+c.what, dir)
		if after := bucketSnapshot(t, f.bucket); after != before {
			t.Errorf("restore with key %s changed the archive", c.what)
		}
	}
	t.Logf("keys A %s (%d objects), B %s (%d objects)", r.keyA, r.objectsA, r.keyB, r.objB)
}

// TestEncryptionVerifyMissingKey: verify with a key file that lacks a key
// of the archive (B alone, after a rotation from A) must exit 2 as every
// other command does for a key that is not the archive's, naming key A,
// rather than report a corrupt archive (exit 5) with objects "missing"
// that are there, encrypted with A.
func TestEncryptionVerifyMissingKey(t *testing.T) {
	r := newRotated(t)
	before := bucketSnapshot(t, r.f.bucket)
	code, out, errOut := runCLI(t, "--log-level", "error", "verify", "--from", r.f.url, "--encryption-key-file", r.onlyB)
	out += errOut
	if code != exitUsage || !strings.Contains(out, r.keyA) {
		t.Errorf("verify with key B alone: exit %d, want %d naming key A %s:\n%s", code, exitUsage, r.keyA, out)
	}
	if strings.Contains(out, "corrupt") || strings.Contains(out, "does not exist") {
		t.Errorf("verify with key B alone calls the archive corrupt, or an object missing (above)")
	}
	if after := bucketSnapshot(t, r.f.bucket); after != before {
		t.Errorf("verify changed the archive")
	}
}

// TestEncryptionRotationPrunedKey: once retention has pruned every base
// that key A wrote, the key file of B alone must read the archive ('keygen
// --help': the older keys stay in the file "to read what they wrote until
// retention has pruned it"). Before the prune, a restore of the latest
// state (base B, whose SST file is the one base A uploaded, reused) with B
// alone either works or fails with exit 2 naming A, not exit 5 saying the
// object is missing.
func TestEncryptionRotationPrunedKey(t *testing.T) {
	r := newRotated(t)
	f := r.f
	dir, code, out := restoreKey(t, f.url, r.onlyB)
	switch {
	case code == exitOK:
		os.RemoveAll(dir)
	case code != exitUsage || !strings.Contains(out, r.keyA):
		t.Errorf("restore of the latest state (base B) with key B alone: exit %d, want %d naming key A %s:\n%s", code, exitUsage, r.keyA, out)
	}
	gone(t, "the failed restore", dir)

	code, out, errOut := runCLI(t, "--log-level", "warn", "prune", "--from", f.url, "--encryption-key-file", f.key, "--keep-last", "1", "--grace", "0")
	if code != exitOK {
		t.Fatalf("prune: exit %d\n%s%s", code, out, errOut)
	}
	m, _, err := manifest.Load(context.Background(), f.plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bases) != 1 || m.Bases[0].Sequence != r.baseB.Sequence {
		t.Fatalf("after prune --keep-last 1: bases %+v, want base B only", m.Bases)
	}
	var leftA []string
	for key, path := range objectFiles(t, f.bucket) {
		if headerKeyID(t, path) == r.keyA {
			leftA = append(leftA, key)
		}
	}
	slices.Sort(leftA)
	if len(leftA) > 0 {
		// Not an error in itself (an object that nothing reads may stay),
		// but an SST file that base B names is stored under A's name only.
		t.Logf("after the prune of every base of key A, objects are still encrypted with A: %v", leftA)
	}
	mustRestoreEqual(t, "latest after the prune, with key B alone", f.url, r.onlyB, r.seqEnd, f.modelAt(r.seqEnd))
	if code, out, errOut := runCLI(t, "--log-level", "error", "verify", "--from", f.url, "--encryption-key-file", r.onlyB); code != exitOK {
		t.Errorf("verify with key B alone after the prune: exit %d\n%s%s", code, out, errOut)
	}
}

// TestEncryptionStandbyMissingKey: the primary's key file is rotated (B,
// then A) and its archiver restarted, while a standby follows with the
// key file of A alone. Once it meets the first segment written with B,
// which it can never read until it is restarted with a key file that
// holds B, it must stop with exit 2 naming key B (as restore does), not
// retry forever.
func TestEncryptionStandbyMissingKey(t *testing.T) {
	f := newEncFixture(t)
	onlyA := filepath.Join(filepath.Dir(f.key), "a-only.key")
	writeKeyFile(t, onlyA, readAll(t, f.key))
	p := f.archiver(t, f.key)
	f.put(t, "a", 100, 40, nil)
	f.waitArchived(t, f.store, p)
	addr := freeAddr(t)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, "--log-level", "warn", "standby", "--from", f.url, "--encryption-key-file", onlyA,
		"--listen", addr, "--poll", "10ms", sbDir)
	want := f.latest()
	waitUntilT(t, "the standby to catch up", func() bool { sb.failIfExited(t); a, _ := standbyApplied(addr); return a == want })
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	keyB := keygenFile(t, f.key, true)
	f.put(t, "b", 100, 40, nil)
	p = f.archiver(t, f.key)
	f.waitArchived(t, encryptedStore(t, f.url, f.key), p)
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive after the rotation: exit %d\n%s", code, p.out)
	}
	code, out, stopped := standbyStops(t, sb, addr)
	if !stopped || code != exitUsage || !strings.Contains(out, keyB) {
		t.Errorf("the standby with key A alone, once the archive went on with key B %s: exit %d, want %d naming it:\n%s", keyB, code, exitUsage, out)
	}
	if seq := openSeq(t, sbDir); seq != want {
		t.Errorf("the standby is at %d, want %d (all that key A wrote)", seq, want)
	}
}
