package prune

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

func run(t *testing.T, s objstore.Store, c *clock, opts Options) *Report {
	t.Helper()
	rep, err := tryRun(s, c, opts)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	return rep
}

func tryRun(s objstore.Store, c *clock, opts Options) (*Report, error) {
	opts.Now, opts.Logger = c.Now, quiet()
	return Run(context.Background(), s, opts)
}

func objectKeys(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.Key)
	}
	return out
}

func baseSeqs(t *testing.T, s objstore.Store) []uint64 {
	t.Helper()
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, b := range m.Bases {
		out = append(out, b.Sequence)
	}
	slices.Sort(out)
	return out
}

// TestRunGrace: phase 1 drops the bases from the manifest and writes a
// record; nothing is deleted before the grace is over, and everything
// scheduled is deleted by the first run after it, which then deletes the
// record. Nothing else is touched.
func TestRunGrace(t *testing.T) {
	s := line().materialize(t)
	all := keys(t, s)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	rep := run(t, s, c, opts)
	if got := baseSeqs(t, s); !slices.Equal(got, []uint64{300, 400}) {
		t.Fatalf("manifest bases after phase 1: %v", got)
	}
	if len(rep.Records) != 1 || len(rep.Waiting) != 1 || len(rep.Swept) != 0 || len(rep.Scheduled) == 0 {
		t.Fatalf("phase 1 report: records %v, waiting %+v, swept %+v", rep.Records, rep.Waiting, rep.Swept)
	}
	scheduled := objectKeys(rep.Scheduled)
	if got := keys(t, s); !slices.Equal(got, append(slices.Clone(all), rep.Records[0])) && len(got) != len(all)+1 {
		t.Fatalf("phase 1 deleted something: %v", got)
	}
	c.advance(59 * time.Minute)
	rep = run(t, s, c, opts)
	if len(rep.Swept) != 0 || len(rep.Waiting) != 1 || len(rep.Scheduled) != 0 || rep.AlreadyPending != len(scheduled) {
		t.Fatalf("before the grace: swept %+v, scheduled %v, pending %d", rep.Swept, objectKeys(rep.Scheduled), rep.AlreadyPending)
	}
	if got := keys(t, s); len(got) != len(all)+1 {
		t.Fatalf("a run within the grace deleted something")
	}
	c.advance(2 * time.Minute)
	rep = run(t, s, c, opts)
	if len(rep.Swept) != 1 || rep.Swept[0].Deleted != len(scheduled) || len(rep.Swept[0].Kept) != 0 {
		t.Fatalf("after the grace: swept %+v (scheduled %d)", rep.Swept, len(scheduled))
	}
	if got, want := keys(t, s), without(all, scheduled); !slices.Equal(got, want) {
		t.Fatalf("after the sweep:\n%v\nwant\n%v", got, want)
	}
	// A later run has nothing left to do, and the ranges are those planned.
	rep = run(t, s, c, opts)
	if len(rep.Scheduled) != 0 || len(rep.Swept) != 0 || len(rep.Waiting) != 0 {
		t.Errorf("a run after all: %+v", rep)
	}
	if got := ranges(rep.After, 1); !slices.Equal(got, []manifest.Range{{From: 300, To: 499}}) {
		t.Errorf("restorable after: %v", got)
	}
	cat, err := catalog.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	cov, _ := manifest.Restorable(cat.Manifest, cat.Ranges())
	if got := ranges(cov, 1); !slices.Equal(got, []manifest.Range{{From: 300, To: 499}}) {
		t.Errorf("restorable from the store: %v", got)
	}
}

// TestRunNoGrace: --grace 0 deletes in the same run.
func TestRunNoGrace(t *testing.T) {
	s := branched().materialize(t)
	all := keys(t, s)
	c := newClock()
	rep := run(t, s, c, Options{Policy: Policy{KeepLast: 1}})
	if len(rep.Swept) != 1 || rep.Swept[0].Deleted != len(rep.Scheduled) {
		t.Fatalf("swept %+v, scheduled %d", rep.Swept, len(rep.Scheduled))
	}
	if got, want := keys(t, s), without(all, objectKeys(rep.Scheduled)); !slices.Equal(got, want) {
		t.Fatalf("left %v\nwant %v", got, want)
	}
	if !slices.Contains(keys(t, s), manifest.SegmentKey(1, 270)) {
		t.Error("the end marker of timeline 1 was deleted")
	}
}

// TestRunDryRun changes nothing and says what would go.
func TestRunDryRun(t *testing.T) {
	s := line().materialize(t)
	all := keys(t, s)
	m1, tag1, _ := manifest.Load(context.Background(), s)
	rep := run(t, s, newClock(), Options{Policy: Policy{KeepLast: 1}, DryRun: true})
	if !rep.DryRun || len(rep.Dropped) != 3 || len(rep.Scheduled) == 0 || len(rep.Records) != 0 {
		t.Fatalf("dry run report: %+v", rep)
	}
	m2, tag2, _ := manifest.Load(context.Background(), s)
	if got := keys(t, s); !slices.Equal(got, all) || tag1 != tag2 || m1.Revision != m2.Revision {
		t.Fatalf("the dry run changed the archive")
	}
}

// TestRunDryRunDueRecord: a dry run after the grace of an earlier run's
// record says what the sweep would delete, exactly what a real run then
// deletes, and changes nothing.
func TestRunDryRunDueRecord(t *testing.T) {
	s := line().materialize(t)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 1}, Grace: time.Hour}
	first := run(t, s, c, opts)
	if len(first.Records) != 1 || len(first.Scheduled) == 0 {
		t.Fatalf("phase 1: records %v, scheduled %d", first.Records, len(first.Scheduled))
	}
	c.advance(2 * time.Hour)
	before := keys(t, s)
	dry := opts
	dry.DryRun = true
	rep := run(t, s, c, dry)
	if got := keys(t, s); !slices.Equal(got, before) {
		t.Fatalf("the dry run changed the archive")
	}
	if len(rep.Due) != 1 || rep.Due[0].Record != first.Records[0] || len(rep.Waiting) != 0 || len(rep.Swept) != 0 {
		t.Fatalf("dry run: due %+v, waiting %+v, swept %+v", rep.Due, rep.Waiting, rep.Swept)
	}
	would := objectKeys(rep.Due[0].Delete)
	slices.Sort(would)
	if len(would) != len(first.Scheduled) || len(rep.Due[0].Kept) != 0 || rep.Due[0].DeleteBytes <= 0 {
		t.Fatalf("dry run would delete %d objects (%d bytes), keep %+v; phase 1 scheduled %d",
			len(would), rep.Due[0].DeleteBytes, rep.Due[0].Kept, len(first.Scheduled))
	}
	real := run(t, s, c, opts)
	if len(real.Swept) != 1 || real.Swept[0].Deleted != len(would) || real.Swept[0].DeletedBytes != rep.Due[0].DeleteBytes {
		t.Fatalf("the real run swept %+v; the dry run said %d objects, %d bytes", real.Swept, len(would), rep.Due[0].DeleteBytes)
	}
	if got, want := keys(t, s), without(before, append(would, first.Records[0])); !slices.Equal(got, want) {
		t.Fatalf("the real run left\n%v\nthe dry run said\n%v", got, want)
	}
}

// TestRunDryRunDueKeepsNeeded: a due record whose objects a base names
// again is reported as kept, with why, not as to delete.
func TestRunDryRunDueKeepsNeeded(t *testing.T) {
	s := line().materialize(t)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 1}, Grace: time.Hour}
	first := run(t, s, c, opts)
	// The bases are named again (a restore of the old manifest, say).
	if _, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		for _, b := range first.Dropped {
			m.Bases = append(m.Bases, b.Base)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.advance(2 * time.Hour)
	rep := run(t, s, c, Options{Policy: Policy{KeepLast: 10}, Grace: time.Hour, DryRun: true})
	if len(rep.Due) != 1 || len(rep.Due[0].Delete) != 0 || len(rep.Due[0].Kept) != len(first.Scheduled) {
		t.Fatalf("due %+v: want every one of %d objects kept", rep.Due, len(first.Scheduled))
	}
	for _, o := range rep.Due[0].Kept {
		if o.Why == "" {
			t.Errorf("kept %s with no reason", o.Key)
		}
	}
}

// TestRunRecordFails: a run that cannot write its record drops nothing
// (the record comes before the manifest commit); the next run does it.
func TestRunRecordFails(t *testing.T) {
	inner := line().materialize(t)
	fs := faultstore.New(inner)
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.PrunePrefix, Err: errors.New("killed")})
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	if _, err := tryRun(fs, c, opts); err == nil || !strings.Contains(err.Error(), "nothing was dropped") {
		t.Fatalf("phase 1 with a failing record put: %v", err)
	}
	if got := baseSeqs(t, inner); !slices.Equal(got, []uint64{100, 200, 300, 400}) {
		t.Fatalf("bases %v: nothing should be dropped", got)
	}
	rep := run(t, inner, c, opts)
	if got := seqs(rep.Dropped); !slices.Equal(got, []uint64{100, 200}) || len(rep.Records) != 1 {
		t.Fatalf("the next run: dropped %v, records %v", got, rep.Records)
	}
}

// TestRunCrashBeforeRecord: a prune of an older rockstream (which wrote
// its record after the commit) committed the manifest and died before its
// record. The dropped bases' objects are orphans that a later run finds,
// once their file lists are older than the grace, and deletes.
func TestRunCrashBeforeRecord(t *testing.T) {
	inner := line().materialize(t)
	all := keys(t, inner)
	c := newClock()
	if _, _, err := manifest.Update(context.Background(), inner, nil, func(m *manifest.Manifest) error {
		m.Bases = slices.DeleteFunc(m.Bases, func(b manifest.Base) bool { return b.Sequence <= 200 })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	// Right after: the unnamed lists are younger than the grace (their
	// mtime is now) and stay; the segments are scheduled again.
	rep := run(t, inner, c, opts)
	if len(rep.Dropped) != 0 || len(rep.Notes) != 2 || !strings.Contains(rep.Notes[0], "within the grace") {
		t.Fatalf("right after: dropped %+v, notes %q", rep.Dropped, rep.Notes)
	}
	// Once they are older than the grace: dropped bases, scheduled.
	c.advance(2 * time.Hour)
	rep = run(t, inner, c, opts)
	if got := seqs(rep.Dropped); !slices.Equal(got, []uint64{100, 200}) || rep.Dropped[0].Named {
		t.Fatalf("later: dropped %v", rep.Dropped)
	}
	c.advance(2 * time.Hour)
	run(t, inner, c, opts)
	left := keys(t, inner)
	for _, k := range left {
		if strings.Contains(k, manifest.BasePrefix(1, 100)) || strings.Contains(k, manifest.BasePrefix(1, 200)) || k == sstKey("a.sst") || k == sstKey("b.sst") {
			t.Errorf("%s is still there", k)
		}
	}
	if len(left) != len(all)-4-4-2 { // 2 bases of 2 objects, 4 segments, 2 SST files
		t.Errorf("%d objects left of %d: %v", len(left), len(all), left)
	}
}

// TestRunSweepInterrupted: a sweep that stops half-way (the store fails a
// delete) keeps its record, and the next run finishes it.
func TestRunSweepInterrupted(t *testing.T) {
	inner := line().materialize(t)
	all := keys(t, inner)
	fs := faultstore.New(inner)
	fs.FailNth(faultstore.Delete, 4, objstore.ErrUnreachable)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 1}}
	rep, err := tryRun(fs, c, opts)
	if !errors.Is(err, objstore.ErrUnreachable) || len(rep.Records) != 1 {
		t.Fatalf("first run: %v, %+v", err, rep)
	}
	if got := keys(t, inner); !slices.Contains(got, rep.Records[0]) {
		t.Fatal("the record of the interrupted sweep is gone")
	}
	scheduled := objectKeys(rep.Scheduled)
	rep = run(t, inner, c, opts)
	if len(rep.Swept) != 1 || rep.Swept[0].Deleted+rep.Swept[0].Gone != len(scheduled) {
		t.Fatalf("second run: %+v", rep.Swept)
	}
	if got, want := keys(t, inner), without(all, scheduled); !slices.Equal(got, want) {
		t.Fatalf("left %v\nwant %v", got, want)
	}
}

// TestRunSweepJudgesAgain: between the record and its sweep, a dropped
// base comes back into the manifest and an SST file is written again (a
// base upload reuses it): the sweep keeps both and says why. When a later
// prune drops the base again, its objects get a new grace.
func TestRunSweepJudgesAgain(t *testing.T) {
	s := line().materialize(t)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	run(t, s, c, opts)
	ctx := context.Background()
	fl, _, err := manifest.ReadFileList(ctx, s, manifest.FileListKey(1, 200))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
		m.Bases = append(m.Bases, fl.Base())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Hour + time.Minute)
	// a.sst, named only by dropped base 100, was written again 10 minutes
	// ago.
	fresh := c.Now().Add(-10 * time.Minute)
	if err := os.Chtimes(filepath.Join(s.Root(), sstKey("a.sst")), fresh, fresh); err != nil {
		t.Fatal(err)
	}
	rep := run(t, s, c, Options{Policy: Policy{KeepLast: 3}, Grace: time.Hour})
	if len(rep.Swept) != 1 || len(rep.Scheduled) != 0 {
		t.Fatalf("swept %+v, scheduled %v", rep.Swept, objectKeys(rep.Scheduled))
	}
	why := map[string]string{}
	for _, o := range rep.Swept[0].Kept {
		why[o.Key] = o.Why
	}
	if !strings.Contains(why[manifest.FileListKey(1, 200)], "in the manifest again") ||
		!strings.Contains(why[manifest.BasePrefix(1, 200)+"CURRENT"], "in the manifest again") ||
		!strings.Contains(why[manifest.SegmentKey(1, 201)], "restores of timeline 1 from its base at 200 read it") ||
		!strings.Contains(why[sstKey("a.sst")], "written 10m0s ago, within the grace 1h0m0s") {
		t.Errorf("kept: %v", why)
	}
	left := keys(t, s)
	if !slices.Contains(left, manifest.FileListKey(1, 200)) || slices.Contains(left, manifest.FileListKey(1, 100)) ||
		!slices.Contains(left, manifest.SegmentKey(1, 201)) || slices.Contains(left, manifest.SegmentKey(1, 1)) {
		t.Errorf("left: %v", left)
	}

	// Dropped again: its objects wait for a grace from now.
	rep = run(t, s, c, opts)
	if len(rep.Records) != 1 || !slices.Contains(objectKeys(rep.Scheduled), manifest.FileListKey(1, 200)) {
		t.Fatalf("dropped again: %+v", rep)
	}
	c.advance(59 * time.Minute)
	if rep = run(t, s, c, opts); len(rep.Swept) != 0 || !slices.Contains(keys(t, s), manifest.FileListKey(1, 200)) {
		t.Fatalf("base 200's objects went before their new grace: %+v", rep.Swept)
	}
	c.advance(2 * time.Minute)
	run(t, s, c, opts)
	if left := keys(t, s); slices.Contains(left, manifest.FileListKey(1, 200)) || slices.Contains(left, manifest.SegmentKey(1, 201)) {
		t.Errorf("after the new grace: %v", left)
	}
}

// TestRunDropAgainSameRun: a base that came back is dropped again by the
// run that sweeps the older record holding its objects: that sweep leaves
// them to the new record.
func TestRunDropAgainSameRun(t *testing.T) {
	s := line().materialize(t)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	run(t, s, c, opts)
	ctx := context.Background()
	fl, _, err := manifest.ReadFileList(ctx, s, manifest.FileListKey(1, 200))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
		m.Bases = append(m.Bases, fl.Base())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.advance(time.Hour + time.Minute)
	rep := run(t, s, c, opts)
	if len(rep.Swept) != 1 || len(rep.Waiting) != 1 {
		t.Fatalf("swept %+v, waiting %+v", rep.Swept, rep.Waiting)
	}
	for _, o := range rep.Swept[0].Kept {
		if !strings.Contains(o.Why, "held by record "+rep.Records[0]) {
			t.Errorf("kept %s: %s", o.Key, o.Why)
		}
	}
	if left := keys(t, s); !slices.Contains(left, manifest.FileListKey(1, 200)) || !slices.Contains(left, manifest.SegmentKey(1, 201)) {
		t.Errorf("base 200 went without its new grace: %v", left)
	}
}

// TestRunHostileRecord: a pending record that names the manifest (or that
// breaks the format some other way) stops the prune before it changes
// anything, naming the record.
func TestRunHostileRecord(t *testing.T) {
	s := line().materialize(t)
	all := keys(t, s)
	key := manifest.PruneRecordKey(time.Now(), 1)
	doc := `{"format":1,"created":"` + mustParseKeyTime(t, key) + `","not_before":"` + mustParseKeyTime(t, key) +
		`","policy":"x","objects":[{"key":"manifest.json","why":"evil"}]}`
	putBytes(t, s, key, []byte(doc))
	_, err := tryRun(s, newClock(), Options{Policy: Policy{KeepLast: 1}})
	if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "objects[0].key") {
		t.Fatalf("prune with a hostile record: %v", err)
	}
	if got := keys(t, s); len(got) != len(all)+1 || baseSeqs(t, s)[0] != 100 {
		t.Fatalf("the prune changed the archive")
	}
	putBytes(t, s, "prune/notes.txt", []byte("hello"))
	if err := os.Remove(filepath.Join(s.Root(), key)); err != nil {
		t.Fatal(err)
	}
	if _, err := tryRun(s, newClock(), Options{Policy: Policy{KeepLast: 1}}); !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "prune/notes.txt") {
		t.Fatalf("prune with a stranger under prune/: %v", err)
	}
}

func mustParseKeyTime(t *testing.T, key string) string {
	tm, err := manifest.ParsePruneRecordKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return tm.Format(time.RFC3339Nano)
}

// TestRunConcurrentCommit: the manifest changes between the prune's scan
// and its commit (an archiver adds a base): the prune plans again from the
// new manifest, and the new base is kept.
func TestRunConcurrentCommit(t *testing.T) {
	inner := line().materialize(t)
	ctx := context.Background()
	fl := fileList(1, 450, time.Now(), "f.sst")
	for _, f := range fl.Files {
		putBytes(t, inner, f.Key, []byte(f.Name))
	}
	if _, err := manifest.PutFileList(ctx, inner, fl); err != nil {
		t.Fatal(err)
	}
	hs := &hookStore{Store: inner, key: manifest.ManifestKey, before: func() {
		if _, _, err := manifest.Update(ctx, inner, nil, func(m *manifest.Manifest) error {
			m.Bases = append(m.Bases, fl.Base())
			return nil
		}); err != nil {
			t.Error(err)
		}
	}}
	rep := run(t, hs, newClock(), Options{Policy: Policy{KeepLast: 2}})
	if rep.Attempts != 2 {
		t.Errorf("%d attempts, want 2", rep.Attempts)
	}
	if got := baseSeqs(t, inner); !slices.Equal(got, []uint64{400, 450}) {
		t.Errorf("bases %v, want [400 450]", got)
	}
	if !slices.Contains(keys(t, inner), sstKey("f.sst")) {
		t.Error("the new base's SST file is gone")
	}
}

// TestRunAs: a prune that runs for an archiver stops as fenced when the
// manifest names another writer, and changes nothing.
func TestRunAs(t *testing.T) {
	a := line()
	a.m.Writer = &manifest.Writer{Timeline: 1, Epoch: 3, ID: "archiver-2", Host: "h", Since: now}
	s := a.materialize(t)
	me := &manifest.Writer{Timeline: 1, Epoch: 2, ID: "archiver-1"}
	if _, err := tryRun(s, newClock(), Options{Policy: Policy{KeepLast: 1}, As: me}); !errors.Is(err, manifest.ErrFenced) {
		t.Fatalf("as another writer: %v", err)
	}
	if got := baseSeqs(t, s); len(got) != 4 {
		t.Fatalf("bases %v", got)
	}
	me.Epoch, me.ID = 3, "archiver-2"
	run(t, s, newClock(), Options{Policy: Policy{KeepLast: 1}, As: me})
	if got := baseSeqs(t, s); len(got) != 1 {
		t.Fatalf("as the writer: bases %v", got)
	}
	m, _, _ := manifest.Load(context.Background(), s)
	if m.Writer == nil || m.Writer.ID != "archiver-2" || m.Writer.Epoch != 3 {
		t.Errorf("the prune changed the writer: %+v", m.Writer)
	}
}

// TestRunUnreadableList: an unnamed files.json that cannot be read holds
// every SST file; the rest of the prune goes on.
func TestRunUnreadableList(t *testing.T) {
	s := line().materialize(t)
	putBytes(t, s, manifest.FileListKey(1, 250), []byte("{not json"))
	rep := run(t, s, newClock(), Options{Policy: Policy{KeepLast: 1}})
	for _, o := range rep.Scheduled {
		if o.Kind == KindSST {
			t.Errorf("scheduled %s while a file list cannot be read", o.Key)
		}
	}
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], manifest.FileListKey(1, 250)) || len(rep.Swept) != 1 {
		t.Errorf("notes %q, swept %+v", rep.Notes, rep.Swept)
	}
}

// listGets counts the gets of file lists.
type listGets struct {
	objstore.Store
	n int
}

func (g *listGets) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if strings.HasSuffix(key, "/"+manifest.FileListName) {
		g.n++
	}
	return g.Store.Get(ctx, key, opts)
}

// TestScanCacheFollowsETag: a run's scans read each file list once while
// it stays the same, and read again an unnamed list that was replaced
// (manifest.ReplaceFileList): the cache goes by the list's ETag.
func TestScanCacheFollowsETag(t *testing.T) {
	a := line()
	key := a.unnamed(1, 450, time.Minute, "x.sst")
	s := &listGets{Store: a.materialize(t)}
	ctx := context.Background()
	cache := listCache{}
	if _, err := scan(ctx, s, cache); err != nil {
		t.Fatal(err)
	}
	if s.n != 5 {
		t.Fatalf("the first scan read %d file lists, want 5", s.n)
	}
	v, err := scan(ctx, s, cache)
	if err != nil || s.n != 5 {
		t.Fatalf("a scan of the same archive read %d lists more (%v): want none", s.n-5, err)
	}
	fl := fileList(1, 450, now, "y.sst")
	if _, err := manifest.ReplaceFileList(ctx, s, fl); err != nil {
		t.Fatal(err)
	}
	if v, err = scan(ctx, s, cache); err != nil {
		t.Fatal(err)
	}
	names := func(fl *manifest.FileList) (out []string) {
		for _, f := range fl.Files {
			out = append(out, f.Name)
		}
		return out
	}
	if got := names(v.Lists[key]); !slices.Contains(got, "y.sst") || slices.Contains(got, "x.sst") || s.n != 6 {
		t.Fatalf("after the list was replaced the scan has %v (%d reads): want the new list, read once more", got, s.n-5)
	}
}
