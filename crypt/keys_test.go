package crypt_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/crypt"
)

// subKeys are the sub-keys that doc.go says a master key gives ("data"
// and "name"), derived here as NewKey does, to look for them in output.
func subKeys(t *testing.T, m []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for _, info := range []string{"rockstream data v1", "rockstream name v1"} {
		b, err := hkdf.Key(sha256.New, m, nil, info, 32)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// The id and the SST names of a fixed key are pinned: a change in their
// derivation would orphan every archive's objects.
func TestKeyIDGolden(t *testing.T) {
	m := make([]byte, crypt.KeySize)
	for i := range m {
		m[i] = byte(i)
	}
	k, err := crypt.NewKey(m)
	if err != nil {
		t.Fatal(err)
	}
	const wantID = "c8ba534ce3e7ab97"
	if got := k.ID().String(); got != wantID {
		t.Errorf("id of the key 00 01 .. 1f: %s, want %s", got, wantID)
	}
	k2, _ := crypt.NewKey(m)
	if k2.ID() != k.ID() {
		t.Error("the id of a key is not stable")
	}
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" // SHA-256 of nothing
	const wantName = "c1d98a5cdb666d0e3d81e209b3adaa7fa1015199ff47d24ccbfaf653b676ad46"
	if got := k.Name(sum); got != wantName {
		t.Errorf("keyed name of %s: %s, want %s", sum, got, wantName)
	}
	if k.Name(sum) != k2.Name(sum) || k.Name(sum) == newKey(t, 1).Name(sum) || k.Name(sum) == k.Name(strings.ToUpper(sum)) {
		t.Error("keyed names: not stable, or equal under two keys or two sums")
	}
	if n := k.Name(sum); len(n) != 64 || strings.Trim(n, "0123456789abcdef") != "" {
		t.Errorf("keyed name %q is not 64 lower-case hex digits", n)
	}
	// An id is 16 hex digits, and depends on all of the key.
	ids := map[crypt.ID]bool{}
	for i := range crypt.KeySize {
		m2 := append([]byte(nil), m...)
		m2[i] ^= 1
		k, _ := crypt.NewKey(m2)
		s := k.ID().String()
		if len(s) != 16 || strings.Trim(s, "0123456789abcdef") != "" {
			t.Fatalf("id %q is not 16 lower-case hex digits", s)
		}
		id, err := crypt.ParseID(s)
		if err != nil || id != k.ID() {
			t.Fatalf("ParseID(%q) = %v, %v", s, id, err)
		}
		ids[k.ID()] = true
	}
	if len(ids) != crypt.KeySize {
		t.Errorf("%d ids for %d keys", len(ids), crypt.KeySize)
	}
	for _, bad := range []string{"", "0011", "00112233445566778", "0011223344556677aa", "zz11223344556677", " 0112233445566778"} {
		if _, err := crypt.ParseID(bad); err == nil {
			t.Errorf("ParseID(%q) succeeded", bad)
		}
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := crypt.NewKey(make([]byte, n)); err == nil {
			t.Errorf("NewKey of %d bytes succeeded", n)
		}
	}
}

func TestParseKeys(t *testing.T) {
	m1, m2, m3 := master(1), master(2), master(3)
	in := "# a comment\n\n" +
		base64.StdEncoding.EncodeToString(m1) + "\n" +
		"   # an indented comment\n" +
		"  " + hex.EncodeToString(m2) + "  \r\n" +
		"\t\n" +
		strings.ToUpper(hex.EncodeToString(m3)) + "\n" +
		"# the end"
	r, err := crypt.ParseKeys(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range []byte{1, 2, 3} {
		want = append(want, newKey(t, s).ID().String())
	}
	if got := r.IDs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ids %v, want %v", got, want)
	}
	if r.Current().ID() != newKey(t, 1).ID() {
		t.Fatal("the first key is not the current one")
	}
	// A key of the file decrypts what the same master key sealed.
	sealed := seal(t, newKey(t, 2), "o", []byte("abc"))
	if got, err := open(r, "o", sealed); err != nil || string(got) != "abc" {
		t.Fatalf("open with a parsed key: %q %v", got, err)
	}

	secretish := base64.StdEncoding.EncodeToString(m1)
	for _, c := range []struct {
		in   string
		line int
		bad  string // a part of the content that the error must not show
	}{
		{"# only a comment\n\n", 0, ""},
		{"", 0, ""},
		{"# c\n" + secretish[:43] + "\n", 2, secretish[:43]},
		{"# c\n\n\n" + secretish + "=\n", 4, secretish},
		{hex.EncodeToString(m1)[:63] + "\n", 1, hex.EncodeToString(m1)[:63]},
		{hex.EncodeToString(m1) + "00\n", 1, hex.EncodeToString(m1)},
		{secretish + "\n" + "not a key at all, my password is hunter2\n", 2, "hunter2"},
		{secretish + "\n" + secretish + " " + secretish + "\n", 2, secretish[10:30]},
		{base64.StdEncoding.EncodeToString(append(m1, 0)) + "\n", 1, base64.StdEncoding.EncodeToString(append(m1, 0))[:40]},
		{"zz" + hex.EncodeToString(m1)[2:] + "\n", 1, hex.EncodeToString(m1)[2:]},
	} {
		_, err := crypt.ParseKeys(strings.NewReader(c.in))
		if err == nil {
			t.Errorf("ParseKeys(%q) succeeded", c.in)
			continue
		}
		if c.line > 0 && !strings.Contains(err.Error(), fmt.Sprintf("line %d", c.line)) {
			t.Errorf("ParseKeys(%q): %q does not name line %d", c.in, err, c.line)
		}
		if c.bad != "" && strings.Contains(err.Error(), c.bad) {
			t.Errorf("ParseKeys: %q shows the line's content", err)
		}
		noSecret(t, "ParseKeys error", err.Error(), 1)
	}
	// A key twice is refused.
	if _, err := crypt.ParseKeys(strings.NewReader(secretish + "\n" + hex.EncodeToString(m1) + "\n")); err == nil {
		t.Error("a key file with one key twice")
	} else {
		noSecret(t, "ParseKeys error", err.Error(), 1)
	}
	// A very long line: an error, not the line.
	long := strings.Repeat("A", 100_000)
	if _, err := crypt.ParseKeys(strings.NewReader(secretish + "\n" + long + "\n")); err == nil || strings.Contains(err.Error(), "AAAAAAAA") {
		t.Errorf("a long line: %v", err)
	}
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

func TestLoadKeyFile(t *testing.T) {
	dir := t.TempDir()
	content := "# key\n" + base64.StdEncoding.EncodeToString(master(1)) + "\n"
	for _, mode := range []os.FileMode{0o600, 0o400} {
		p := filepath.Join(dir, fmt.Sprintf("ok-%o", mode))
		writeFile(t, p, content, mode)
		r, err := crypt.LoadKeyFile(p)
		if err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
		if r.Current().ID() != newKey(t, 1).ID() {
			t.Fatalf("mode %04o: wrong key", mode)
		}
	}
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o606, 0o620} {
		p := filepath.Join(dir, fmt.Sprintf("open-%o", mode))
		writeFile(t, p, content, mode)
		_, err := crypt.LoadKeyFile(p)
		if !errors.Is(err, crypt.ErrKeyFile) {
			t.Fatalf("mode %04o: %v, want ErrKeyFile", mode, err)
		}
		if !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), p) {
			t.Errorf("mode %04o: %q does not say chmod 600 %s", mode, err, p)
		}
		noSecret(t, "LoadKeyFile error", err.Error(), 1)
	}
	if _, err := crypt.LoadKeyFile(dir); !errors.Is(err, crypt.ErrKeyFile) {
		t.Errorf("a directory: %v", err)
	}
	missing := filepath.Join(dir, "missing")
	if _, err := crypt.LoadKeyFile(missing); !errors.Is(err, crypt.ErrKeyFile) || !strings.Contains(err.Error(), missing) {
		t.Errorf("a missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	writeFile(t, bad, "# x\n"+base64.StdEncoding.EncodeToString(master(1))[:40]+"\n", 0o600)
	if _, err := crypt.LoadKeyFile(bad); !errors.Is(err, crypt.ErrKeyFile) || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a bad key file: %v", err)
	} else {
		noSecret(t, "LoadKeyFile error", err.Error(), 1)
	}
	empty := filepath.Join(dir, "empty")
	writeFile(t, empty, "", 0o600)
	if _, err := crypt.LoadKeyFile(empty); !errors.Is(err, crypt.ErrKeyFile) {
		t.Errorf("an empty key file: %v", err)
	}
	// A symbolic link to a good key file is followed; one to an open file
	// is refused.
	link := filepath.Join(dir, "link")
	if err := os.Symlink(filepath.Join(dir, "ok-600"), link); err != nil {
		t.Fatal(err)
	}
	if _, err := crypt.LoadKeyFile(link); err != nil {
		t.Errorf("a link to a good key file: %v", err)
	}
	link2 := filepath.Join(dir, "link2")
	if err := os.Symlink(filepath.Join(dir, "open-644"), link2); err != nil {
		t.Fatal(err)
	}
	if _, err := crypt.LoadKeyFile(link2); !errors.Is(err, crypt.ErrKeyFile) {
		t.Errorf("a link to an open key file: %v", err)
	}
}

func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	id1, err := crypt.Keygen(path, false, now)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("keygen wrote mode %04o, want 0600", fi.Mode().Perm())
	}
	content, _ := os.ReadFile(path)
	if !strings.Contains(string(content), id1.String()) || !strings.Contains(string(content), "2026-01-02T03:04:05Z") {
		t.Errorf("the key file does not name its key and date:\n%s", content)
	}
	r1, err := crypt.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Current().ID() != id1 || len(r1.Keys()) != 1 {
		t.Fatalf("keygen's file holds %v, want %s", r1.IDs(), id1)
	}
	old := seal(t, r1.Current(), "segments/old.seg", []byte("old data"))

	// No overwrite without rotate.
	if _, err := crypt.Keygen(path, false, now); !errors.Is(err, fs.ErrExist) {
		t.Errorf("keygen over a key file: %v, want fs.ErrExist", err)
	}
	if again, _ := os.ReadFile(path); !bytes.Equal(again, content) {
		t.Fatal("a refused keygen changed the key file")
	}
	// Rotation: the new key first, the old kept.
	writeFile(t, path+".tmp", "left over by a crash\n", 0o644) // must not lend its mode
	id2, err := crypt.Keygen(path, true, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if id2 == id1 {
		t.Fatal("rotation made the same key")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("after rotation the key file has mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	r2, err := crypt.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ids := r2.IDs(); len(ids) != 2 || ids[0] != id2.String() || ids[1] != id1.String() {
		t.Fatalf("after rotation: %v, want [%s %s]", ids, id2, id1)
	}
	if got, err := open(r2, "segments/old.seg", old); err != nil || string(got) != "old data" {
		t.Fatalf("an object of the old key after rotation: %q %v", got, err)
	}
	newer := seal(t, r2.Current(), "segments/new.seg", []byte("new data"))
	if h, _ := crypt.ParseHeader("x", newer); h.ID != id2 {
		t.Fatal("after rotation, the new key does not encrypt")
	}
	id3, err := crypt.Keygen(path, true, now.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	r3, err := crypt.LoadKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if ids := r3.IDs(); len(ids) != 3 || ids[0] != id3.String() || ids[1] != id2.String() || ids[2] != id1.String() {
		t.Fatalf("after two rotations: %v", ids)
	}
	for name, s := range map[string][]byte{"segments/old.seg": old, "segments/new.seg": newer} {
		if _, err := open(r3, name, s); err != nil {
			t.Errorf("%s after two rotations: %v", name, err)
		}
	}
	// Nothing left behind but the key file (and the stale file we made).
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "key" && e.Name() != "key.tmp" {
			t.Errorf("keygen left %s", e.Name())
		}
	}
	// Rotation needs a good key file.
	if _, err := crypt.Keygen(filepath.Join(dir, "nope"), true, now); !errors.Is(err, crypt.ErrKeyFile) {
		t.Errorf("rotation of a missing key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Error("rotation of a missing key file created it")
	}
	open644 := filepath.Join(dir, "open")
	writeFile(t, open644, string(content), 0o644)
	if _, err := crypt.Keygen(open644, true, now); !errors.Is(err, crypt.ErrKeyFile) {
		t.Errorf("rotation of an open key file: %v", err)
	}
	if _, err := crypt.Keygen(filepath.Join(dir, "no", "such", "dir"), false, now); err == nil {
		t.Error("keygen into a missing directory")
	}
}

// A key never prints its secret, whatever the verb.
func TestKeyFormatting(t *testing.T) {
	k1, k2 := newKey(t, 1), newKey(t, 2)
	r := newRing(t, k1, k2)
	var outs []string
	for _, v := range []any{k1, *k1, r, *r, r.Keys(), []crypt.Key{*k1}, struct{ K *crypt.Key }{k1}, struct{ R *crypt.Keyring }{r},
		map[string]*crypt.Key{"k": k1}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		outs = append(outs, fmt.Sprint(v), fmt.Sprintln(v))
	}
	for _, out := range outs {
		noSecret(t, "formatting", out, 1)
		noSecret(t, "formatting", out, 2)
	}
	if s := fmt.Sprint(k1); !strings.Contains(s, k1.ID().String()) {
		t.Errorf("fmt.Sprint of a key: %q does not name its id", s)
	}
	if s := fmt.Sprintf("%v", r); !strings.Contains(s, k1.ID().String()) || !strings.Contains(s, k2.ID().String()) {
		t.Errorf("a keyring's %%v: %q does not name its keys", s)
	}
	if s := fmt.Sprintf("%+v", *k1); !strings.Contains(s, k1.ID().String()) {
		t.Errorf("%%+v of a key: %q", s)
	}
}
