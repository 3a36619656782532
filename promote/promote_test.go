package promote

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rockstream/rockstream/internal/testdb"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

var ctx = context.Background()

// fakeChain is an archive of timeline 1 written by "old" at epoch 3, with
// segments of one batch each up to sequence last.
func fakeChain(t *testing.T, last uint64) objstore.Store {
	t.Helper()
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := manifest.New("db-identity", time.Now())
	m.Writer = &manifest.Writer{Timeline: 1, Epoch: 3, ID: "old", Host: "primary", Since: time.Now()}
	if _, err := manifest.Create(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= last; seq++ {
		putSegment(t, s, 1, seq)
	}
	return s
}

// putSegment creates the segment of timeline tl with one batch at seq.
func putSegment(t *testing.T, s objstore.Store, tl uint32, seq uint64) error {
	t.Helper()
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Timeline: uint64(tl), FirstSeq: seq}, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 12, 20)
	binary.LittleEndian.PutUint64(data, seq)
	binary.LittleEndian.PutUint32(data[8:], 1)
	if err := w.Append(segments.Batch{Seq: seq, Count: 1, Time: time.Now(), Data: append(data, "payload!"...)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = s.Put(ctx, manifest.SegmentKey(tl, seq), bytes.NewReader(buf.Bytes()), int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true})
	return err
}

func TestPromote(t *testing.T) {
	s := fakeChain(t, 10)
	res, err := Promote(ctx, s, Options{Timeline: 1, Applied: 10, WriterID: "new", Host: "standby"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Timeline != 2 || res.Parent != 1 || res.Branch != 10 || res.Epoch != 4 || res.Marker != manifest.SegmentKey(1, 11) {
		t.Fatalf("result %+v", res)
	}
	if res.Timings.Total <= 0 || res.Timings.Fence <= 0 || res.Timings.Commit <= 0 || res.Timings.Drain != 0 {
		t.Fatalf("timings %+v", res.Timings)
	}
	m, _, err := manifest.Load(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	tl, ok := m.Timeline(2)
	if !ok || tl.Parent != 1 || tl.Branch != 10 {
		t.Fatalf("timelines %+v", m.Timelines)
	}
	if w := m.Writer; w.Timeline != 2 || w.Epoch != 4 || w.ID != "new" || w.Host != "standby" {
		t.Fatalf("writer %+v", w)
	}
	last, _, err := catalog.LastSegment(ctx, s, m, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !last.End || last.First != 11 || last.Next != 11 || last.Last.BatchCount != 0 {
		t.Fatalf("last segment of timeline 1: %+v", last)
	}
	// The old primary's next segment is refused.
	if err := putSegment(t, s, 1, 11); !objstore.IsPreconditionFailed(err) {
		t.Fatalf("the old primary's next upload: %v", err)
	}
	// The result's JSON carries the timings in seconds; the milliseconds
	// of an earlier version's standby are read too.
	b, _ := json.Marshal(res)
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || back.Timeline != 2 || !strings.Contains(string(b), `"commit_seconds"`) ||
		back.Timings.Total.Round(time.Millisecond) != res.Timings.Total.Round(time.Millisecond) {
		t.Fatalf("json %s -> %+v, %v", b, back, err)
	}
	var old Timings
	if err := json.Unmarshal([]byte(`{"drain_ms": 1.5, "fence_ms": 2, "commit_ms": 3, "total_ms": 6.5}`), &old); err != nil ||
		old != (Timings{1500 * time.Microsecond, 2 * time.Millisecond, 3 * time.Millisecond, 6500 * time.Microsecond}) {
		t.Fatalf("timings in milliseconds -> %+v, %v", old, err)
	}
	// Promoting timeline 1 again is refused.
	if _, err := Promote(ctx, s, Options{Timeline: 1, Applied: 10, WriterID: "other"}); !errors.Is(err, manifest.ErrFenced) {
		t.Fatalf("second promotion: %v", err)
	}
}

func TestPromoteRace(t *testing.T) {
	for round := range 10 {
		s := fakeChain(t, 5)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				_, errs[i] = Promote(ctx, s, Options{Timeline: 1, Applied: 5, WriterID: fmt.Sprint("new-", i)})
			})
		}
		wg.Wait()
		won := -1
		for i, err := range errs {
			switch {
			case err == nil && won >= 0:
				t.Fatalf("round %d: promotions %d and %d both won", round, won, i)
			case err == nil:
				won = i
			case !errors.Is(err, manifest.ErrFenced) && !errors.Is(err, manifest.ErrConflict):
				t.Fatalf("round %d: the loser %d: %v", round, i, err)
			}
		}
		if won < 0 {
			t.Fatalf("round %d: no promotion won: %v", round, errs)
		}
		m, _, _ := manifest.Load(ctx, s)
		if len(m.Timelines) != 2 || m.Writer.ID != fmt.Sprint("new-", won) || m.Writer.Epoch != 4 {
			t.Fatalf("round %d: %+v, writer %+v", round, m.Timelines, m.Writer)
		}
	}
}

// A second standby, behind the first, races it: the marker key is taken
// by a data segment for it, and Promote(Drain) then reaches the first's
// marker, and loses at the commit.
func TestPromoteBehindLoses(t *testing.T) {
	s := fakeChain(t, 8)
	if _, err := Promote(ctx, s, Options{Timeline: 1, Applied: 8, WriterID: "first"}); err != nil {
		t.Fatal(err)
	}
	applied := uint64(6)
	_, err := Promote(ctx, s, Options{Timeline: 1, Applied: 6, WriterID: "second", Drain: func(context.Context) (uint64, error) {
		applied++
		return applied, nil
	}})
	if !errors.Is(err, manifest.ErrFenced) {
		t.Fatalf("applied %d: %v", applied, err)
	}
	m, _, _ := manifest.Load(ctx, s)
	if len(m.Timelines) != 2 || m.Writer.ID != "first" {
		t.Fatalf("%+v %+v", m.Timelines, m.Writer)
	}
}

// A promotion that wrote its marker and stopped before the commit is
// finished by the next one, which drains up to the marker.
func TestPromoteAfterCrash(t *testing.T) {
	s := fakeChain(t, 8)
	if err := fence(ctx, s, nil, 1, 8, time.Now()); err != nil {
		t.Fatal(err)
	}
	applied := uint64(6)
	res, err := Promote(ctx, s, Options{Timeline: 1, Applied: 6, WriterID: "second", Drain: func(context.Context) (uint64, error) {
		applied++
		return applied, nil
	}})
	if err != nil || res.Branch != 8 || res.Timeline != 2 || res.Marker != manifest.SegmentKey(1, 9) {
		t.Fatalf("%+v: %v", res, err)
	}
}

func TestPromoteMarkerTaken(t *testing.T) {
	s := fakeChain(t, 12)
	m0, tag0, _ := manifest.Load(ctx, s)
	_, err := Promote(ctx, s, Options{Timeline: 1, Applied: 10, WriterID: "new"})
	if !errors.Is(err, ErrMoreToApply) || !strings.Contains(err.Error(), manifest.SegmentPrefix(1)) {
		t.Fatalf("marker key taken: %v", err)
	}
	m, tag, _ := manifest.Load(ctx, s)
	if tag != tag0 || len(m.Timelines) != 1 || m.Writer.ID != m0.Writer.ID {
		t.Fatalf("something was committed: %+v %+v", m.Timelines, m.Writer)
	}
	if _, err := s.Head(ctx, manifest.SegmentKey(1, 13)); !objstore.IsNotFound(err) {
		t.Fatalf("a marker was written after the taken key: %v", err)
	}
	// With Drain: applied goes 10 -> 12 in two rounds, then the marker goes
	// at 13.
	applied := uint64(10)
	res, err := Promote(ctx, s, Options{Timeline: 1, Applied: 10, WriterID: "new", Drain: func(context.Context) (uint64, error) {
		applied++
		time.Sleep(time.Millisecond)
		return applied, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Branch != 12 || res.Marker != manifest.SegmentKey(1, 13) || res.Timings.Drain <= 0 {
		t.Fatalf("%+v", res)
	}
	// A drain that does not move is an error, not a loop.
	s = fakeChain(t, 12)
	_, err = Promote(ctx, s, Options{Timeline: 1, Applied: 10, WriterID: "new", Drain: func(context.Context) (uint64, error) { return 10, nil }})
	if !errors.Is(err, ErrMoreToApply) {
		t.Fatalf("stuck drain: %v", err)
	}
}

// TestPromoteFencesArchiver archives a real database, promotes at its last
// archived sequence, and checks that the running archiver stops fenced:
// once by its next upload (the marker), once by its manifest check.
func TestPromoteFencesArchiver(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fenceCheck time.Duration
	}{{"by the marker", time.Hour}, {"by the manifest", 50 * time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			db := testdb.Open(t, filepath.Join(root, "db"))
			defer db.Close()
			wo := grocksdb.NewDefaultWriteOptions()
			write := func(n int) {
				for i := range n {
					if err := db.Put(wo, fmt.Appendf(nil, "k%d", i), []byte("v")); err != nil {
						t.Fatal(err)
					}
				}
			}
			write(10)
			store, err := filestore.New(filepath.Join(root, "bucket"))
			if err != nil {
				t.Fatal(err)
			}
			src, err := rocks.NewFollowerSource(filepath.Join(root, "db"), filepath.Join(root, "secondary"))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			a, err := archive.New(src, store, archive.Options{WriterID: "old", WorkDir: filepath.Join(root, "work"),
				SegmentAge: 10 * time.Millisecond, Poll: 5 * time.Millisecond, FenceCheck: tc.fenceCheck,
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- a.Run(ctx) }()
			write(5)
			want := db.GetLatestSequenceNumber()
			for deadline := time.Now().Add(20 * time.Second); a.Stats().LastSequence != want; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the archiver is at %d, the database at %d", a.Stats().LastSequence, want)
				}
			}
			res, err := Promote(ctx, store, Options{Timeline: 1, Applied: want, WriterID: "new"})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("promoted: %+v", res)
			write(5) // the old primary goes on
			select {
			case err := <-done:
				if !errors.Is(err, manifest.ErrFenced) || !strings.Contains(err.Error(), "fenced") {
					t.Fatalf("the archiver stopped with %v, want fenced", err)
				}
				t.Logf("archiver: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("the old archiver still runs")
			}
			c, err := catalog.Load(ctx, store)
			if err != nil {
				t.Fatal(err)
			}
			for _, sg := range c.Segments[1] {
				if sg.First > want+1 {
					t.Fatalf("the fenced archiver wrote %s after the marker", sg.Key)
				}
			}
		})
	}
}

// TestPromoteLostAnswer: the manifest commit lands but its answer is lost
// (the put fails after it was made): the promotion still succeeds.
func TestPromoteLostAnswer(t *testing.T) {
	s := fakeChain(t, 12)
	fs := faultstore.New(s)
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.ManifestKey, Err: errors.New("connection reset"), AfterPut: true})
	res, err := Promote(ctx, fs, Options{Timeline: 1, Applied: 12, WriterID: "new"})
	if err != nil || res.Timeline != 2 || res.Branch != 12 {
		t.Fatalf("a promotion whose commit answer was lost: %+v, %v", res, err)
	}
}

// racingStore lets the old primary upload the segment at raceKey between
// the promotion's listing and its marker's put, and records every GET.
type racingStore struct {
	objstore.Store
	t       *testing.T
	raceKey string
	gets    []objstore.GetOptions
}

func (r *racingStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if key == r.raceKey {
		r.raceKey = ""
		if err := putSegment(r.t, r.Store, 1, 11); err != nil {
			r.t.Fatal(err)
		}
	}
	return r.Store.Put(ctx, key, body, size, opts)
}

func (r *racingStore) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	r.gets = append(r.gets, opts)
	return r.Store.Get(ctx, key, opts)
}

// The old primary uploads the segment at the marker's key after the
// promotion saw none: fence reads the taken key's header and trailer (with
// ranged GETs, not the whole segment) and reports the batches to apply.
func TestFenceRacesUpload(t *testing.T) {
	s := &racingStore{Store: fakeChain(t, 10), t: t, raceKey: manifest.SegmentKey(1, 11)}
	err := fence(ctx, s, nil, 1, 10, time.Now())
	if !errors.Is(err, ErrMoreToApply) || !strings.Contains(err.Error(), manifest.SegmentKey(1, 11)) ||
		!strings.Contains(err.Error(), "sequences 11 to 11 of timeline 1") {
		t.Fatalf("fence after a racing upload: %v", err)
	}
	if len(s.gets) == 0 {
		t.Fatal("the taken key was not read")
	}
	for _, g := range s.gets {
		if g.Length <= 0 {
			t.Fatalf("a GET read a whole object: %+v", s.gets)
		}
	}
}
