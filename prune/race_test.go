package prune

import (
	"context"
	"errors"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/objstore/filestore"
)

// Regression tests of the review of prune: two prunes at once, a sweep
// racing a drop or a base commit, a run that dies between its steps.

// ageObjects sets the modification time of every object under bases/ and
// sst/ to when: the bases were taken long before the prune.
func ageObjects(t *testing.T, s *filestore.Store, when time.Time) {
	t.Helper()
	err := filepath.WalkDir(s.Root(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if strings.Contains(p, "/sst/") || strings.Contains(p, "/bases/") {
			return os.Chtimes(p, when, when)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// nameAgain puts base tl/seq, whose file list is stored, back into the
// manifest.
func nameAgain(t *testing.T, s objstore.Store, tl uint32, seq uint64) {
	t.Helper()
	ctx := context.Background()
	fl, _, err := manifest.ReadFileList(ctx, s, manifest.FileListKey(tl, seq))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
		m.Bases = append(m.Bases, fl.Base())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestRunConcurrentPrunesKeepLongerGrace: two prunes at once (a cron prune
// with a 6h grace and the archiver's with 1h). The one whose
// compare-and-swap loses plans again; it must not take the bases the other
// just dropped as orphans of its own, with its own shorter grace.
func TestRunConcurrentPrunesKeepLongerGrace(t *testing.T) {
	inner := line().materialize(t)
	c := newClock()
	ageObjects(t, inner, c.Now().Add(-48*time.Hour))
	long := Options{Policy: Policy{KeepLast: 2}, Grace: 6 * time.Hour}
	short := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	var winner *Report
	hs := &hookStore{Store: inner, key: manifest.ManifestKey, before: func() {
		winner = run(t, inner, c, long) // commits first
		c.advance(time.Second)
	}}
	loser := run(t, hs, c, short)
	if loser.Attempts < 2 || !slices.Equal(seqs(winner.Dropped), []uint64{100, 200}) {
		t.Fatalf("no race: loser attempts %d, winner dropped %v", loser.Attempts, seqs(winner.Dropped))
	}
	c.advance(61 * time.Minute)
	run(t, inner, c, short)
	left := keys(t, inner)
	if !slices.Contains(left, manifest.FileListKey(1, 100)) || !slices.Contains(left, manifest.SegmentKey(1, 1)) {
		t.Fatalf("61 minutes after base 100 was dropped with a 6h grace, its objects are gone: %v", left)
	}
	c.advance(5 * time.Hour)
	run(t, inner, c, short)
	left = keys(t, inner)
	if slices.Contains(left, manifest.FileListKey(1, 100)) || slices.Contains(left, manifest.SegmentKey(1, 1)) {
		t.Fatalf("after the 6h grace, base 100's objects are still there: %v", left)
	}
}

// listHook runs after once the nth listing of prefix has been read.
type listHook struct {
	objstore.Store
	prefix string
	n      int
	after  func()
	mu     sync.Mutex
	seen   int
}

func (h *listHook) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		for info, err := range h.Store.List(ctx, prefix, startAfter) {
			if !yield(info, err) {
				return
			}
		}
		if prefix != h.prefix {
			return
		}
		h.mu.Lock()
		h.seen++
		fire := h.seen == h.n
		h.mu.Unlock()
		if fire {
			h.after()
		}
	}
}

// TestRunSweepSeesConcurrentDrop: while a run sweeps an old record that
// holds base 200's objects (dropped, then named again), another prune drops
// base 200 again. The sweep must leave them to the new drop's grace.
func TestRunSweepSeesConcurrentDrop(t *testing.T) {
	s := line().materialize(t)
	c := newClock()
	ageObjects(t, s, c.Now().Add(-48*time.Hour))
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	run(t, s, c, opts) // drops 100 and 200
	nameAgain(t, s, 1, 200)
	c.advance(61 * time.Minute)
	var other *Report
	hs := &listHook{Store: s, prefix: manifest.PrunePrefix, n: 2, after: func() { other = run(t, s, c, opts) }}
	run(t, hs, c, Options{Policy: Policy{KeepLast: 3}, Grace: time.Hour})
	if other == nil || !slices.Equal(seqs(other.Dropped), []uint64{200}) {
		t.Fatalf("the other prune did not drop base 200 during the sweep: %+v", other)
	}
	left := keys(t, s)
	if !slices.Contains(left, manifest.FileListKey(1, 200)) || !slices.Contains(left, manifest.SegmentKey(1, 201)) {
		t.Fatalf("base 200's objects went right after its second drop, not a grace after: %v", left)
	}
}

// TestRunRedropDiesBeforeRecord: base 200 is dropped (record R1), named
// again, and dropped again by a run that cannot write its record. That run
// must not drop it (the record comes first), so R1's sweep cannot delete
// its objects 11 minutes after the manifest last named it.
func TestRunRedropDiesBeforeRecord(t *testing.T) {
	inner := line().materialize(t)
	c := newClock()
	ageObjects(t, inner, c.Now().Add(-48*time.Hour))
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	run(t, inner, c, opts)
	c.advance(10 * time.Minute)
	nameAgain(t, inner, 1, 200)
	c.advance(40 * time.Minute)
	fsx := faultstore.New(inner)
	fsx.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.PrunePrefix, Err: errors.New("killed")})
	if _, err := tryRun(fsx, c, opts); err == nil {
		t.Fatal("a run whose record cannot be written reported success")
	}
	if got := baseSeqs(t, inner); !slices.Equal(got, []uint64{200, 300, 400}) {
		t.Errorf("a run that could not write its record dropped bases: %v", got)
	}
	c.advance(11 * time.Minute)
	run(t, inner, c, opts)
	if !slices.Contains(keys(t, inner), manifest.FileListKey(1, 200)) {
		t.Fatal("base 200's file list went 11 minutes after the manifest last named it")
	}
}

// headHook runs a function before the first Head of a key.
type headHook struct {
	objstore.Store
	key    string
	before func()
}

func (h *headHook) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if key == h.key && h.before != nil {
		fn := h.before
		h.before = nil
		fn()
	}
	return h.Store.Head(ctx, key)
}

// TestRunSweepRejudgesAfterCommit: the sweep judged c.sst unused; before
// it deletes it, an archiver writes a base that names c.sst, commits it,
// and checks that c.sst is there. The sweep must see the new manifest and
// keep the file.
func TestRunSweepRejudgesAfterCommit(t *testing.T) {
	inner := line().materialize(t)
	c := newClock()
	ageObjects(t, inner, c.Now().Add(-48*time.Hour))
	opts := Options{Policy: Policy{KeepLast: 1}, Grace: time.Hour}
	run(t, inner, c, opts) // drops 100, 200, 300: c.sst is named only by dropped bases
	c.advance(2 * time.Hour)
	ctx := context.Background()
	hs := &headHook{Store: inner, key: sstKey("c.sst"), before: func() {
		fl := fileList(1, 450, c.Now(), "c.sst")
		putBytes(t, inner, manifest.BasePrefix(1, 450)+"CURRENT", []byte("CURRENT"))
		if _, err := manifest.PutFileList(ctx, inner, fl); err != nil {
			t.Fatal(err)
		}
		if _, _, err := manifest.Update(ctx, inner, nil, func(m *manifest.Manifest) error {
			m.Bases = append(m.Bases, fl.Base())
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := inner.Head(ctx, sstKey("c.sst")); err != nil {
			t.Fatalf("the archiver's check after its commit: %v", err)
		}
	}}
	rep := run(t, hs, c, opts)
	if hs.before != nil {
		t.Fatal("the sweep never looked at c.sst")
	}
	if _, err := inner.Head(ctx, sstKey("c.sst")); err != nil {
		t.Fatalf("c.sst, named by committed base 450, was deleted: %v", err)
	}
	kept := map[string]string{}
	for _, o := range rep.Swept[0].Kept {
		kept[o.Key] = o.Why
	}
	if !strings.Contains(kept[sstKey("c.sst")], manifest.FileListKey(1, 450)) {
		t.Errorf("c.sst kept for %q, want named by base 450", kept[sstKey("c.sst")])
	}
}

// TestRunStrayKeyUnderDroppedBase: an object under a dropped base's prefix
// that is no key rockstream writes (an S3 console folder marker, a note)
// is left alone with a note; the record and the sweeps go on.
func TestRunStrayKeyUnderDroppedBase(t *testing.T) {
	s := line().materialize(t)
	stray := manifest.BasePrefix(1, 100) + "sub/notes.txt"
	putBytes(t, s, stray, []byte("x"))
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	rep, err := tryRun(s, c, opts)
	if err != nil {
		t.Fatalf("a stray key stopped the prune: %v", err)
	}
	if len(rep.Records) != 1 || !strings.Contains(strings.Join(rep.Notes, "\n"), stray) {
		t.Fatalf("records %v, notes %q: want one record and a note naming %s", rep.Records, rep.Notes, stray)
	}
	c.advance(2 * time.Hour)
	run(t, s, c, opts)
	left := keys(t, s)
	if slices.Contains(left, manifest.FileListKey(1, 100)) || slices.Contains(left, manifest.SegmentKey(1, 1)) ||
		!slices.Contains(left, stray) {
		t.Fatalf("after the sweep: %v", left)
	}
}

// TestRunSweepsWhenRecordFails: a run that cannot write its own record
// still sweeps the earlier records that are due.
func TestRunSweepsWhenRecordFails(t *testing.T) {
	inner := line().materialize(t)
	c := newClock()
	run(t, inner, c, Options{Policy: Policy{KeepLast: 3}, Grace: time.Hour}) // drops 100
	c.advance(2 * time.Hour)
	fsx := faultstore.New(inner)
	fsx.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.PrunePrefix, Err: errors.New("injected")})
	rep, err := tryRun(fsx, c, Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour})
	if err == nil || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("run with a failing record put: %v", err)
	}
	if rep == nil || len(rep.Swept) != 1 || slices.Contains(keys(t, inner), manifest.FileListKey(1, 100)) {
		t.Fatalf("the due record was not swept: %+v", rep)
	}
}
