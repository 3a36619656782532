package crypt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/crypt"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// The golden objects: sealed with master key 00 01 .. 1f and salt 80 81 ..
// 9f under goldenName. The files are committed: opening them proves that
// this build reads what earlier ones wrote, and sealing again proves that
// it writes the same bytes.
const goldenName = "segments/00000001/0000000000000001.seg"

var goldenText = []byte(strings.Repeat("rockstream golden object, format v1: keys, values and WAL batches.\n", 5))

// The object of goldenBig(), two full blocks and a part of one, is too
// large to commit: its SHA-256 is pinned instead.
const goldenBigSHA256 = "94f4e2b762cd8b90dc477a31b07de6bcccee204bda6db9b6a258581e09add724"

// goldenBig is a plaintext of three blocks, the last of 100 bytes, that
// depends on nothing but this function.
func goldenBig() []byte {
	b := make([]byte, 2*crypt.BlockSize+100)
	for i := range b {
		b[i] = byte(i ^ i>>8 ^ i>>16)
	}
	return b
}

func goldenKey(t *testing.T) *crypt.Key {
	k, err := crypt.NewKey(master(0))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func goldenSalt(p []byte) (int, error) {
	for i := range p {
		p[i] = 0x80 + byte(i)
	}
	return len(p), nil
}

func TestGolden(t *testing.T) {
	k := goldenKey(t)
	r := newRing(t, k)
	crypt.SetRandRead(t, goldenSalt)
	for _, g := range []struct {
		file  string
		plain []byte
	}{
		{"golden-v1.bin", goldenText},
		{"golden-v1-empty.bin", nil},
	} {
		path := filepath.Join("testdata", g.file)
		sealed := seal(t, k, goldenName, g.plain)
		if *update {
			if err := os.WriteFile(path, sealed, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		golden, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./crypt -run TestGolden -update writes it)", err)
		}
		got, err := open(r, goldenName, golden)
		if err != nil || !bytes.Equal(got, g.plain) {
			t.Fatalf("%s: open: %q, %v", g.file, got, err)
		}
		if !bytes.Equal(sealed, golden) {
			t.Errorf("%s: sealing the same plaintext with the same key and salt gives other bytes: the format changed", g.file)
		}
		// The header, field by field (doc.go).
		id := k.ID()
		want := append([]byte("RSENC\x01\x14\x00"), id[:]...)
		var salt [32]byte
		goldenSalt(salt[:])
		want = append(want, salt[:]...)
		if !bytes.Equal(golden[:crypt.HeaderSize], want) {
			t.Errorf("%s: header %x, want %x", g.file, golden[:crypt.HeaderSize], want)
		}
		if int64(len(golden)) != crypt.SealedSize(int64(len(g.plain))) {
			t.Errorf("%s: %d bytes", g.file, len(golden))
		}
		if _, err := open(r, "segments/00000001/0000000000000002.seg", golden); err == nil {
			t.Errorf("%s opens under another name", g.file)
		}
	}
	big := goldenBig()
	sealed := seal(t, k, goldenName, big)
	sum := sha256.Sum256(sealed)
	if *update {
		t.Logf("goldenBigSHA256 = %q", hex.EncodeToString(sum[:]))
	}
	if hex.EncodeToString(sum[:]) != goldenBigSHA256 {
		t.Errorf("the sealed object of three blocks has SHA-256 %x, want %s: the format changed", sum, goldenBigSHA256)
	}
	if got, err := open(r, goldenName, sealed); err != nil || !bytes.Equal(got, big) {
		t.Fatalf("the big golden object: %v", err)
	}
}

// TestGoldenBound pins what Key.Bind derives, which every encrypted
// archive depends on (its objects are sealed and its SST files named
// with the keys bound to its archive id): the id stays the key's, the
// name of the SHA-256 of nothing and the SHA-256 of goldenText sealed
// under the golden salt are fixed, and a key bound to another archive
// opens nothing of it.
func TestGoldenBound(t *testing.T) {
	const archive = "00112233445566778899aabbccddeeff"
	const wantName = "a348d241fcaea53f6ed1b4e099c5683de601b638718b509c6d75fadd3afb09fa" // checked with an independent HKDF and HMAC in Python
	const wantSealed = "e7c532ed824504e2e3a13e47cbe4efe5022b3b3ea8fb17acf845861c6edd58bb"
	k := goldenKey(t)
	b, err := k.Bind(archive)
	if err != nil {
		t.Fatal(err)
	}
	if b.ID() != k.ID() {
		t.Fatalf("a bound key has id %s, the key %s", b.ID(), k.ID())
	}
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := b.Name(sum); got != wantName {
		t.Errorf("bound keyed name: %s, want %s", got, wantName)
	}
	crypt.SetRandRead(t, goldenSalt)
	sealed := seal(t, b, goldenName, goldenText)
	h := sha256.Sum256(sealed)
	if got := hex.EncodeToString(h[:]); got != wantSealed {
		t.Errorf("sealed under the bound key: SHA-256 %s, want %s: the format changed", got, wantSealed)
	}
	if got, err := open(newRing(t, b), goldenName, sealed); err != nil || !bytes.Equal(got, goldenText) {
		t.Fatalf("open under the bound key: %v", err)
	}
	other, err := k.Bind("ffeeddccbbaa99887766554433221100")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open(newRing(t, other), goldenName, sealed); !errors.Is(err, crypt.ErrTampered) {
		t.Errorf("a key bound to another archive: %v, want ErrTampered", err)
	}
	if _, err := open(newRing(t, k), goldenName, sealed); !errors.Is(err, crypt.ErrTampered) {
		t.Errorf("the unbound key: %v, want ErrTampered", err)
	}
	if _, err := k.Bind(""); err == nil {
		t.Error("Bind of no archive id succeeded")
	}
}
