package prune

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// Regression tests of the review of prune: nothing is left behind for
// good, and a record's time is not taken on trust alone.

// TestRunPartialRecordsLeakNothing: a prune that dropped more than one
// record holds wrote only its first record (the file list and base files
// of base 100) and died. The SST files and segments that were in the other
// records are scheduled again by a later run and deleted.
func TestRunPartialRecordsLeakNothing(t *testing.T) {
	s := line().materialize(t)
	ctx := context.Background()
	c := newClock()
	if _, _, err := manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
		m.Bases = slices.DeleteFunc(m.Bases, func(b manifest.Base) bool { return b.Sequence == 100 })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	r := &manifest.PruneRecord{Format: manifest.Format, Created: c.Now(), NotBefore: c.Now().Add(time.Hour),
		Policy: "keep the last 3 bases of each timeline", Objects: []manifest.PruneObject{
			{Key: manifest.FileListKey(1, 100), Why: "first record of two"},
			{Key: manifest.BasePrefix(1, 100) + "CURRENT", Why: "first record of two"},
		}}
	if _, err := manifest.PutPruneRecord(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	opts := Options{Policy: Policy{KeepLast: 3}, Grace: time.Hour}
	rep := run(t, s, c, opts)
	if !slices.Contains(objectKeys(rep.Scheduled), sstKey("a.sst")) {
		t.Errorf("a.sst, named only by base 100 whose list is pending, was not scheduled: %v", objectKeys(rep.Scheduled))
	}
	c.advance(2 * time.Hour)
	run(t, s, c, opts)
	left := keys(t, s)
	for _, k := range []string{sstKey("a.sst"), manifest.FileListKey(1, 100), manifest.SegmentKey(1, 1)} {
		if slices.Contains(left, k) {
			t.Errorf("%s is still there: %v", k, left)
		}
	}
}

// TestRunCarriesOverRecentSST: an SST file that the sweep keeps because
// it was written within the grace (a base upload that may reuse it) stays
// scheduled in a new record, and goes once the upload that wrote it is
// older than the grace and no file list names it.
func TestRunCarriesOverRecentSST(t *testing.T) {
	s := line().materialize(t)
	c := newClock()
	opts := Options{Policy: Policy{KeepLast: 3}, Grace: time.Hour}
	run(t, s, c, opts) // drops 100: a.sst is scheduled
	c.advance(61 * time.Minute)
	fresh := c.Now().Add(-10 * time.Minute)
	if err := os.Chtimes(filepath.Join(s.Root(), sstKey("a.sst")), fresh, fresh); err != nil {
		t.Fatal(err)
	}
	rep := run(t, s, c, opts)
	if len(rep.Swept) != 1 || len(rep.Swept[0].Kept) != 1 || !strings.Contains(rep.Swept[0].Kept[0].Why, "within the grace") {
		t.Fatalf("swept %+v", rep.Swept)
	}
	if len(rep.Waiting) != 1 || rep.Waiting[0].Objects != 1 {
		t.Fatalf("the kept SST file is in no record: waiting %+v", rep.Waiting)
	}
	c.advance(2 * time.Hour)
	run(t, s, c, opts)
	left := keys(t, s)
	if slices.Contains(left, sstKey("a.sst")) {
		t.Fatalf("a.sst, named by no file list, is still there: %v", left)
	}
	for _, k := range left {
		if strings.HasPrefix(k, manifest.PrunePrefix) {
			t.Errorf("record %s is left", k)
		}
	}
}

// TestRunDueFromStoreTime: a record whose JSON time is two hours old (the
// clock of the host that wrote it is behind) but that the store wrote just
// now waits a grace from when the store wrote it.
func TestRunDueFromStoreTime(t *testing.T) {
	s := line().materialize(t)
	ctx := context.Background()
	c := newClock()
	ageObjects(t, s, c.Now().Add(-48*time.Hour))
	if _, _, err := manifest.Update(ctx, s, nil, func(m *manifest.Manifest) error {
		m.Bases = slices.DeleteFunc(m.Bases, func(b manifest.Base) bool { return b.Sequence == 100 })
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	behind := c.Now().Add(-2 * time.Hour)
	r := &manifest.PruneRecord{Format: manifest.Format, Created: behind, NotBefore: behind.Add(time.Hour),
		Policy: "keep the last 3 bases of each timeline", Objects: []manifest.PruneObject{
			{Key: manifest.FileListKey(1, 100), Why: "dropped"},
		}}
	if _, err := manifest.PutPruneRecord(ctx, s, r); err != nil {
		t.Fatal(err)
	}
	rep := run(t, s, c, Options{Policy: Policy{KeepLast: 3}, Grace: time.Hour})
	if len(rep.Swept) != 0 || !slices.Contains(keys(t, s), manifest.FileListKey(1, 100)) {
		t.Fatalf("a record stored just now was swept at once: %+v", rep.Swept)
	}
}

// TestRunSlowCommitRecordsAgain: the manifest commit takes longer than the
// allowance that the record's not_before holds for it: the run writes its
// records again after the commit, so that the objects wait a whole grace
// after the commit.
func TestRunSlowCommitRecordsAgain(t *testing.T) {
	inner := line().materialize(t)
	c := newClock()
	start := c.Now()
	hs := &hookStore{Store: inner, key: manifest.ManifestKey, before: func() { c.advance(time.Minute) }}
	opts := Options{Policy: Policy{KeepLast: 2}, Grace: time.Hour}
	rep := run(t, hs, c, opts)
	if len(rep.Records) != 2 {
		t.Fatalf("records %v: want the one before the commit and the one after", rep.Records)
	}
	c.advance(start.Add(time.Hour + 30*time.Second).Sub(c.Now()))
	run(t, inner, c, opts)
	if !slices.Contains(keys(t, inner), manifest.FileListKey(1, 100)) {
		t.Fatal("base 100's file list went less than a grace after the commit that dropped it")
	}
	c.advance(2 * time.Minute)
	run(t, inner, c, opts)
	if left := keys(t, inner); slices.Contains(left, manifest.FileListKey(1, 100)) {
		t.Fatalf("after the grace: %v", left)
	}
}
