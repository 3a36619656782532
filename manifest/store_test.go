package manifest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

func TestCreateLoad(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	_, _, err := manifest.Load(ctx, s)
	wantErr(t, err, manifest.ErrNoArchive, manifest.ManifestKey, s.String())
	wantErr(t, err, objstore.ErrNotFound)

	m := manifest.New("db-identity", t0)
	m.Writer = writer("a", 1, 1)
	etag, err := manifest.Create(ctx, s, m)
	if err != nil {
		t.Fatal(err)
	}
	got, etag2, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if etag2 != etag || got.Revision != m.Revision || got.Identity != "db-identity" || len(got.Timelines) != 1 || got.Writer.ID != "a" {
		t.Errorf("Load = %+v, %q; want the created manifest, %q", got, etag2, etag)
	}

	_, err = manifest.Create(ctx, s, manifest.New("other", t0))
	wantErr(t, err, manifest.ErrExists, manifest.ManifestKey)
}

func TestCreateRefusesInvalid(t *testing.T) {
	s := newStore(t)
	m := manifest.New("db-identity", t0)
	m.Holes = []manifest.Hole{{Timeline: 1, From: 9, To: 3, Reason: "x"}}
	_, err := manifest.Create(context.Background(), s, m)
	wantErr(t, err, manifest.ErrInvalid, "holes[0].from")
	_, _, err = manifest.Load(context.Background(), s)
	wantErr(t, err, manifest.ErrNoArchive)
}

func TestCommit(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	createArchive(t, s, writer("a", 1, 1))
	m, etag, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	old := m.Revision
	m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: 5, To: 9, Detected: t0, Reason: "lost"})
	etag2, err := manifest.Commit(ctx, s, etag, m)
	if err != nil {
		t.Fatal(err)
	}
	if etag2 == etag || m.Revision == old {
		t.Errorf("Commit kept the etag %q or the revision %q", etag2, m.Revision)
	}
	got, etag3, err := manifest.Load(ctx, s)
	if err != nil || etag3 != etag2 || len(got.Holes) != 1 || got.Revision != m.Revision {
		t.Fatalf("Load after Commit = %+v, %q, %v", got, etag3, err)
	}
	// The old etag no longer works.
	_, err = manifest.Commit(ctx, s, etag, m)
	wantErr(t, err, manifest.ErrConflict, manifest.ManifestKey)
	_, err = manifest.Commit(ctx, s, "", m)
	wantErr(t, err, nil, "no etag")
}

func TestCommitRefusesInvalid(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	etag := createArchive(t, s, writer("a", 1, 1))
	m, _, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	m.Bases = append(m.Bases, manifest.Base{Timeline: 1, Sequence: 10, FileList: "../x", FileCount: 1})
	_, err = manifest.Commit(ctx, s, etag, m)
	wantErr(t, err, manifest.ErrInvalid, "bases[0].file_list")
	if _, etag2, _ := manifest.Load(ctx, s); etag2 != etag {
		t.Errorf("an invalid commit changed the manifest")
	}
}

func TestCommitFenced(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	createArchive(t, s, writer("a", 1, 1))
	mine, etag, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	// b takes over at epoch 2 on a new timeline.
	_, _, err = manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
		tl, err := m.AddTimeline(1, 100, t0)
		m.Writer = writer("b", tl.ID, m.Writer.Epoch+1)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	mine.Holes = append(mine.Holes, manifest.Hole{Timeline: 1, From: 5, To: 9, Reason: "lost"})
	_, err = manifest.Commit(ctx, s, etag, mine)
	wantErr(t, err, manifest.ErrFenced, `writer "b"`, "epoch 2", "timeline 2")
	if errors.Is(err, manifest.ErrConflict) {
		t.Errorf("a fenced commit also matches ErrConflict: %v", err)
	}
}

// ambiguousStore applies a conditional put and then reports it as refused,
// as an SDK does when it retries a put whose first attempt was applied.
type ambiguousStore struct {
	objstore.Store
	mu    sync.Mutex
	fails int // puts to report as refused
}

func (s *ambiguousStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	info, err := s.Store.Put(ctx, key, body, size, opts)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.fails > 0 {
		s.fails--
		return objstore.ObjectInfo{}, &objstore.Error{Op: "put", Key: key, Err: objstore.ErrPreconditionFailed}
	}
	return info, err
}

func TestAmbiguousPutIsOwnWrite(t *testing.T) {
	ctx := context.Background()
	s := &ambiguousStore{Store: newStore(t), fails: 1}
	m := manifest.New("db-identity", t0)
	etag, err := manifest.Create(ctx, s, m)
	if err != nil {
		t.Fatalf("Create after an ambiguous put: %v", err)
	}
	m.Holes = []manifest.Hole{{Timeline: 1, From: 1, To: 2, Reason: "x"}}
	s.fails = 1
	etag2, err := manifest.Commit(ctx, s, etag, m)
	if err != nil {
		t.Fatalf("Commit after an ambiguous put: %v", err)
	}
	got, etag3, err := manifest.Load(ctx, s)
	if err != nil || etag3 != etag2 || got.Revision != m.Revision || len(got.Holes) != 1 {
		t.Fatalf("Load = %+v, %q, %v; want the commit, %q", got, etag3, err, etag2)
	}

	fl, err := manifest.ParseFileList(readGolden(t, "files.json"))
	if err != nil {
		t.Fatal(err)
	}
	s.fails = 1
	if _, err := manifest.PutFileList(ctx, s, fl); err != nil {
		t.Fatalf("PutFileList after an ambiguous put: %v", err)
	}
}

// TestCommitRace races commits from one etag, round after round: exactly
// one wins each round, the others get ErrConflict, or ErrFenced when the
// winner took over as writer.
func TestCommitRace(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	createArchive(t, s, writer("w0", 1, 1))
	const racers, rounds = 8, 6
	for round := range rounds {
		takeover := round%2 == 1
		base, etag, err := manifest.Load(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			m := clone(t, base)
			wg.Go(func() {
				m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: uint64(1000*round + i), To: uint64(1000*round + i), Reason: fmt.Sprint("racer ", i)})
				if takeover {
					m.Writer = writer(fmt.Sprint("w", i), 1, base.Writer.Epoch+1)
				}
				_, errs[i] = manifest.Commit(ctx, s, etag, m)
			})
		}
		wg.Wait()
		checkOneWinner(t, round, errs, takeover)
		got, _, err := manifest.Load(ctx, s)
		if err != nil || len(got.Holes) != round+1 {
			t.Fatalf("round %d: %d holes after the race, want %d (%v)", round, len(got.Holes), round+1, err)
		}
	}
}

func checkOneWinner(t *testing.T, round int, errs []error, takeover bool) {
	t.Helper()
	want := manifest.ErrConflict
	if takeover {
		want = manifest.ErrFenced
	}
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, want):
			t.Errorf("round %d racer %d: %v, want %v", round, i, err, want)
		}
	}
	if wins != 1 {
		t.Fatalf("round %d: %d winners, want 1", round, wins)
	}
}

// clone copies m through its JSON.
func clone(t *testing.T, m *manifest.Manifest) *manifest.Manifest {
	t.Helper()
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestUpdateConcurrent runs many Updates at once: none is lost.
func TestUpdateConcurrent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	w := writer("a", 1, 1)
	createArchive(t, s, w)
	const workers, each = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for g := range workers {
		wg.Go(func() {
			for k := range each {
				n := uint64(10 * (g*each + k + 1))
				_, _, err := manifest.Update(ctx, s, w, func(m *manifest.Manifest) error {
					m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: n, To: n + 5, Reason: "test"})
					return nil
				})
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	m, _, err := manifest.Load(ctx, s)
	if err != nil || len(m.Holes) != workers*each {
		t.Fatalf("%d holes after the updates, want %d (%v)", len(m.Holes), workers*each, err)
	}
}

func TestUpdateFenced(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a := writer("a", 1, 1)
	createArchive(t, s, a)
	b := writer("b", 1, 2)
	calls := 0
	_, _, err := manifest.Update(ctx, s, a, func(m *manifest.Manifest) error {
		calls++
		if calls == 1 { // b takes over while a is at work
			takeOver(t, s, b)
		}
		m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: 7, To: 8, Reason: "x"})
		return nil
	})
	wantErr(t, err, manifest.ErrFenced, `writer "b"`, "epoch 2")
	if calls != 1 {
		t.Errorf("fn called %d times, want 1 (no call once fenced)", calls)
	}
	_, _, err = manifest.Update(ctx, s, a, func(*manifest.Manifest) error {
		t.Error("fn called for a fenced writer")
		return nil
	})
	wantErr(t, err, manifest.ErrFenced)
	if _, _, err := manifest.Update(ctx, s, b, func(*manifest.Manifest) error { return nil }); err != nil {
		t.Errorf("Update as the current writer: %v", err)
	}
}

func takeOver(t *testing.T, s objstore.Store, w *manifest.Writer) {
	t.Helper()
	_, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		m.Writer = w
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpdateFnError(t *testing.T) {
	s := newStore(t)
	etag := createArchive(t, s, nil)
	boom := errors.New("boom")
	_, _, err := manifest.Update(context.Background(), s, nil, func(*manifest.Manifest) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want %v", err, boom)
	}
	if _, etag2, _ := manifest.Load(context.Background(), s); etag2 != etag {
		t.Error("a failed fn changed the manifest")
	}
}

func TestReload(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	etag := createArchive(t, s, writer("a", 1, 1))
	m, etag2, err := manifest.Reload(ctx, s, etag)
	if err != nil || m != nil || etag2 != etag {
		t.Fatalf("Reload of an unchanged manifest = %v, %q, %v; want nil, %q, nil", m, etag2, err, etag)
	}
	takeOver(t, s, writer("b", 1, 2))
	m, etag2, err = manifest.Reload(ctx, s, etag)
	if err != nil || m == nil || etag2 == etag || m.Writer.ID != "b" {
		t.Fatalf("Reload of a changed manifest = %+v, %q, %v", m, etag2, err)
	}
}

// hugeStore serves manifest.json as an endless object that claims to be
// small, and counts the bytes read.
type hugeStore struct {
	objstore.Store
	size int64 // the size Get reports
	read int64
}

func (s *hugeStore) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	r := io.NopCloser(countReader{&s.read, strings.NewReader(`{"format": 1, "identity": "`), endless{}})
	return r, objstore.ObjectInfo{Key: key, Size: s.size, ETag: "x"}, nil
}

type endless struct{}

var as = bytes.Repeat([]byte("a"), 64<<10)

func (endless) Read(p []byte) (int, error) {
	return copy(p, as), nil
}

type countReader struct {
	n    *int64
	head io.Reader
	rest io.Reader
}

func (c countReader) Read(p []byte) (int, error) {
	n, err := io.MultiReader(c.head, c.rest).Read(p)
	*c.n += int64(n)
	return n, err
}

func TestLoadRefusesHugeObject(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int64{-1, 100, manifest.MaxManifestSize + 1} {
		s := &hugeStore{Store: newStore(t), size: size}
		_, _, err := manifest.Load(ctx, s)
		wantErr(t, err, manifest.ErrInvalid, manifest.ManifestKey, "larger than")
		if s.read > manifest.MaxManifestSize+1 {
			t.Errorf("size %d: read %d bytes, more than the limit", size, s.read)
		}
		if size > manifest.MaxManifestSize && s.read > 0 {
			t.Errorf("size %d: read %d bytes of an object known to be too large", size, s.read)
		}
	}
}

func TestFileListStore(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	m := goldenManifest(t)
	fl, err := manifest.ParseFileList(readGolden(t, "files.json"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := manifest.PutFileList(ctx, s, fl)
	if err != nil {
		t.Fatal(err)
	}
	b.Digest = m.Bases[0].Digest
	b.Time = m.Bases[0].Time
	if b != m.Bases[0] {
		t.Errorf("PutFileList = %+v, want %+v", b, m.Bases[0])
	}
	got, err := manifest.LoadFileList(ctx, s, m, b)
	if err != nil || len(got.Files) != 7 {
		t.Fatalf("LoadFileList = %+v, %v", got, err)
	}
	if _, err := manifest.PutFileList(ctx, s, fl); err != nil {
		t.Errorf("a second put of the same file list: %v", err)
	}
	other := *fl
	other.Files = fl.Files[1:]
	_, err = manifest.PutFileList(ctx, s, &other)
	wantErr(t, err, objstore.ErrPreconditionFailed, b.FileList)
}

func TestLoadFileListMismatch(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	m := goldenManifest(t)
	put(t, s, m.Bases[0].FileList, readGolden(t, "files.json"))
	tests := []struct {
		name  string
		edit  func(*manifest.Manifest, *manifest.Base)
		field string
	}{
		{"identity", func(m *manifest.Manifest, _ *manifest.Base) { m.Identity = "other" }, "invalid identity"},
		{"count", func(_ *manifest.Manifest, b *manifest.Base) { b.FileCount = 8 }, "8"},
		{"size", func(_ *manifest.Manifest, b *manifest.Base) { b.Size++ }, "bytes in all"},
		{"key", func(_ *manifest.Manifest, b *manifest.Base) { b.FileList = "bases/../files.json" }, "file_list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mc := *m
			b := m.Bases[0]
			tt.edit(&mc, &b)
			_, err := manifest.LoadFileList(ctx, s, &mc, b)
			wantErr(t, err, manifest.ErrInvalid, tt.field)
		})
	}
	// A file list whose content says another base than its key.
	b := m.Bases[1]
	put(t, s, b.FileList, readGolden(t, "files.json"))
	_, err := manifest.LoadFileList(ctx, s, m, b)
	wantErr(t, err, manifest.ErrInvalid, b.FileList, "sequence")
}

// TestLoadResumesBrokenTransfer: a manifest whose transfer breaks off (a
// connection reset mid-body) is read again; one that always breaks is a
// failure of the store (*objstore.Error), never a corrupt manifest.
func TestLoadResumesBrokenTransfer(t *testing.T) {
	ctx := context.Background()
	inner := newStore(t)
	createArchive(t, inner, writer("a", 1, 1))
	s := faultstore.New(inner)
	s.Add(faultstore.Rule{Op: faultstore.Get, Nth: 1, Cut: true, CutAt: 40})
	s.Add(faultstore.Rule{Op: faultstore.Get, Nth: 2, Cut: true, CutAt: 0})
	if _, _, err := manifest.Load(ctx, s); err != nil {
		t.Fatalf("a manifest read through two broken transfers: %v", err)
	}
	s.Reset()
	s.CutShort(manifest.ManifestKey, 40)
	_, _, err := manifest.Load(ctx, s)
	var se *objstore.Error
	if !errors.As(err, &se) || errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "transfer stopped after 40") {
		t.Fatalf("a transfer that always breaks: %v, want a store error", err)
	}
}

// TestReadFileList: a list that no manifest names is read with its ETag,
// through a broken transfer; one whose content is of another base than its
// key, a key that is not a files.json, a missing list and a list too large
// are errors of their kind.
func TestReadFileList(t *testing.T) {
	ctx := context.Background()
	inner := newStore(t)
	m := goldenManifest(t)
	info := put(t, inner, m.Bases[0].FileList, readGolden(t, "files.json"))
	s := faultstore.New(inner)
	s.Add(faultstore.Rule{Op: faultstore.Get, Nth: 1, Cut: true, CutAt: 100})
	fl, etag, err := manifest.ReadFileList(ctx, s, m.Bases[0].FileList)
	if err != nil || len(fl.Files) != 7 || etag != info.ETag || etag == "" {
		t.Fatalf("ReadFileList through a broken transfer = %+v, %q (want %q), %v", fl, etag, info.ETag, err)
	}
	other := m.Bases[1].FileList
	put(t, inner, other, readGolden(t, "files.json"))
	_, _, err = manifest.ReadFileList(ctx, s, other)
	wantErr(t, err, manifest.ErrInvalid, other, "its key is of timeline")
	sst := strings.TrimSuffix(m.Bases[0].FileList, manifest.FileListName) + "CURRENT"
	_, _, err = manifest.ReadFileList(ctx, s, sst)
	wantErr(t, err, manifest.ErrInvalid, "is not a files.json key")
	_, _, err = manifest.ReadFileList(ctx, s, manifest.FileListKey(9, 9))
	wantErr(t, err, objstore.ErrNotFound, manifest.FileListKey(9, 9))
	huge := manifest.FileListKey(9, 10)
	put(t, inner, huge, bytes.Repeat([]byte(" "), manifest.MaxFileListSize+1))
	_, _, err = manifest.ReadFileList(ctx, s, huge)
	wantErr(t, err, manifest.ErrInvalid, huge, "larger than")
}
