// Package storetest is the conformance suite of objstore.Store: the one set
// of tests that every implementation runs (the file store on a temporary
// folder, the S3 store against a real MinIO), so that code above the
// interface can rely on the same behaviour from both.
package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/objstore"
)

// Config describes the store under test.
type Config struct {
	// New returns a new, empty store for one test.
	New func(t *testing.T) objstore.Store
	// LargeSize is the size of the large-object test: above the store's
	// multipart threshold, if it has one.
	LargeSize int64
	// Racers is the number of goroutines of the race tests (default 16).
	Racers int
}

// Run runs the suite.
func Run(t *testing.T, cfg Config) {
	if cfg.LargeSize == 0 {
		cfg.LargeSize = 24 << 20
	}
	if cfg.Racers == 0 {
		cfg.Racers = 16
	}
	tests := []struct {
		name string
		fn   func(*testing.T, Config)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"Overwrite", testOverwrite},
		{"IfNoneMatch", testIfNoneMatch},
		{"IfMatch", testIfMatch},
		{"RangedGet", testRangedGet},
		{"ConditionalGet", testConditionalGet},
		{"ListOrder", testListOrder},
		{"ListPaging", testListPaging},
		{"ListStop", testListStop},
		{"Delete", testDelete},
		{"OddKeys", testOddKeys},
		{"InvalidKeys", testInvalidKeys},
		{"FailedBodyLeavesNothing", testFailedBody},
		{"RaceCreate", testRaceCreate},
		{"RaceIfMatch", testRaceIfMatch},
		{"Large", testLarge},
		{"Download", testDownload},
		{"Check", testCheck},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, cfg) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// Put writes data to key and fails the test on error.
func put(t *testing.T, s objstore.Store, key string, data []byte, opts objstore.PutOptions) objstore.ObjectInfo {
	t.Helper()
	info, err := s.Put(ctx(t), key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	if info.Key != key || info.Size != int64(len(data)) || info.ETag == "" {
		t.Fatalf("put %s: info %+v, want key, size %d and an etag", key, info, len(data))
	}
	return info
}

// get reads key whole and fails the test on error.
func get(t *testing.T, s objstore.Store, key string, opts objstore.GetOptions) ([]byte, objstore.ObjectInfo) {
	t.Helper()
	rc, info, err := s.Get(ctx(t), key, opts)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return data, info
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
	if err != nil && err.Error() == want.Error() {
		t.Errorf("%s: error %q does not say which store or key", what, err)
	}
}

func testRoundTrip(t *testing.T, cfg Config) {
	s := cfg.New(t)
	for _, n := range []int{0, 1, 4096, 1 << 20} {
		key := fmt.Sprintf("rt/obj-%d", n)
		data := randomBytes(t, n)
		info := put(t, s, key, data, objstore.PutOptions{})
		got, ginfo := get(t, s, key, objstore.GetOptions{})
		if !bytes.Equal(got, data) {
			t.Fatalf("get %s: %d bytes differ from the %d put", key, len(got), n)
		}
		h, err := s.Head(ctx(t), key)
		if err != nil {
			t.Fatalf("head %s: %v", key, err)
		}
		if h.Size != int64(n) || h.ETag != info.ETag || ginfo.ETag != info.ETag || ginfo.Size != int64(n) {
			t.Fatalf("%s: put %+v, head %+v, get %+v: sizes or etags differ", key, info, h, ginfo)
		}
	}
	// A body of unknown size.
	data := randomBytes(t, 100_000)
	info, err := s.Put(ctx(t), "rt/unknown-size", io.MultiReader(bytes.NewReader(data)), -1, objstore.PutOptions{})
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("put of unknown size: %+v, %v", info, err)
	}
	if got, _ := get(t, s, "rt/unknown-size", objstore.GetOptions{}); !bytes.Equal(got, data) {
		t.Fatal("put of unknown size: bytes differ")
	}
}

func testNotFound(t *testing.T, cfg Config) {
	s := cfg.New(t)
	_, _, err := s.Get(ctx(t), "missing/key", objstore.GetOptions{})
	wantErr(t, "get of a missing key", err, objstore.ErrNotFound)
	_, err = s.Head(ctx(t), "missing/key")
	wantErr(t, "head of a missing key", err, objstore.ErrNotFound)
	if err := s.Delete(ctx(t), "missing/key"); err != nil {
		t.Fatalf("delete of a missing key: %v", err)
	}
	put(t, s, "dir/leaf", []byte("x"), objstore.PutOptions{})
	_, err = s.Head(ctx(t), "dir")
	wantErr(t, "head of a key that is only a prefix", err, objstore.ErrNotFound)
}

func testOverwrite(t *testing.T, cfg Config) {
	s := cfg.New(t)
	a := put(t, s, "k", []byte("first"), objstore.PutOptions{})
	b := put(t, s, "k", []byte("second version"), objstore.PutOptions{})
	if a.ETag == b.ETag {
		t.Fatalf("two versions with different bytes share the etag %s", a.ETag)
	}
	if got, _ := get(t, s, "k", objstore.GetOptions{}); string(got) != "second version" {
		t.Fatalf("after overwrite: %q", got)
	}
}

func testIfNoneMatch(t *testing.T, cfg Config) {
	s := cfg.New(t)
	create := objstore.PutOptions{IfNoneMatch: true}
	put(t, s, "once", []byte("one"), create)
	_, err := s.Put(ctx(t), "once", strings.NewReader("two"), 3, create)
	wantErr(t, "create-only put on an existing key", err, objstore.ErrPreconditionFailed)
	if got, _ := get(t, s, "once", objstore.GetOptions{}); string(got) != "one" {
		t.Fatalf("a failed create-only put changed the object to %q", got)
	}
	_, err = s.Put(ctx(t), "both", strings.NewReader("x"), 1, objstore.PutOptions{IfNoneMatch: true, IfMatch: "abc"})
	if err == nil {
		t.Fatal("a put with both conditions succeeded")
	}
}

func testIfMatch(t *testing.T, cfg Config) {
	s := cfg.New(t)
	v1 := put(t, s, "m", []byte("v1"), objstore.PutOptions{})
	v2 := put(t, s, "m", []byte("v2"), objstore.PutOptions{IfMatch: v1.ETag})
	_, err := s.Put(ctx(t), "m", strings.NewReader("v3"), 2, objstore.PutOptions{IfMatch: v1.ETag})
	wantErr(t, "if-match put with a stale etag", err, objstore.ErrPreconditionFailed)
	if got, _ := get(t, s, "m", objstore.GetOptions{}); string(got) != "v2" {
		t.Fatalf("after a failed if-match put: %q, want v2", got)
	}
	put(t, s, "m", []byte("v3"), objstore.PutOptions{IfMatch: v2.ETag})
	_, err = s.Put(ctx(t), "absent", strings.NewReader("x"), 1, objstore.PutOptions{IfMatch: v2.ETag})
	wantErr(t, "if-match put on a missing key", err, objstore.ErrPreconditionFailed)
	if _, err := s.Head(ctx(t), "absent"); !objstore.IsNotFound(err) {
		t.Fatalf("a failed if-match put created the object: %v", err)
	}
}

func testRangedGet(t *testing.T, cfg Config) {
	s := cfg.New(t)
	data := randomBytes(t, 10_000)
	put(t, s, "r", data, objstore.PutOptions{})
	cases := []struct{ off, n, wantFrom, wantTo int64 }{
		{0, 0, 0, 10_000},
		{0, 1, 0, 1},
		{100, 50, 100, 150},
		{9_990, 0, 9_990, 10_000},
		{9_990, 500, 9_990, 10_000}, // cut at the end
		{9_999, 1, 9_999, 10_000},
	}
	for _, c := range cases {
		got, info := get(t, s, "r", objstore.GetOptions{Offset: c.off, Length: c.n})
		if !bytes.Equal(got, data[c.wantFrom:c.wantTo]) {
			t.Errorf("range %d+%d: got %d bytes, want bytes %d..%d", c.off, c.n, len(got), c.wantFrom, c.wantTo)
		}
		if info.Size != 10_000 {
			t.Errorf("range %d+%d: info size %d, want the whole object's 10000", c.off, c.n, info.Size)
		}
	}
	_, _, err := s.Get(ctx(t), "r", objstore.GetOptions{Offset: 10_000})
	wantErr(t, "range past the end", err, objstore.ErrInvalidRange)
}

func testConditionalGet(t *testing.T, cfg Config) {
	s := cfg.New(t)
	v1 := put(t, s, "c", []byte("v1"), objstore.PutOptions{})
	_, _, err := s.Get(ctx(t), "c", objstore.GetOptions{IfNoneMatch: v1.ETag})
	wantErr(t, "conditional get of an unchanged object", err, objstore.ErrNotModified)
	v2 := put(t, s, "c", []byte("v2!"), objstore.PutOptions{})
	got, info := get(t, s, "c", objstore.GetOptions{IfNoneMatch: v1.ETag})
	if string(got) != "v2!" || info.ETag != v2.ETag {
		t.Fatalf("conditional get of a changed object: %q %+v", got, info)
	}
}

// List collects a listing.
func list(t *testing.T, s objstore.Store, prefix, after string) []string {
	t.Helper()
	var keys []string
	for info, err := range s.List(ctx(t), prefix, after) {
		if err != nil {
			t.Fatalf("list %q after %q: %v", prefix, after, err)
		}
		keys = append(keys, info.Key)
	}
	return keys
}

func testListOrder(t *testing.T, cfg Config) {
	s := cfg.New(t)
	keys := []string{"a/b/d", "a-b", "a/c", "a0", "a/b.x", "b", "a/b/e/f", "ab"}
	sizes := map[string]int{}
	for i, k := range keys {
		put(t, s, k, make([]byte, i), objstore.PutOptions{})
		sizes[k] = i
	}
	all := []string{"a-b", "a/b.x", "a/b/d", "a/b/e/f", "a/c", "a0", "ab", "b"}
	cases := []struct {
		prefix, after string
		want          []string
	}{
		{"", "", all},
		{"a/", "", all[1:5]},
		{"a/b", "", all[1:4]},
		{"a/b/", "", all[2:4]},
		{"", "a/b/d", all[3:]},
		{"", "a/b/", all[2:]},
		{"a/", "a/b/e/f", all[4:5]},
		{"", "b", nil},
		{"zzz", "", nil},
		{"", "a", all},
	}
	for _, c := range cases {
		if got := list(t, s, c.prefix, c.after); !equal(got, c.want) {
			t.Errorf("list %q after %q: got %q, want %q", c.prefix, c.after, got, c.want)
		}
	}
	for info, err := range s.List(ctx(t), "", "") {
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != int64(sizes[info.Key]) {
			t.Errorf("list: %s has size %d, want %d", info.Key, info.Size, sizes[info.Key])
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// testListPaging lists more keys than S3 returns in one page.
func testListPaging(t *testing.T, cfg Config) {
	s := cfg.New(t)
	const n = 1100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 16)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			key := fmt.Sprintf("page/%016x.seg", uint64(i)*7919)
			if _, err := s.Put(ctx(t), key, strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got := list(t, s, "page/", "")
	if len(got) != n {
		t.Fatalf("listed %d keys, want %d", len(got), n)
	}
	for i := 1; i < n; i++ {
		if got[i-1] >= got[i] {
			t.Fatalf("keys out of order: %s then %s", got[i-1], got[i])
		}
	}
	if rest := list(t, s, "page/", got[999]); !equal(rest, got[1000:]) {
		t.Fatalf("list after the 1000th key: %d keys, want %d", len(rest), n-1000)
	}
}

func testListStop(t *testing.T, cfg Config) {
	s := cfg.New(t)
	for i := range 5 {
		put(t, s, fmt.Sprintf("s/%d", i), []byte("x"), objstore.PutOptions{})
	}
	n := 0
	for _, err := range s.List(ctx(t), "s/", "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 2 {
			break
		}
	}
	if n != 2 {
		t.Fatalf("stopped after %d", n)
	}
}

func testDelete(t *testing.T, cfg Config) {
	s := cfg.New(t)
	put(t, s, "d/one", []byte("1"), objstore.PutOptions{})
	put(t, s, "d/two", []byte("2"), objstore.PutOptions{})
	if err := s.Delete(ctx(t), "d/one"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Head(ctx(t), "d/one")
	wantErr(t, "head after delete", err, objstore.ErrNotFound)
	if got := list(t, s, "", ""); !equal(got, []string{"d/two"}) {
		t.Fatalf("list after delete: %q", got)
	}
	if err := s.Delete(ctx(t), "d/two"); err != nil {
		t.Fatal(err)
	}
	put(t, s, "d/three", []byte("3"), objstore.PutOptions{IfNoneMatch: true})
}

func testOddKeys(t *testing.T, cfg Config) {
	s := cfg.New(t)
	keys := []string{
		"with space/and more spaces.bin",
		"ünïcødé/日本語/🚀.seg",
		"plus+and&amp=eq?q#hash%20.x",
		"quote'\"<>|*:.y",
		strings.Repeat(strings.Repeat("long-", 30)+"/", 6) + "end",
	}
	for _, k := range keys {
		put(t, s, k, []byte(k), objstore.PutOptions{IfNoneMatch: true})
	}
	for _, k := range keys {
		if got, _ := get(t, s, k, objstore.GetOptions{}); string(got) != k {
			t.Errorf("get %q: %q", k, got)
		}
	}
	got := list(t, s, "", "")
	if len(got) != len(keys) {
		t.Fatalf("listed %q, want %d keys", got, len(keys))
	}
	for _, k := range keys {
		found := false
		for _, g := range got {
			found = found || g == k
		}
		if !found {
			t.Errorf("list lost %q", k)
		}
	}
}

func testInvalidKeys(t *testing.T, cfg Config) {
	s := cfg.New(t)
	for _, k := range []string{"", "../escape", "a/../../b", "/absolute", "a//b", "a/./b", "trailing/", "nul\x00byte", `back\slash`, strings.Repeat("k", 1025)} {
		_, err := s.Put(ctx(t), k, strings.NewReader("x"), 1, objstore.PutOptions{})
		wantErr(t, fmt.Sprintf("put %q", k), err, objstore.ErrInvalidKey)
		_, _, err = s.Get(ctx(t), k, objstore.GetOptions{})
		wantErr(t, fmt.Sprintf("get %q", k), err, objstore.ErrInvalidKey)
	}
	if got := list(t, s, "", ""); len(got) != 0 {
		t.Fatalf("invalid keys left objects: %q", got)
	}
}

// failingReader gives n bytes, then an error.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, errors.New("disk on fire")
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

func testFailedBody(t *testing.T, cfg Config) {
	s := cfg.New(t)
	for _, n := range []int{10, int(cfg.LargeSize)} {
		key := fmt.Sprintf("broken-%d", n)
		_, err := s.Put(ctx(t), key, &failingReader{n: n}, -1, objstore.PutOptions{})
		if err == nil {
			t.Fatalf("put %s with a failing body succeeded", key)
		}
		if _, err := s.Head(ctx(t), key); !objstore.IsNotFound(err) {
			t.Fatalf("put %s with a failing body left an object: %v", key, err)
		}
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(c, "cancelled", strings.NewReader("x"), 1, objstore.PutOptions{}); err == nil {
		t.Fatal("put with a cancelled context succeeded")
	}
	if _, err := s.Head(ctx(t), "cancelled"); !objstore.IsNotFound(err) {
		t.Fatalf("put with a cancelled context left an object: %v", err)
	}
}

// race runs cfg.Racers puts of distinct bytes at once and returns the
// winners' bytes.
// Bodies differ between rounds too: two versions with equal bytes may
// share an ETag (S3's is their MD5), so a repeated body would let a stale
// if-match succeed, as it would on S3.
func race(t *testing.T, s objstore.Store, cfg Config, key string, round int, opts objstore.PutOptions) []string {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners []string
		start   = make(chan struct{})
	)
	for i := range cfg.Racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf("round %d racer %d", round, i)
			<-start
			_, err := s.Put(ctx(t), key, strings.NewReader(body), int64(len(body)), opts)
			switch {
			case err == nil:
				mu.Lock()
				winners = append(winners, body)
				mu.Unlock()
			case !objstore.IsPreconditionFailed(err):
				t.Errorf("racer %d: %v", i, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	return winners
}

func testRaceCreate(t *testing.T, cfg Config) {
	s := cfg.New(t)
	for round := range 5 {
		key := fmt.Sprintf("race/create-%d", round)
		winners := race(t, s, cfg, key, round, objstore.PutOptions{IfNoneMatch: true})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d create-only puts succeeded (%q), want exactly 1", round, len(winners), winners)
		}
		if got, _ := get(t, s, key, objstore.GetOptions{}); string(got) != winners[0] {
			t.Fatalf("round %d: object holds %q, the winner wrote %q", round, got, winners[0])
		}
	}
}

func testRaceIfMatch(t *testing.T, cfg Config) {
	s := cfg.New(t)
	info := put(t, s, "race/cas", []byte("v0"), objstore.PutOptions{})
	for round := range 5 {
		winners := race(t, s, cfg, "race/cas", round, objstore.PutOptions{IfMatch: info.ETag})
		if len(winners) != 1 {
			t.Fatalf("round %d: %d if-match puts succeeded (%q), want exactly 1", round, len(winners), winners)
		}
		var got []byte
		got, info = get(t, s, "race/cas", objstore.GetOptions{})
		if string(got) != winners[0] {
			t.Fatalf("round %d: object holds %q, the winner wrote %q", round, got, winners[0])
		}
	}
}

func testLarge(t *testing.T, cfg Config) {
	s := cfg.New(t)
	data := randomBytes(t, int(cfg.LargeSize)+12345)
	want := sha256.Sum256(data)
	for _, size := range []int64{int64(len(data)), -1} {
		key := fmt.Sprintf("large/size%d", size)
		info, err := s.Put(ctx(t), key, bytes.NewReader(data), size, objstore.PutOptions{IfNoneMatch: true})
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		if info.Size != int64(len(data)) {
			t.Fatalf("put %s: size %d, want %d", key, info.Size, len(data))
		}
		got, _ := get(t, s, key, objstore.GetOptions{})
		if sha256.Sum256(got) != want {
			t.Fatalf("get %s: %d bytes, content differs", key, len(got))
		}
		h, err := s.Head(ctx(t), key)
		if err != nil || h.ETag != info.ETag || h.Size != info.Size {
			t.Fatalf("head %s: %+v %v, put said %+v", key, h, err, info)
		}
		mid, _ := get(t, s, key, objstore.GetOptions{Offset: cfg.LargeSize - 10, Length: 20})
		if !bytes.Equal(mid, data[cfg.LargeSize-10:cfg.LargeSize+10]) {
			t.Fatalf("ranged get of %s across a part boundary differs", key)
		}
	}
	_, err := s.Put(ctx(t), "large/size-1", bytes.NewReader(data), -1, objstore.PutOptions{IfNoneMatch: true})
	wantErr(t, "create-only put of a large object on an existing key", err, objstore.ErrPreconditionFailed)
}

func testDownload(t *testing.T, cfg Config) {
	s := cfg.New(t)
	data := randomBytes(t, 3<<20+17)
	put(t, s, "dl", data, objstore.PutOptions{})
	var got writerAt
	n, err := objstore.Download(ctx(t), s, "dl", &got, objstore.DownloadOptions{PartSize: 256 << 10, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || !bytes.Equal(got.buf, data) {
		t.Fatalf("download: %d bytes, content equal %v", n, bytes.Equal(got.buf, data))
	}
	_, err = objstore.Download(ctx(t), s, "nope", &got, objstore.DownloadOptions{})
	wantErr(t, "download of a missing key", err, objstore.ErrNotFound)
}

type writerAt struct {
	mu  sync.Mutex
	buf []byte
}

func (w *writerAt) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	copy(w.buf[off:], p)
	return len(p), nil
}

func testCheck(t *testing.T, cfg Config) {
	s := cfg.New(t)
	if steps, err := objstore.Check(ctx(t), s, "check/probe"); err != nil {
		t.Fatalf("check after %d steps: %v", len(steps), err)
	}
}
