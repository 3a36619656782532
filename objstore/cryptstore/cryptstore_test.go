package cryptstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/cryptstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/objstore/s3store"
	"github.com/rockstream/rockstream/objstore/storetest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

const B = crypt.BlockSize

func key(t testing.TB, seed byte) *crypt.Key {
	t.Helper()
	m := make([]byte, crypt.KeySize)
	for i := range m {
		m[i] = seed + byte(i)
	}
	k, err := crypt.NewKey(m)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t testing.TB, keys ...*crypt.Key) *crypt.Keyring {
	t.Helper()
	r, err := crypt.NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func newFileStore(t *testing.T) objstore.Store {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newMinIOStore(t *testing.T) objstore.Store {
	srv := miniotest.Shared(t)
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := s3store.New(c, s3store.Options{
		Bucket: srv.NewBucket(t), Endpoint: srv.Endpoint, Credentials: srv.Credentials(),
		PartSize: 5 << 20, Concurrency: 4,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// inners are the stores that the tests wrap.
var inners = []struct {
	name string
	new  func(*testing.T) objstore.Store
}{
	{"file", newFileStore},
	{"minio", newMinIOStore},
}

func eachInner(t *testing.T, fn func(t *testing.T, inner objstore.Store)) {
	for _, in := range inners {
		t.Run(in.name, func(t *testing.T) { fn(t, in.new(t)) })
	}
}

func TestConformanceFile(t *testing.T) {
	r := ring(t, key(t, 1))
	storetest.Run(t, storetest.Config{
		New:       func(t *testing.T) objstore.Store { return newStore(t, newFileStore(t), r) },
		LargeSize: 24 << 20,
	})
}

// TestConformanceFileRotated runs the suite on a store whose ring has an
// older key too.
func TestConformanceFileRotated(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := ring(t, key(t, 2), key(t, 1))
	storetest.Run(t, storetest.Config{
		New:       func(t *testing.T) objstore.Store { return newStore(t, newFileStore(t), r) },
		LargeSize: 3 << 20,
	})
}

func TestConformanceMinIO(t *testing.T) {
	r := ring(t, key(t, 1))
	storetest.Run(t, storetest.Config{
		New:       func(t *testing.T) objstore.Store { return newStore(t, newMinIOStore(t), r) },
		LargeSize: 24 << 20, // five parts of 5 MiB
	})
}

func put(t *testing.T, s objstore.Store, k string, data []byte) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(ctx(t), k, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
	if err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
	return info
}

// get reads k whole: what the reader gave, and the first error.
func get(t *testing.T, s objstore.Store, k string, opts objstore.GetOptions) ([]byte, objstore.ObjectInfo, error) {
	t.Helper()
	rc, info, err := s.Get(ctx(t), k, opts)
	if err != nil {
		return nil, info, err
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return data, info, err
}

func mustGet(t *testing.T, s objstore.Store, k string) []byte {
	t.Helper()
	data, _, err := get(t, s, k, objstore.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	return data
}

func listAll(t *testing.T, s objstore.Store, prefix string) map[string]objstore.ObjectInfo {
	t.Helper()
	out := map[string]objstore.ObjectInfo{}
	for info, err := range s.List(ctx(t), prefix, "") {
		if err != nil {
			t.Fatalf("list %q: %v", prefix, err)
		}
		out[info.Key] = info
	}
	return out
}

func sstKey(data []byte) (string, string) {
	sum := sha256.Sum256(data)
	h := hex.EncodeToString(sum[:])
	return "sst/" + h + ".sst", h
}

// The package's constants are the manifest package's.
func TestLayoutConstants(t *testing.T) {
	if !cryptstore.Plaintext(manifest.ManifestKey) {
		t.Errorf("%s is not kept plaintext", manifest.ManifestKey)
	}
	if p := manifest.NewProbeKey(); !cryptstore.Plaintext(p) {
		t.Errorf("probe key %s is not kept plaintext", p)
	}
	for _, k := range []string{"segments/00000001/0000000000000001.seg", "bases/00000001/0000000000000010/files.json",
		"prune/x.json", "manifest.json.bak", "probe", "probes/x", "x/manifest.json", "sst/x.sst"} {
		if cryptstore.Plaintext(k) {
			t.Errorf("%s would be kept plaintext", k)
		}
	}
	data := []byte("an sst file")
	k, sum := sstKey(data)
	if mk, err := manifest.SSTKey(sum); err != nil || mk != k {
		t.Fatalf("manifest.SSTKey(%s) = %s, %v, want %s", sum, mk, err, k)
	}
	inner := newFileStore(t)
	kk := key(t, 1)
	s := newStore(t, inner, ring(t, kk))
	put(t, s, k, data)
	if _, err := inner.Head(ctx(t), "sst/"+bound(t, kk).Name(sum)+".sst"); err != nil {
		t.Fatalf("the SST file of manifest.SSTKey is not under its keyed name: %v", err)
	}
}

// Encryption is real: the inner store holds no plaintext but the
// manifest's and the probe's.
func TestEncrypted(t *testing.T) {
	eachInner(t, testEncrypted)
}

func testEncrypted(t *testing.T, inner objstore.Store) {
	const marker = "PLAINTEXT-MARKER-of-rockstream-"
	plain := []byte(strings.Repeat(marker, 200))
	sst, sum := sstKey(plain)
	k := key(t, 1)
	s := newStore(t, inner, ring(t, k))
	if s.Inner() != inner || s.Keyring().Current() != k {
		t.Fatal("Inner or Keyring")
	}
	if ids := s.KeyIDs(); len(ids) != 1 || ids[0] != k.ID().String() {
		t.Fatalf("KeyIDs %v", ids)
	}
	if str := s.String(); !strings.Contains(str, inner.String()) || !strings.Contains(str, "encrypted") {
		t.Errorf("String: %q", str)
	}
	keyed := "sst/" + bound(t, k).Name(sum) + ".sst"
	encrypted := []string{
		"bases/00000001/0000000000000010/files.json",
		"bases/00000001/0000000000000010/CURRENT",
		"segments/00000001/0000000000000001.seg",
		"prune/x.json",
		sst,
	}
	plainNames := []string{"manifest.json", "probe/x"}
	for _, name := range append(append([]string(nil), encrypted...), plainNames...) {
		info := put(t, s, name, plain)
		if info.Key != name || info.Size != int64(len(plain)) {
			t.Errorf("put %s: info %+v", name, info)
		}
	}
	stored := listAll(t, inner, "")
	want := map[string]bool{keyed: true, "manifest.json": true, "probe/x": true}
	for _, name := range encrypted[:4] {
		want[name] = true
	}
	for name := range want {
		if _, ok := stored[name]; !ok {
			t.Errorf("the inner store lacks %s", name)
		}
	}
	for name, info := range stored {
		if !want[name] {
			t.Errorf("the inner store holds %s", name)
		}
		data := mustGet(t, inner, name)
		switch name {
		case "manifest.json", "probe/x":
			if !bytes.Equal(data, plain) || info.Size != int64(len(plain)) {
				t.Errorf("%s is not stored as it was given", name)
			}
			continue
		}
		if bytes.Contains(data, []byte(marker[:16])) || bytes.Contains(data, []byte(sum)) {
			t.Errorf("%s holds plaintext", name)
		}
		if !crypt.IsEncrypted(data) || int64(len(data)) != crypt.SealedSize(int64(len(plain))) || info.Size != int64(len(data)) {
			t.Errorf("%s: %d bytes, not an encrypted object of %d", name, len(data), len(plain))
		}
		h, err := crypt.ParseHeader(name, data)
		if err != nil || h.ID != k.ID() {
			t.Errorf("%s: header %+v %v", name, h, err)
		}
	}
	// Through the store: plaintext, under the names given.
	got := listAll(t, s, "")
	for _, name := range append(append([]string(nil), encrypted[:4]...), plainNames...) {
		if got[name].Size != int64(len(plain)) {
			t.Errorf("list: %s has size %d", name, got[name].Size)
		}
		if data := mustGet(t, s, name); !bytes.Equal(data, plain) {
			t.Errorf("get %s: differs", name)
		}
	}
	if got[keyed].Size != int64(len(plain)) {
		t.Errorf("list: the SST file is not listed under its keyed name with its size: %+v", got)
	}
	// The SST file by its SHA-256 name.
	if h, err := s.Head(ctx(t), sst); err != nil || h.Size != int64(len(plain)) || h.Key != sst {
		t.Errorf("head %s: %+v %v", sst, h, err)
	}
	if data := mustGet(t, s, sst); !bytes.Equal(data, plain) {
		t.Error("get of the SST file by its SHA-256 name: differs")
	}
	if _, err := s.Put(ctx(t), sst, bytes.NewReader(plain), -1, objstore.PutOptions{IfNoneMatch: true}); !objstore.IsPreconditionFailed(err) {
		t.Errorf("create-only put of an existing SST file: %v", err)
	}
	if err := s.Delete(ctx(t), sst); err != nil {
		t.Fatal(err)
	}
	if _, err := inner.Head(ctx(t), keyed); !objstore.IsNotFound(err) {
		t.Errorf("delete by the SHA-256 name left the keyed object: %v", err)
	}
	if _, err := s.Head(ctx(t), sst); !objstore.IsNotFound(err) || !strings.Contains(err.Error(), sst) {
		t.Errorf("head after delete: %v, want not found naming %s", err, sst)
	}
	if _, _, err := s.Get(ctx(t), sst, objstore.GetOptions{}); !objstore.IsNotFound(err) || !strings.Contains(err.Error(), sst) {
		t.Errorf("get after delete: %v, want not found naming %s", err, sst)
	}
	// Keys that look like SST keys but are not content addresses are
	// stored under their own names.
	for _, name := range []string{"sst/" + strings.ToUpper(sum) + ".sst", "sst/" + sum[:63] + ".sst", "sst/" + sum + ".sstx", "sst/a/" + sum + ".sst"} {
		put(t, s, name, plain)
		if _, err := inner.Head(ctx(t), name); err != nil {
			t.Errorf("%s is not stored under its own name: %v", name, err)
		}
	}
}

// Keys rotated: an SST file written under an older key is found by its
// SHA-256 name, and removed.
func TestRotatedSST(t *testing.T) {
	eachInner(t, testRotatedSST)
}

func testRotatedSST(t *testing.T, inner objstore.Store) {
	kOld, kNew := key(t, 1), key(t, 2)
	old := newStore(t, inner, ring(t, kOld))
	cur := newStore(t, inner, ring(t, kNew, kOld))
	data := bytes.Repeat([]byte("sst content "), 1000)
	sst, sum := sstKey(data)
	oldName, newName := "sst/"+bound(t, kOld).Name(sum)+".sst", "sst/"+bound(t, kNew).Name(sum)+".sst"
	pinfo := put(t, old, sst, data)
	if _, err := inner.Head(ctx(t), oldName); err != nil {
		t.Fatal(err)
	}
	h, err := cur.Head(ctx(t), sst)
	if err != nil || h.Size != int64(len(data)) || h.ETag != pinfo.ETag || h.Key != sst {
		t.Fatalf("head by the SHA-256 name of a file of the older key: %+v %v", h, err)
	}
	got, info, err := get(t, cur, sst, objstore.GetOptions{})
	if err != nil || !bytes.Equal(got, data) || info.Size != int64(len(data)) || info.Key != sst {
		t.Fatalf("get of a file of the older key: %v %+v", err, info)
	}
	got, _, err = get(t, cur, sst, objstore.GetOptions{Offset: 5, Length: 7})
	if err != nil || !bytes.Equal(got, data[5:12]) {
		t.Fatalf("ranged get of a file of the older key: %q %v", got, err)
	}
	// A create-only put finds it; a plain put writes a copy under the
	// current key.
	if _, err := cur.Put(ctx(t), sst, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfNoneMatch: true}); !objstore.IsPreconditionFailed(err) {
		t.Errorf("create-only put of an SST file that the older key holds: %v", err)
	}
	put(t, cur, sst, data)
	if _, err := inner.Head(ctx(t), newName); err != nil {
		t.Fatalf("a put did not write under the current key's name: %v", err)
	}
	if got := mustGet(t, cur, sst); !bytes.Equal(got, data) {
		t.Fatal("get after a second put")
	}
	if err := cur.Delete(ctx(t), sst); err != nil {
		t.Fatal(err)
	}
	if left := listAll(t, inner, "sst/"); len(left) != 0 {
		t.Fatalf("delete by the SHA-256 name left %v", left)
	}
	if _, err := cur.Head(ctx(t), sst); !objstore.IsNotFound(err) {
		t.Fatalf("head after delete: %v", err)
	}
	// Other objects of the old key stay readable; the old ring cannot
	// read the new key's.
	put(t, old, "segments/00000001/0000000000000001.seg", []byte("old"))
	if got := mustGet(t, cur, "segments/00000001/0000000000000001.seg"); string(got) != "old" {
		t.Fatalf("an object of the older key: %q", got)
	}
	put(t, cur, "segments/00000001/0000000000000002.seg", []byte("new"))
	_, _, err = get(t, old, "segments/00000001/0000000000000002.seg", objstore.GetOptions{})
	var mk *crypt.MissingKeyError
	if !errors.As(err, &mk) || mk.ID != kNew.ID() || !strings.Contains(err.Error(), "segments/00000001/0000000000000002.seg") {
		t.Fatalf("an object of a key the ring lacks: %v", err)
	}
	_, _, err = get(t, old, "segments/00000001/0000000000000002.seg", objstore.GetOptions{Offset: 1, Length: 1})
	if !errors.As(err, &mk) {
		t.Fatalf("a range of an object of a key the ring lacks: %v", err)
	}
	// An SST file of the new key is not found by the old ring.
	put(t, cur, sst, data)
	if _, err := old.Head(ctx(t), sst); !objstore.IsNotFound(err) {
		t.Fatalf("head by a ring without the key: %v", err)
	}
}

// Sizes are the plaintext's; ranges give what a plaintext store gives.
func TestSizesAndRanges(t *testing.T) {
	eachInner(t, testSizesAndRanges)
}

func testSizesAndRanges(t *testing.T, inner objstore.Store) {
	s := newStore(t, inner, ring(t, key(t, 1)))
	ref := newFileStore(t) // the same objects in plaintext
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int64{0, 1, 100, B, B + 1, 5 * B / 2} {
		name := fmt.Sprintf("segments/00000001/%016x.seg", n)
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		for _, size := range []int64{n, -1} {
			info, err := s.Put(ctx(t), name, bytes.NewReader(data), size, objstore.PutOptions{})
			if err != nil || info.Size != n || info.Key != name || info.ETag == "" {
				t.Fatalf("put of %d bytes (size %d): %+v %v", n, size, info, err)
			}
		}
		put(t, ref, name, data)
		h, err := s.Head(ctx(t), name)
		if err != nil || h.Size != n {
			t.Fatalf("head of %d bytes: %+v %v", n, h, err)
		}
		if l := listAll(t, s, "segments/")[name]; l.Size != n || l.ETag != h.ETag {
			t.Fatalf("list of %d bytes: %+v, head %+v", n, l, h)
		}
		offs := []int64{0, 1, 5, B - 5, B - 1, B, B + 1, B + 7, 2*B + 3, n - 1, n, n + 1, n + B}
		lens := []int64{0, -1, 1, 10, 100, B, B + 1, 3 * B, math.MaxInt64}
		type r struct{ off, length int64 }
		var ranges []r
		for _, off := range offs {
			if off < 0 {
				continue
			}
			for _, l := range lens {
				ranges = append(ranges, r{off, l})
			}
		}
		for range 20 {
			off := rng.Int64N(n + 1)
			ranges = append(ranges, r{off, rng.Int64N(n+1) - 1})
		}
		for _, c := range ranges {
			opts := objstore.GetOptions{Offset: c.off, Length: c.length}
			want, _, wantErr := get(t, ref, name, opts)
			got, info, err := get(t, s, name, opts)
			switch {
			case wantErr != nil:
				if !errors.Is(wantErr, objstore.ErrInvalidRange) {
					t.Fatalf("the plaintext store: %v", wantErr)
				}
				if !errors.Is(err, objstore.ErrInvalidRange) || !strings.Contains(err.Error(), name) {
					t.Errorf("%d bytes, range %d+%d: %v, want ErrInvalidRange naming the object", n, c.off, c.length, err)
				}
			case err != nil:
				t.Errorf("%d bytes, range %d+%d: %v", n, c.off, c.length, err)
			case !bytes.Equal(got, want):
				t.Errorf("%d bytes, range %d+%d: %d bytes, want %d", n, c.off, c.length, len(got), len(want))
			case info.Size != n || info.ETag != h.ETag || info.Key != name:
				t.Errorf("%d bytes, range %d+%d: info %+v, head %+v", n, c.off, c.length, info, h)
			}
		}
		if _, _, err := s.Get(ctx(t), name, objstore.GetOptions{Offset: -1}); !errors.Is(err, objstore.ErrInvalidRange) {
			t.Errorf("negative offset: %v", err)
		}
		// A conditional get, whole and ranged.
		for _, opts := range []objstore.GetOptions{{IfNoneMatch: h.ETag}, {IfNoneMatch: h.ETag, Offset: max(0, n-1)}, {IfNoneMatch: h.ETag, Length: 1}} {
			if _, _, err := s.Get(ctx(t), name, opts); !errors.Is(err, objstore.ErrNotModified) {
				t.Errorf("%d bytes, conditional get %+v: %v", n, opts, err)
			}
		}
	}
}

// put writes raw bytes into the inner store.
func putRaw(t *testing.T, inner objstore.Store, name string, data []byte) {
	t.Helper()
	put(t, inner, name, data)
}

func wantFail(t *testing.T, what string, s objstore.Store, name string, opts objstore.GetOptions, want error) {
	t.Helper()
	got, _, err := get(t, s, name, opts)
	if !errors.Is(err, want) {
		t.Errorf("%s: %v (after %d bytes), want %v", what, err, len(got), want)
		return
	}
	if !strings.Contains(err.Error(), name) {
		t.Errorf("%s: %q does not name %s", what, err, name)
	}
	if opts.Offset == 0 && len(got)%B != 0 {
		t.Errorf("%s: gave %d bytes, not whole blocks", what, len(got))
	}
}

// Tampering with the inner store fails reads.
func TestTamper(t *testing.T) {
	eachInner(t, testTamper)
}

func testTamper(t *testing.T, inner objstore.Store) {
	s := newStore(t, inner, ring(t, key(t, 1)))
	const a, b = "segments/00000001/0000000000000001.seg", "segments/00000001/0000000000000002.seg"
	data := make([]byte, 5*B/2)
	for i := range data {
		data[i] = byte(i * 7)
	}
	put(t, s, a, data)
	put(t, s, b, data)
	sealed := mustGet(t, inner, a)
	whole := objstore.GetOptions{}
	ranges := []objstore.GetOptions{whole, {Offset: B + 10, Length: 10}, {Offset: 2*B + 10}, {Length: 10}}
	for _, c := range []struct {
		what  string
		at    int
		fails []bool // for each of ranges
	}{
		{"salt", 20, []bool{true, true, true, true}},
		{"block 0", crypt.HeaderSize + 3, []bool{true, false, false, true}},
		{"block 1", crypt.HeaderSize + B + crypt.TagSize + 30, []bool{true, true, false, false}},
		{"the last tag", len(sealed) - 1, []bool{true, false, true, false}},
	} {
		bad := append([]byte(nil), sealed...)
		bad[c.at] ^= 1
		putRaw(t, inner, a, bad)
		for i, opts := range ranges {
			what := fmt.Sprintf("byte %d (%s) flipped, range %d+%d", c.at, c.what, opts.Offset, opts.Length)
			if c.fails[i] {
				wantFail(t, what, s, a, opts, crypt.ErrTampered)
			} else if _, _, err := get(t, s, a, opts); err != nil {
				t.Errorf("%s: %v", what, err)
			}
		}
	}
	// Cut objects: at a block boundary, in a block, in the header.
	for _, n := range []int{crypt.HeaderSize + B + crypt.TagSize, crypt.HeaderSize + 2*(B+crypt.TagSize), len(sealed) - 1, crypt.HeaderSize + 100, crypt.HeaderSize} {
		putRaw(t, inner, a, sealed[:n])
		wantFail(t, fmt.Sprintf("cut to %d bytes", n), s, a, whole, crypt.ErrTampered)
		if p, err := crypt.PlainSize(int64(n)); err == nil && p > 0 {
			wantFail(t, fmt.Sprintf("cut to %d bytes, its last byte", n), s, a, objstore.GetOptions{Offset: p - 1}, crypt.ErrTampered)
		}
	}
	for _, n := range []int{10, crypt.HeaderSize - 1} {
		putRaw(t, inner, a, sealed[:n])
		wantFail(t, fmt.Sprintf("header cut to %d bytes", n), s, a, whole, crypt.ErrTampered)
		wantFail(t, fmt.Sprintf("header cut to %d bytes, ranged", n), s, a, objstore.GetOptions{Length: 1}, crypt.ErrTampered)
	}
	// A's bytes copied onto b.
	putRaw(t, inner, b, sealed)
	for _, opts := range ranges {
		wantFail(t, fmt.Sprintf("a's bytes under b, range %d+%d", opts.Offset, opts.Length), s, b, opts, crypt.ErrTampered)
	}
	// An SST file's bytes under another SST file's keyed name.
	k := s.Keyring().Current()
	x, y := []byte("sst x"), []byte("sst y")
	xk, xs := sstKey(x)
	yk, ys := sstKey(y)
	put(t, s, xk, x)
	put(t, s, yk, y)
	putRaw(t, inner, "sst/"+bound(t, k).Name(ys)+".sst", mustGet(t, inner, "sst/"+bound(t, k).Name(xs)+".sst"))
	wantFail(t, "an SST file's bytes under another's name", s, yk, whole, crypt.ErrTampered)
	// Plaintext where an encrypted object should be.
	for _, p := range [][]byte{nil, []byte("short plaintext"), bytes.Repeat([]byte("a plaintext segment "), 100), make([]byte, crypt.SealedSize(10))} {
		const c = "segments/00000001/0000000000000003.seg"
		putRaw(t, inner, c, p)
		for _, opts := range []objstore.GetOptions{whole, {Length: 5}, {Offset: 1}} {
			wantFail(t, fmt.Sprintf("a plaintext object of %d bytes, range %d+%d", len(p), opts.Offset, opts.Length), s, c, opts, crypt.ErrNotEncrypted)
		}
	}
	// Another format.
	bad := append([]byte(nil), sealed...)
	bad[5] = 2
	putRaw(t, inner, a, bad)
	for _, opts := range []objstore.GetOptions{whole, {Offset: B + 1}} {
		wantFail(t, "version 2", s, a, opts, crypt.ErrUnknownFormat)
	}
}

// replacing is a store that replaces an object between the get of a
// range's header and the get of its blocks, once.
type replacing struct {
	objstore.Store
	key  string
	with []byte
	done atomic.Bool
}

func (r *replacing) Get(c context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if key == r.key && opts.Offset > 0 && r.done.CompareAndSwap(false, true) {
		if _, err := r.Store.Put(c, key, bytes.NewReader(r.with), int64(len(r.with)), objstore.PutOptions{}); err != nil {
			return nil, objstore.ObjectInfo{}, err
		}
	}
	return r.Store.Get(c, key, opts)
}

// A range of an object replaced while it is read is of one version,
// never a mix (that would fail as tampered).
func TestRangeOfReplacedObject(t *testing.T) {
	inner := newFileStore(t)
	r := ring(t, key(t, 1))
	s := newStore(t, inner, r)
	const name = "bases/00000001/0000000000000010/000001.log"
	v1, v2 := bytes.Repeat([]byte{1}, 3*B), bytes.Repeat([]byte{2}, 3*B)
	put(t, s, name, v2)
	sealed2 := mustGet(t, inner, name)
	put(t, s, name, v1)
	for _, with := range [][]byte{sealed2, sealed2[:crypt.HeaderSize+100]} {
		put(t, s, name, v1)
		rs := &replacing{Store: inner, key: name, with: with}
		got, info, err := get(t, newStore(t, rs, r), name, objstore.GetOptions{Offset: 2*B + 5, Length: 10})
		if len(with) == len(sealed2) {
			if err != nil || !bytes.Equal(got, v2[:10]) {
				t.Fatalf("range of a replaced object: %v %v", got, err)
			}
			if h, _ := inner.Head(ctx(t), name); info.ETag != h.ETag {
				t.Fatalf("range of a replaced object: etag %s, the object's %s", info.ETag, h.ETag)
			}
			continue
		}
		// Replaced by a short object: the retry reads it, whose size has
		// no offset 2B+5.
		if !errors.Is(err, objstore.ErrInvalidRange) {
			t.Fatalf("range of an object replaced by a short one: %v", err)
		}
	}
}

// A read error of the inner store names the object and is not taken for
// tampering.
func TestInnerReadError(t *testing.T) {
	inner := newFileStore(t)
	s := newStore(t, &failingReads{Store: inner}, ring(t, key(t, 1)))
	const name = "segments/00000001/0000000000000001.seg"
	put(t, s, name, make([]byte, 2*B))
	_, _, err := get(t, s, name, objstore.GetOptions{})
	if err == nil || errors.Is(err, crypt.ErrTampered) || !errors.Is(err, errBroken) || !strings.Contains(err.Error(), name) {
		t.Fatalf("a broken read: %v", err)
	}
}

var errBroken = errors.New("connection reset")

type failingReads struct{ objstore.Store }

func (f *failingReads) Get(c context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	rc, info, err := f.Store.Get(c, key, opts)
	if err != nil {
		return nil, info, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, B+1000), errReader{}), rc}, info, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// testArchive is the archive id that the tests' stores are bound to, as an
// archive's manifest would bind them (encryption.archive_id).
const testArchive = "00112233445566778899aabbccddeeff"

// newStore is cryptstore.New bound to testArchive: two stores over one
// inner store read each other's objects, as over one archive.
func newStore(t testing.TB, inner objstore.Store, r *crypt.Keyring) *cryptstore.Store {
	t.Helper()
	s := cryptstore.New(inner, r)
	if err := s.Bind(testArchive); err != nil {
		t.Fatal(err)
	}
	return s
}

// bound is k bound to testArchive: the key a store bound to it uses.
func bound(t testing.TB, k *crypt.Key) *crypt.Key {
	t.Helper()
	b, err := k.Bind(testArchive)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestArchiveBinding: one key file used for two archives seals and names
// their objects differently (crypt.Key.Bind): a segment copied from one
// archive into the other fails its authentication, and the same SST file
// has unrelated names in the two. A store binds itself to the archive id
// of the manifest it finds, and refuses a manifest without one.
func TestArchiveBinding(t *testing.T) {
	r := ring(t, key(t, 1))
	innerX, innerY := newFileStore(t), newFileStore(t)
	x, y := cryptstore.New(innerX, r), cryptstore.New(innerY, r)
	for _, c := range []struct {
		s  *cryptstore.Store
		id string
	}{{x, "0000000000000000000000000000000a"}, {y, "0000000000000000000000000000000b"}} {
		if err := c.s.Bind(c.id); err != nil {
			t.Fatal(err)
		}
	}
	const seg = "segments/00000001/0000000000000001.seg"
	data := []byte("the batches of one archive")
	put(t, x, seg, data)
	putRaw(t, innerY, seg, mustGet(t, innerX, seg))
	if _, _, err := get(t, y, seg, objstore.GetOptions{}); !errors.Is(err, crypt.ErrTampered) {
		t.Fatalf("a segment copied from another archive with the same key: %v, want crypt.ErrTampered", err)
	}
	sst, _ := sstKey([]byte("one SST file"))
	put(t, x, sst, []byte("one SST file"))
	put(t, y, sst, []byte("one SST file"))
	nx, ny := listAll(t, innerX, "sst/"), listAll(t, innerY, "sst/")
	if len(nx) != 1 || len(ny) != 1 {
		t.Fatalf("SST objects: %v and %v, want one each", nx, ny)
	}
	for k := range nx {
		if _, same := ny[k]; same {
			t.Fatalf("the same SST file has the same name %s in two archives", k)
		}
	}

	// A store that was not bound reads the archive id from the manifest.
	manifest := []byte(`{"format": 3, "encryption": {"archive_id": "0000000000000000000000000000000a", "key_ids": ["x"]}}`)
	putRaw(t, innerX, "manifest.json", manifest)
	fresh := cryptstore.New(innerX, r)
	if got := mustGet(t, fresh, seg); string(got) != string(data) {
		t.Fatalf("a store bound by the manifest reads %q", got)
	}
	if id, err := fresh.ArchiveID(ctx(t)); err != nil || id != "0000000000000000000000000000000a" {
		t.Fatalf("ArchiveID = %q, %v", id, err)
	}
	putRaw(t, innerY, "manifest.json", []byte(`{"format": 1}`))
	if _, _, err := get(t, cryptstore.New(innerY, r), seg, objstore.GetOptions{}); !errors.Is(err, cryptstore.ErrNoArchiveID) {
		t.Fatalf("a plaintext archive's manifest: %v, want ErrNoArchiveID", err)
	}
	// Without a manifest (a new archive), a store draws an id of its own.
	a, err := cryptstore.New(newFileStore(t), r).ArchiveID(ctx(t))
	b, err2 := cryptstore.New(newFileStore(t), r).ArchiveID(ctx(t))
	if err != nil || err2 != nil || len(a) != 32 || a == b {
		t.Fatalf("new archives' ids %q and %q (%v, %v): want two different 32-digit ids", a, b, err, err2)
	}
}
