package crypt_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/crypt"
)

const (
	B    = crypt.BlockSize
	T    = crypt.TagSize
	H    = crypt.HeaderSize
	full = B + T // a sealed full block
)

// master is a fixed master key: bytes seed, seed+1, ...
func master(seed byte) []byte {
	m := make([]byte, crypt.KeySize)
	for i := range m {
		m[i] = seed + byte(i)
	}
	return m
}

func newKey(t testing.TB, seed byte) *crypt.Key {
	t.Helper()
	k, err := crypt.NewKey(master(seed))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newRing(t testing.TB, keys ...*crypt.Key) *crypt.Keyring {
	t.Helper()
	r, err := crypt.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// plaintext is n bytes that depend on seed only.
func plaintext(seed uint64, n int) []byte {
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func seal(t testing.TB, k *crypt.Key, name string, plain []byte) []byte {
	t.Helper()
	r, err := k.Seal(name, bytes.NewReader(plain))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// open reads the object whole: what the reader gave before it failed, and
// its error (Open's, or the first read error).
func open(r *crypt.Keyring, name string, sealed []byte) ([]byte, error) {
	o, err := r.Open(name, bytes.NewReader(sealed))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(o)
}

// openErr opens a damaged object: it must fail with want, having given no
// more than the blocks before block firstBad, and those right.
func openErr(t *testing.T, what string, r *crypt.Keyring, name string, sealed, plain []byte, firstBad int, want error) {
	t.Helper()
	got, err := open(r, name, sealed)
	if !errors.Is(err, want) {
		t.Errorf("%s: error %v, want %v", what, err, want)
	}
	if len(got) > firstBad*B {
		t.Errorf("%s: gave %d bytes, more than the %d of the blocks before block %d", what, len(got), firstBad*B, firstBad)
	}
	if !bytes.Equal(got, plain[:min(len(got), len(plain))]) || len(got)%B != 0 {
		t.Errorf("%s: gave %d bytes that are not whole authenticated blocks of the plaintext", what, len(got))
	}
}

var sizes = []int{0, 1, 17, B - 1, B, B + 1, 2 * B, 3 * B, 3*B + 17}

func TestRoundTrip(t *testing.T) {
	k := newKey(t, 1)
	r := newRing(t, k)
	for i, n := range sizes {
		name := fmt.Sprintf("segments/00000001/%016x.seg", i)
		plain := plaintext(uint64(i), n)
		sealed := seal(t, k, name, plain)
		if int64(len(sealed)) != crypt.SealedSize(int64(n)) {
			t.Errorf("%d bytes: sealed into %d, SealedSize says %d", n, len(sealed), crypt.SealedSize(int64(n)))
		}
		if p, err := crypt.PlainSize(int64(len(sealed))); err != nil || p != int64(n) {
			t.Errorf("%d bytes: PlainSize(%d) = %d, %v", n, len(sealed), p, err)
		}
		if !crypt.IsEncrypted(sealed) {
			t.Errorf("%d bytes: IsEncrypted is false", n)
		}
		h, err := crypt.ParseHeader(name, sealed)
		if err != nil || h.ID != k.ID() {
			t.Errorf("%d bytes: header %+v, %v", n, h, err)
		}
		got, err := open(r, name, sealed)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: open gave %d bytes (equal %v), %v", n, len(got), bytes.Equal(got, plain), err)
		}
		// Small reads, and a reader that gives one byte at a time.
		o, err := r.Open(name, iotestOneByte(bytes.NewReader(sealed)))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		p := make([]byte, 7)
		for {
			m, err := o.Read(p)
			buf.Write(p[:m])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%d bytes, small reads: %v", n, err)
			}
		}
		if !bytes.Equal(buf.Bytes(), plain) {
			t.Fatalf("%d bytes, small reads: differ", n)
		}
	}
	// A body that gives one byte at a time seals to the same layout.
	plain := plaintext(99, B+5)
	sr, err := k.Seal("x", iotestOneByte(bytes.NewReader(plain)))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := io.ReadAll(sr)
	if err != nil || int64(len(sealed)) != crypt.SealedSize(B+5) {
		t.Fatalf("seal of a slow body: %d bytes, %v", len(sealed), err)
	}
	if got, err := open(r, "x", sealed); err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("open of a slowly sealed object: %v", err)
	}
}

// oneByte reads one byte at a time.
type oneByte struct{ r io.Reader }

func (o oneByte) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

func iotestOneByte(r io.Reader) io.Reader { return oneByte{r} }

// A body that fails fails the sealing, and no salt is ever reused.
func TestSealErrors(t *testing.T) {
	k := newKey(t, 1)
	boom := errors.New("disk on fire")
	r, err := k.Seal("x", io.MultiReader(bytes.NewReader(make([]byte, B+10)), errReader{boom}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Fatalf("seal of a failing body: %v", err)
	}
	a, b := seal(t, k, "x", []byte("same")), seal(t, k, "x", []byte("same"))
	if bytes.Equal(a[16:48], b[16:48]) || bytes.Equal(a, b) {
		t.Fatal("two sealings of the same plaintext share a salt")
	}
	crypt.SetRandRead(t, func([]byte) (int, error) { return 0, boom })
	if _, err := k.Seal("x", bytes.NewReader(nil)); !errors.Is(err, boom) {
		t.Fatalf("seal without randomness: %v", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestSizes(t *testing.T) {
	check := func(n int64) {
		s := crypt.SealedSize(n)
		if p, err := crypt.PlainSize(s); err != nil || p != n {
			t.Fatalf("PlainSize(SealedSize(%d) = %d) = %d, %v", n, s, p, err)
		}
	}
	for _, n := range sizes {
		check(int64(n))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		check(rng.Int64N(100 * B))
	}
	for k := int64(0); k < 5; k++ {
		for d := int64(-2); d <= 2; d++ {
			if n := k*B + d; n >= 0 {
				check(n)
			}
		}
	}
	// Impossible sizes: shorter than a header and an empty block, or a
	// last block shorter than its tag, or an empty block after full ones
	// (Seal makes an empty block only for an empty object).
	impossible := []int64{-1, 0, 1, H - 1, H}
	for i := int64(1); i < T; i++ {
		impossible = append(impossible, H+i, H+full+i, H+3*full+i)
	}
	impossible = append(impossible, H+full+T, H+2*full+T)
	for _, s := range impossible {
		if p, err := crypt.PlainSize(s); !errors.Is(err, crypt.ErrTampered) {
			t.Errorf("PlainSize(%d) = %d, %v, want ErrTampered", s, p, err)
		}
	}
	// Every size is either impossible or the size of exactly one plaintext.
	for s := int64(0); s < 3*full+H+T+10; s++ {
		if s > 2*H+T && s < full-T && s%1000 != 0 {
			continue // the middle of block 0 is all alike
		}
		p, err := crypt.PlainSize(s)
		if err == nil && crypt.SealedSize(p) != s {
			t.Fatalf("PlainSize(%d) = %d, whose SealedSize is %d", s, p, crypt.SealedSize(p))
		}
	}
}

// tamper returns a copy of b changed by f.
func tamper(b []byte, f func([]byte) []byte) []byte {
	return f(append([]byte(nil), b...))
}

func TestTamper(t *testing.T) {
	k := newKey(t, 1)
	r := newRing(t, k)
	const name = "segments/00000001/0000000000000001.seg"
	plain := plaintext(1, 3*B+17) // blocks 0..3, the last of 17 bytes
	sealed := seal(t, k, name, plain)
	other := seal(t, k, "segments/00000001/0000000000000002.seg", plaintext(2, 3*B+17))
	same := seal(t, k, name, plaintext(3, 3*B+17)) // same key, same name, another salt
	blk := func(i int) int { return H + i*full }
	cases := []struct {
		name     string
		sealed   []byte
		firstBad int
	}{
		{"salt", tamper(sealed, func(b []byte) []byte { b[30] ^= 1; return b }), 0},
		{"untouched (control)", sealed, 4},
		{"ciphertext of block 0", tamper(sealed, func(b []byte) []byte { b[blk(0)] ^= 0x80; return b }), 0},
		{"ciphertext of block 1", tamper(sealed, func(b []byte) []byte { b[blk(1)+12345] ^= 1; return b }), 1},
		{"ciphertext of the last block", tamper(sealed, func(b []byte) []byte { b[blk(3)] ^= 1; return b }), 3},
		{"tag of block 2", tamper(sealed, func(b []byte) []byte { b[blk(3)-1] ^= 1; return b }), 2},
		{"tag of the last block", tamper(sealed, func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), 3},
		{"blocks 0 and 1 swapped", tamper(sealed, func(b []byte) []byte {
			b0 := append([]byte(nil), b[blk(0):blk(1)]...)
			copy(b[blk(0):], b[blk(1):blk(2)])
			copy(b[blk(1):], b0)
			return b
		}), 0},
		{"blocks 1 and 2 swapped", tamper(sealed, func(b []byte) []byte {
			b1 := append([]byte(nil), b[blk(1):blk(2)]...)
			copy(b[blk(1):], b[blk(2):blk(3)])
			copy(b[blk(2):], b1)
			return b
		}), 1},
		{"last block dropped", sealed[:blk(3)], 2},
		{"last two blocks dropped", sealed[:blk(2)], 1},
		{"all blocks dropped", sealed[:H], 0},
		{"cut in the middle of block 2", sealed[:blk(2)+100], 2},
		{"cut in the last block's tag", sealed[:len(sealed)-1], 3},
		{"cut to a block's size", sealed[:blk(2)+T-1], 2},
		{"a block of another object appended", append(append([]byte(nil), sealed...), other[blk(1):blk(2)]...), 3},
		{"the last block of another object appended", append(append([]byte(nil), sealed...), other[blk(3):]...), 3},
		{"a byte appended", append(append([]byte(nil), sealed...), 0), 3},
		{"block 1 of another object", tamper(sealed, func(b []byte) []byte { copy(b[blk(1):], other[blk(1):blk(2)]); return b }), 1},
		{"block 1 of the same name under another salt", tamper(sealed, func(b []byte) []byte { copy(b[blk(1):], same[blk(1):blk(2)]); return b }), 1},
		{"the header of another object", tamper(sealed, func(b []byte) []byte { copy(b, other[:H]); return b }), 0},
		{"the blocks of another object", append(append([]byte(nil), sealed[:H]...), same[H:]...), 0},
	}
	for _, c := range cases {
		if c.firstBad == 4 {
			if got, err := open(r, name, c.sealed); err != nil || !bytes.Equal(got, plain) {
				t.Fatalf("untouched object: %v", err)
			}
			continue
		}
		openErr(t, c.name, r, name, c.sealed, plain, c.firstBad, crypt.ErrTampered)
	}
	// Renamed: the name is bound to the content key.
	openErr(t, "renamed", r, "segments/00000001/0000000000000002.seg", sealed, plain, 0, crypt.ErrTampered)
	openErr(t, "renamed by one byte", r, name+" ", sealed, plain, 0, crypt.ErrTampered)
	// An empty object: its block dropped, or another's empty block.
	empty := seal(t, k, name, nil)
	openErr(t, "empty object's block dropped", r, name, empty[:H], nil, 0, crypt.ErrTampered)
	openErr(t, "empty object's tag cut", r, name, empty[:H+T-1], nil, 0, crypt.ErrTampered)
	otherEmpty := seal(t, k, name, nil)
	openErr(t, "empty object with another's block", r, name, append(append([]byte(nil), empty[:H]...), otherEmpty[H:]...), nil, 0, crypt.ErrTampered)
	// A block appended to an empty object.
	openErr(t, "empty object extended", r, name, append(append([]byte(nil), empty...), empty[H:]...), nil, 0, crypt.ErrTampered)
	// A one-block object whose block is re-sealed as not the last: cut of a
	// 2-block object at the boundary.
	two := seal(t, k, name, plaintext(5, 2*B))
	openErr(t, "2 full blocks cut after the first", r, name, two[:H+full], plaintext(5, 2*B), 0, crypt.ErrTampered)
	// A cut header.
	for _, n := range []int{5, 6, 20, H - 1} {
		if _, err := r.Open(name, bytes.NewReader(sealed[:n])); !errors.Is(err, crypt.ErrTampered) {
			t.Errorf("header cut to %d bytes: %v, want ErrTampered", n, err)
		}
	}
	for _, n := range []int{0, 3} {
		if _, err := r.Open(name, bytes.NewReader(sealed[:n])); !errors.Is(err, crypt.ErrNotEncrypted) {
			t.Errorf("%d bytes: %v, want ErrNotEncrypted", n, err)
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	k := newKey(t, 1)
	r := newRing(t, k)
	sealed := seal(t, k, "x", []byte("hello"))
	cases := []struct {
		what string
		at   int
		want error
	}{
		{"magic", 0, crypt.ErrNotEncrypted},
		{"magic's last byte", 4, crypt.ErrNotEncrypted},
		{"version", 5, crypt.ErrUnknownFormat},
		{"block shift", 6, crypt.ErrUnknownFormat},
		{"reserved byte", 7, crypt.ErrUnknownFormat},
	}
	for _, c := range cases {
		for _, v := range []byte{0, 2, 0xff} {
			b := tamper(sealed, func(b []byte) []byte { b[c.at] ^= v | 1; return b })
			_, err := open(r, "x", b)
			if !errors.Is(err, c.want) {
				t.Errorf("%s changed: %v, want %v", c.what, err, c.want)
			}
			if err != nil && !strings.Contains(err.Error(), "x") {
				t.Errorf("%s changed: %q does not name the object", c.what, err)
			}
		}
	}
	if _, err := open(r, "x", []byte("plain text that is long enough to be a header, but is not one")); !errors.Is(err, crypt.ErrNotEncrypted) {
		t.Errorf("plaintext: %v", err)
	}
	if _, err := crypt.ParseHeader("x", sealed[:H-1]); !errors.Is(err, crypt.ErrNotEncrypted) {
		t.Errorf("ParseHeader of a short header: %v", err)
	}
	if crypt.IsEncrypted([]byte("RSEN")) || crypt.IsEncrypted(nil) || !crypt.IsEncrypted([]byte("RSENC")) {
		t.Error("IsEncrypted")
	}
}

func TestMissingKey(t *testing.T) {
	k1, k2, k3 := newKey(t, 1), newKey(t, 2), newKey(t, 3)
	sealed := seal(t, k1, "segments/a.seg", []byte("secret"))
	r := newRing(t, k2, k3)
	_, err := open(r, "segments/a.seg", sealed)
	var mk *crypt.MissingKeyError
	if !errors.As(err, &mk) {
		t.Fatalf("open with a ring that lacks the key: %v (%T), want a *MissingKeyError", err, err)
	}
	if mk.ID != k1.ID() || mk.Object != "segments/a.seg" {
		t.Errorf("MissingKeyError %+v", mk)
	}
	msg := err.Error()
	for _, want := range []string{k1.ID().String(), k2.ID().String(), k3.ID().String(), "segments/a.seg"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not say %s", msg, want)
		}
	}
	for _, seed := range []byte{1, 2, 3} {
		noSecret(t, "MissingKeyError", msg, seed)
	}
	// A ring of two keys reads what either encrypted; the first encrypts.
	r12 := newRing(t, k1, k2)
	if r12.Current() != k1 || len(r12.Keys()) != 2 || r12.Find(k2.ID()) != k2 || r12.Find(k3.ID()) != nil {
		t.Fatal("keyring's Current, Keys or Find")
	}
	if ids := r12.IDs(); len(ids) != 2 || ids[0] != k1.ID().String() || ids[1] != k2.ID().String() {
		t.Fatalf("IDs %v", ids)
	}
	for _, k := range []*crypt.Key{k1, k2} {
		plain := plaintext(7, B+3)
		s := seal(t, k, "o", plain)
		if got, err := open(r12, "o", s); err != nil || !bytes.Equal(got, plain) {
			t.Errorf("ring of two keys, object of %s: %v", k, err)
		}
	}
	s := seal(t, r12.Current(), "o", []byte("new"))
	if h, err := crypt.ParseHeader("o", s); err != nil || h.ID != k1.ID() {
		t.Fatalf("sealed under the current key: %+v %v", h, err)
	}
	if _, err := crypt.NewKeyring(); err == nil {
		t.Error("empty keyring")
	}
	if _, err := crypt.NewKeyring(k1, k2, newKey(t, 1)); err == nil {
		t.Error("keyring with a key twice")
	}
}

// noSecret fails if s holds master key seed's bytes in a usual encoding.
func noSecret(t *testing.T, what, s string, seed byte) {
	t.Helper()
	m := master(seed)
	for _, enc := range []string{
		base64.StdEncoding.EncodeToString(m), base64.RawStdEncoding.EncodeToString(m),
		base64.URLEncoding.EncodeToString(m), hex.EncodeToString(m), strings.ToUpper(hex.EncodeToString(m)),
		fmt.Sprintf("%v", m), fmt.Sprintf("%#v", m), fmt.Sprintf("%x", m), string(m),
	} {
		if strings.Contains(s, enc) {
			t.Errorf("%s: %q holds the master key (%q)", what, s, enc)
		}
	}
	for _, sub := range subKeys(t, m) {
		for _, enc := range []string{hex.EncodeToString(sub), base64.StdEncoding.EncodeToString(sub),
			fmt.Sprintf("%v", sub), fmt.Sprintf("%#v", sub), fmt.Sprintf("%#v", [32]byte(sub)), string(sub)} {
			if strings.Contains(s, enc) {
				t.Errorf("%s: %q holds a sub-key (%q)", what, s, enc)
			}
		}
	}
}

func TestRanges(t *testing.T) {
	k := newKey(t, 1)
	r := newRing(t, k)
	const name = "bases/00000001/0000000000000010/000012.log"
	n := int64(3*B + B/2)
	plain := plaintext(11, int(n))
	sealed := seal(t, k, name, plain)
	hdr := sealed[:H]
	read := func(off, length int64, sealed []byte) ([]byte, error) {
		so, sl := crypt.RangeOf(off, length, n)
		if so < H || sl < 0 || so+sl > int64(len(sealed)) {
			t.Fatalf("RangeOf(%d, %d, %d) = %d+%d, outside the object of %d bytes", off, length, n, so, sl, len(sealed))
		}
		o, err := r.OpenRange(name, hdr, n, off, length, bytes.NewReader(sealed[so:so+sl]))
		if err != nil {
			return nil, err
		}
		return io.ReadAll(o)
	}
	want := func(off, length int64) []byte {
		end := n
		if length > 0 && length < n-off {
			end = off + length
		}
		return plain[off:end]
	}
	offs := []int64{0, 1, 100, B - 1, B, B + 1, 2*B - 1, 2 * B, 2*B + 1, 3*B - 1, 3 * B, 3*B + 1, 3*B + 1000, n - 2, n - 1, n}
	lens := []int64{0, -1, 1, 2, 100, B - 1, B, B + 1, 2 * B, n - 1, n, n + 100, math.MaxInt64, math.MinInt64}
	type rng struct{ off, length int64 }
	var ranges []rng
	for _, off := range offs {
		for _, l := range lens {
			ranges = append(ranges, rng{off, l})
		}
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	for range 200 {
		off := rnd.Int64N(n)
		ranges = append(ranges, rng{off, rnd.Int64N(n-off+10) - 5})
	}
	for _, c := range ranges {
		got, err := read(c.off, c.length, sealed)
		if err != nil {
			t.Fatalf("range %d+%d: %v", c.off, c.length, err)
		}
		if w := want(c.off, c.length); !bytes.Equal(got, w) {
			t.Fatalf("range %d+%d: %d bytes, want %d (equal prefix %v)", c.off, c.length, len(got), len(w), bytes.HasPrefix(w, got))
		}
	}
	// A flipped byte in the blocks of a range fails it; in other blocks,
	// it does not matter.
	for _, c := range []struct {
		off, length int64
		at          int
		fail        bool
	}{
		{0, 10, H + 5, true},
		{0, 10, H + full + 5, false},
		{B + 10, 10, H + full + 100, true},
		{B + 10, 10, H + full - 1, false}, // block 0's tag
		{B - 5, 10, H + full - 1, true},   // block 0's tag, range across 0 and 1
		{B - 5, 10, H + 2*full - 1, true}, // block 1's tag
		{3*B + 10, 0, len(sealed) - 1, true},
		{3*B + 10, 0, H + 3*full - 1, false},
		{2 * B, B, H + 2*full + 7, true},
		{2 * B, B, H + 3*full + 7, false},
		{2 * B, B, 20, true}, // the salt
	} {
		bad := tamper(sealed, func(b []byte) []byte { b[c.at] ^= 4; return b })
		o, err := r.OpenRange(name, bad[:H], n, c.off, c.length, func() io.Reader {
			so, sl := crypt.RangeOf(c.off, c.length, n)
			return bytes.NewReader(bad[so : so+sl])
		}())
		var got []byte
		if err == nil {
			got, err = io.ReadAll(o)
		}
		switch {
		case c.fail && !errors.Is(err, crypt.ErrTampered):
			t.Errorf("range %d+%d, byte %d flipped: %v (%d bytes), want ErrTampered", c.off, c.length, c.at, err, len(got))
		case !c.fail && (err != nil || !bytes.Equal(got, want(c.off, c.length))):
			t.Errorf("range %d+%d, byte %d flipped outside it: %v", c.off, c.length, c.at, err)
		}
	}
	// Ranges of an object whose size is wrong: cut at a block boundary, the
	// size says 3 blocks, whose last must be sealed as the last.
	cut := sealed[:H+3*full]
	pn, err := crypt.PlainSize(int64(len(cut)))
	if err != nil || pn != 3*B {
		t.Fatalf("PlainSize of the cut object: %d, %v", pn, err)
	}
	so, sl := crypt.RangeOf(2*B+5, 10, pn)
	o, err := r.OpenRange(name, hdr, pn, 2*B+5, 10, bytes.NewReader(cut[so:so+sl]))
	if err == nil {
		_, err = io.ReadAll(o)
	}
	if !errors.Is(err, crypt.ErrTampered) {
		t.Errorf("range in the last block of an object cut at a block boundary: %v", err)
	}
	// The store gives fewer bytes than the range needs.
	so, sl = crypt.RangeOf(B, 2*B, n)
	o, err = r.OpenRange(name, hdr, n, B, 2*B, bytes.NewReader(sealed[so:so+sl-1]))
	if err == nil {
		_, err = io.ReadAll(o)
	}
	if !errors.Is(err, crypt.ErrTampered) {
		t.Errorf("range given short: %v", err)
	}
	so, sl = crypt.RangeOf(B, 10, n)
	o, err = r.OpenRange(name, hdr, n, B, 2*B, bytes.NewReader(sealed[so:so+sl]))
	if err == nil {
		_, err = io.ReadAll(o)
	}
	if !errors.Is(err, crypt.ErrTampered) {
		t.Errorf("range given only its first block: %v", err)
	}
	// Ranges of an empty object and of one block.
	for _, m := range []int64{0, 1, B} {
		p := plaintext(12, int(m))
		s := seal(t, k, name, p)
		for _, off := range []int64{0, m / 2, max(0, m-1)} {
			so, sl := crypt.RangeOf(off, 0, m)
			o, err := r.OpenRange(name, s[:H], m, off, 0, bytes.NewReader(s[so:so+sl]))
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(o)
			if err != nil || !bytes.Equal(got, p[off:]) {
				t.Fatalf("object of %d bytes, range from %d: %d bytes, %v", m, off, len(got), err)
			}
		}
	}
	// A header given with more bytes after it: only the header counts.
	so, sl = crypt.RangeOf(B+1, 10, n)
	o, err = r.OpenRange(name, sealed[:H+100], n, B+1, 10, bytes.NewReader(sealed[so:so+sl]))
	if err == nil {
		var got []byte
		if got, err = io.ReadAll(o); err == nil && !bytes.Equal(got, plain[B+1:B+11]) {
			t.Error("range with a long header: differs")
		}
	}
	if err != nil {
		t.Errorf("range with a long header: %v", err)
	}
	// Bad ranges are refused rather than misread.
	for _, c := range []rng{{-1, 10}, {n + 1, 0}, {n + B, 10}} {
		if o, err := r.OpenRange(name, hdr, n, c.off, c.length, bytes.NewReader(sealed[H:])); err == nil {
			if got, err := io.ReadAll(o); err == nil && len(got) > 0 {
				t.Errorf("range %d+%d of %d bytes gave %d bytes", c.off, c.length, n, len(got))
			}
		}
	}
}

// TestSealAt: SealAt gives, under the same salt, the bytes that Seal
// streams, read in small pieces, and again the same after seeking back
// (as an HTTP client reads a body to sign it, then to send it).
func TestSealAt(t *testing.T) {
	k := newKey(t, 4)
	for _, n := range []int{0, 1, crypt.BlockSize - 1, crypt.BlockSize, crypt.BlockSize + 1, 3*crypt.BlockSize + 17} {
		plain := make([]byte, n)
		for i := range plain {
			plain[i] = byte(i * 7)
		}
		crypt.SetRandRead(t, func(p []byte) (int, error) {
			for i := range p {
				p[i] = byte(i + 1)
			}
			return len(p), nil
		})
		want := seal(t, k, "sst/x", plain)
		r, err := k.SealAt("sst/x", bytes.NewReader(plain), int64(n))
		if err != nil {
			t.Fatal(err)
		}
		if r.Size() != int64(len(want)) || r.Len() != len(want) {
			t.Fatalf("%d bytes: Size %d, Len %d, want %d", n, r.Size(), r.Len(), len(want))
		}
		for pass := range 2 {
			var got bytes.Buffer
			if _, err := io.CopyBuffer(&got, struct{ io.Reader }{r}, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Bytes(), want) {
				t.Fatalf("%d bytes, pass %d: SealAt differs from Seal", n, pass)
			}
			if _, err := r.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
		}
		if n > crypt.BlockSize {
			// A seek into the middle of a block.
			off := int64(crypt.HeaderSize + crypt.BlockSize + crypt.TagSize + 5)
			r.Seek(off, io.SeekStart)
			rest, _ := io.ReadAll(r)
			if !bytes.Equal(rest, want[off:]) {
				t.Fatalf("%d bytes: after a seek to %d the bytes differ", n, off)
			}
		}
	}
	// A plaintext shorter than announced is an error, never a short object.
	r, _ := k.SealAt("sst/x", bytes.NewReader(make([]byte, 10)), 20)
	if _, err := io.ReadAll(r); err == nil {
		t.Fatal("sealing 10 bytes announced as 20 succeeded")
	}
}

// BenchmarkSealOpen measures sealing (SealAt, as cryptstore seals a
// segment or a base file) and opening an object of 8 MiB: the figure
// docs/ENCRYPTION.md gives for AES-GCM on these machines.
//
//	go test -run '^$' -bench SealOpen ./crypt/
func BenchmarkSealOpen(b *testing.B) {
	k, err := crypt.NewKey(make([]byte, crypt.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	ring, err := crypt.NewKeyring(k)
	if err != nil {
		b.Fatal(err)
	}
	plain := make([]byte, 8<<20)
	sealed := make([]byte, 0, crypt.SealedSize(int64(len(plain))))
	b.Run("seal", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for range b.N {
			r, err := k.SealAt("segments/x", bytes.NewReader(plain), int64(len(plain)))
			if err != nil {
				b.Fatal(err)
			}
			buf := bytes.NewBuffer(sealed[:0])
			if _, err := io.Copy(buf, r); err != nil {
				b.Fatal(err)
			}
			sealed = buf.Bytes()
		}
	})
	b.Run("open", func(b *testing.B) {
		b.SetBytes(int64(len(plain)))
		for range b.N {
			r, err := ring.Open("segments/x", bytes.NewReader(sealed))
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != int64(len(plain)) {
				b.Fatalf("opened %d bytes: %v", n, err)
			}
		}
	})
}
