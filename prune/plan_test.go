package prune

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// line is one timeline with bases at 100 (10 days ago), 200 (5 days ago),
// 300 (2 days ago) and 400 (1 hour ago), and segments from 1 to 499.
func line() *archive {
	a := newArchive()
	a.base(1, 100, 10, "a.sst", "b.sst")
	a.base(1, 200, 5, "b.sst", "c.sst")
	a.base(1, 300, 2, "c.sst", "d.sst")
	a.base(1, 400, 1.0/24, "d.sst", "e.sst")
	a.chain(1, 1, 150, 201, 250, 301, 350, 450, 500)
	return a
}

func TestPlanPolicies(t *testing.T) {
	cases := []struct {
		name    string
		policy  Policy
		kept    []uint64
		segs    []string
		ssts    []string
		restore []manifest.Range
	}{
		{"keep-last 2", Policy{KeepLast: 2}, []uint64{300, 400},
			segKeys(1, 1, 150, 201, 250), []string{sstKey("a.sst"), sstKey("b.sst")}, []manifest.Range{{From: 300, To: 499}}},
		{"keep-last 1", Policy{KeepLast: 1}, []uint64{400},
			segKeys(1, 1, 150, 201, 250, 301), []string{sstKey("a.sst"), sstKey("b.sst"), sstKey("c.sst")}, []manifest.Range{{From: 400, To: 499}}},
		{"keep-last 9 keeps all", Policy{KeepLast: 9}, []uint64{100, 200, 300, 400},
			nil, nil, []manifest.Range{{From: 100, To: 499}}},
		// Within 3 days: 300 and 400, and 200, the newest before the cutoff.
		{"keep-within 3d", Policy{KeepWithin: 3 * day}, []uint64{200, 300, 400},
			segKeys(1, 1, 150), []string{sstKey("a.sst")}, []manifest.Range{{From: 200, To: 499}}},
		{"keep-within 1h30m", Policy{KeepWithin: 90 * time.Minute}, []uint64{300, 400},
			segKeys(1, 1, 150, 201, 250), []string{sstKey("a.sst"), sstKey("b.sst")}, []manifest.Range{{From: 300, To: 499}}},
		{"keep-within 30d keeps all", Policy{KeepWithin: 30 * day}, []uint64{100, 200, 300, 400},
			nil, nil, []manifest.Range{{From: 100, To: 499}}},
		{"both: the union", Policy{KeepLast: 1, KeepWithin: 3 * day}, []uint64{200, 300, 400},
			segKeys(1, 1, 150), []string{sstKey("a.sst")}, []manifest.Range{{From: 200, To: 499}}},
		{"both: the union, other way", Policy{KeepLast: 3, KeepWithin: time.Minute}, []uint64{200, 300, 400},
			segKeys(1, 1, 150), []string{sstKey("a.sst")}, []manifest.Range{{From: 200, To: 499}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pl := line().plan(t, c.policy)
			if got := seqs(pl.Kept); !slices.Equal(got, c.kept) {
				t.Errorf("kept %v, want %v", got, c.kept)
			}
			if got := deleted(pl, KindSegment); !slices.Equal(got, c.segs) {
				t.Errorf("segments deleted %v, want %v", got, c.segs)
			}
			if got := deleted(pl, KindSST); !slices.Equal(got, c.ssts) {
				t.Errorf("SST files deleted %v, want %v", got, c.ssts)
			}
			if got := ranges(pl.After, 1); !slices.Equal(got, c.restore) {
				t.Errorf("restorable after %v, want %v", got, c.restore)
			}
			if got := ranges(pl.Before, 1); !slices.Equal(got, []manifest.Range{{From: 100, To: 499}}) {
				t.Errorf("restorable before %v", got)
			}
			if pl.DropsBases != (len(c.kept) < 4) {
				t.Errorf("DropsBases %v with %d bases kept", pl.DropsBases, len(c.kept))
			}
			// Every object of a dropped base goes, and no object of a kept one.
			for _, d := range pl.Dropped {
				for _, key := range []string{d.FileList, manifest.BasePrefix(d.Timeline, d.Sequence) + "CURRENT"} {
					if !slices.Contains(deleted(pl, KindFileList), key) && !slices.Contains(deleted(pl, KindBaseFile), key) {
						t.Errorf("dropped base %d: %s is not deleted", d.Sequence, key)
					}
				}
			}
			if n := len(pl.Delete); n != len(c.segs)+len(c.ssts)+2*(4-len(c.kept)) {
				t.Errorf("%d objects deleted: %+v", n, pl.Delete)
			}
		})
	}
}

func TestPlanWhy(t *testing.T) {
	pl := line().plan(t, Policy{KeepLast: 1, KeepWithin: 3 * day})
	whys := map[uint64]string{}
	for _, b := range append(pl.Kept, pl.Dropped...) {
		whys[b.Sequence] = strings.Join(b.Why, "; ")
	}
	for seq, want := range map[uint64]string{
		400: "the newest base of timeline 1",
		300: "taken within 3d",
		200: "the newest base of timeline 1 taken before 2026-02-26 12:00:00Z",
		100: "policy: not one of the 1 newest bases of any timeline; taken 2026-02-19 12:00:00Z, before 2026-02-26 12:00:00Z",
	} {
		if !strings.Contains(whys[seq], want) {
			t.Errorf("base %d: why %q, want it to say %q", seq, whys[seq], want)
		}
	}
	for _, o := range pl.Delete {
		if o.Why == "" {
			t.Errorf("%s: no why", o.Key)
		}
	}
	if w := pl.Delete[len(pl.Delete)-1].Why; !strings.Contains(w, "before the oldest kept base of every timeline that reads them (timeline 1 from 200)") {
		t.Errorf("segment why: %q", w)
	}
}

// TestPlanStraddling: a segment that holds the oldest kept base's sequence
// and later ones stays; one that ends exactly at the base goes.
func TestPlanStraddling(t *testing.T) {
	a := newArchive()
	a.base(1, 100, 3)
	a.base(1, 250, 1)
	a.chain(1, 101, 200, 251, 300, 400) // [200, 251) ends at 250: goes
	pl := a.plan(t, Policy{KeepLast: 1})
	if got := deleted(pl, KindSegment); !slices.Equal(got, segKeys(1, 101, 200)) {
		t.Errorf("deleted %v", got)
	}
	a = newArchive()
	a.base(1, 100, 3)
	a.base(1, 250, 1)
	a.chain(1, 101, 200, 260, 300) // [200, 260) holds 251..259: stays
	pl = a.plan(t, Policy{KeepLast: 1})
	if got := deleted(pl, KindSegment); !slices.Equal(got, segKeys(1, 101)) {
		t.Errorf("deleted %v", got)
	}
	if got := ranges(pl.After, 1); !slices.Equal(got, []manifest.Range{{From: 250, To: 299}}) {
		t.Errorf("after %v", got)
	}
}

// TestPlanLastSegment: the last segment of a timeline stays even when it
// ends before the oldest kept base (it records where the archive ends).
func TestPlanLastSegment(t *testing.T) {
	a := newArchive()
	a.base(1, 100, 3)
	a.chain(1, 101, 200, 301)
	a.base(1, 300, 1)
	pl := a.plan(t, Policy{KeepLast: 1})
	if got := deleted(pl, KindSegment); !slices.Equal(got, segKeys(1, 101)) {
		t.Errorf("deleted %v, want only the first segment", got)
	}
}

// TestPlanHoles: a hole in the kept window stays a hole; a segment that
// ends before it, below the oldest kept base, goes.
func TestPlanHoles(t *testing.T) {
	a := newArchive()
	a.base(1, 100, 5)
	a.chain(1, 101, 150, 200)
	a.hole(1, 200, 249) // recorded with the base at 249
	a.base(1, 249, 3)
	a.chain(1, 250, 300, 320)
	a.hole(1, 320, 339)
	a.base(1, 339, 2)
	a.chain(1, 340, 400)
	a.base(1, 399, 1)
	pl := a.plan(t, Policy{KeepLast: 3})
	if got := seqs(pl.Kept); !slices.Equal(got, []uint64{249, 339, 399}) {
		t.Fatalf("kept %v", got)
	}
	if got := deleted(pl, KindSegment); !slices.Equal(got, segKeys(1, 101, 150)) {
		t.Errorf("deleted %v", got)
	}
	want := []manifest.Range{{From: 249, To: 319}, {From: 339, To: 399}}
	if got := ranges(pl.After, 1); !slices.Equal(got, want) {
		t.Errorf("after %v, want %v", got, want)
	}
}

// TestPlanNoBase: a timeline with no base keeps every segment, and the
// planner keeps nothing it cannot restore from.
func TestPlanNoBase(t *testing.T) {
	a := newArchive()
	a.chain(1, 1, 100, 200, 300)
	pl := a.plan(t, Policy{KeepLast: 1})
	if len(pl.Delete) != 0 || pl.DropsBases {
		t.Errorf("a timeline without a base: deletes %+v", pl.Delete)
	}
}

// branched: timeline 1 with bases at 100 and 260; timeline 2 branches from
// it at 250 and has bases at 300 and 400. Timeline 1 wrote on to 270 and
// was ended by a marker at 270.
func branched() *archive {
	a := newArchive([2]uint64{1, 250})
	a.base(1, 100, 10, "a.sst")
	a.base(1, 260, 6, "a.sst", "b.sst")
	a.base(2, 300, 5, "b.sst", "c.sst")
	a.base(2, 400, 1, "c.sst")
	a.chain(1, 1, 150, 240, 265, 270)
	a.segment(1, 270, 270) // the end marker
	a.chain(2, 251, 320, 401, 500)
	return a
}

func TestPlanBranches(t *testing.T) {
	pl := branched().plan(t, Policy{KeepLast: 1})
	if got := seqs(pl.Kept); !slices.Equal(got, []uint64{260, 400}) {
		t.Errorf("kept %v", got)
	}
	// [240, 265) holds 261..264, after kept base 260.
	wantSegs := append(segKeys(1, 1, 150), segKeys(2, 251, 320)...)
	if got := deleted(pl, KindSegment); !slices.Equal(got, wantSegs) {
		t.Errorf("deleted %v, want %v", got, wantSegs)
	}
	// The end marker (the last segment of timeline 1) stays: it fences
	// the old primary.
	if got := ranges(pl.After, 1); !slices.Equal(got, []manifest.Range{{From: 260, To: 269}}) {
		t.Errorf("timeline 1 after %v", got)
	}
	if got := ranges(pl.After, 2); !slices.Equal(got, []manifest.Range{{From: 400, To: 499}}) {
		t.Errorf("timeline 2 after %v", got)
	}
	// a.sst is named by dropped 100 and kept 260; b.sst by kept 260.
	if got := deleted(pl, KindSST); len(got) != 0 {
		t.Errorf("SST files deleted: %v", got)
	}

	// Keep-last 3: timeline 2 keeps 100 of timeline 1, so timeline 1's
	// segments up to the branch point are read by timeline 2's restores,
	// and timeline 1's own restores read the rest from 100.
	pl = branched().plan(t, Policy{KeepLast: 3})
	if got := seqs(pl.Kept); !slices.Equal(got, []uint64{100, 260, 300, 400}) {
		t.Errorf("keep-last 3: kept %v", got)
	}
	if got := deleted(pl, KindSegment); len(got) != 0 {
		t.Errorf("keep-last 3: deleted %v", got)
	}
	if got := ranges(pl.After, 2); !slices.Equal(got, []manifest.Range{{From: 100, To: 499}}) {
		t.Errorf("keep-last 3: timeline 2 after %v", got)
	}
}

// TestReadingsStopAtTheBranch: a child's restores read its parent's
// segments up to the branch point, not after.
func TestReadingsStopAtTheBranch(t *testing.T) {
	a := newArchive([2]uint64{1, 250})
	a.base(1, 100, 10)
	rs := readings(a.m)
	var child []reading
	for _, r := range rs[1] {
		if r.by == 2 {
			child = append(child, r)
		}
	}
	if len(child) != 1 || child[0].from != 101 || child[0].to != 250 {
		t.Errorf("timeline 2 reads of timeline 1: %+v, want [101, 250]", child)
	}
	if len(rs[2]) != 1 || rs[2][0].from != 251 || rs[2][0].to != math.MaxUint64 {
		t.Errorf("timeline 2 reads of itself: %+v", rs[2])
	}
}

// TestPlanDeadBranch: a child timeline with no base of its own and no
// usable base keeps all of its segments and pins nothing of its parent.
func TestPlanDeadBranch(t *testing.T) {
	a := newArchive([2]uint64{1, 50})
	a.base(1, 100, 10)
	a.base(1, 200, 1)
	a.chain(1, 1, 120, 201, 300)
	a.chain(2, 51, 60, 70) // branched before any base: nothing restores it
	pl := a.plan(t, Policy{KeepLast: 1})
	if got := deleted(pl, KindSegment); !slices.Equal(got, segKeys(1, 1, 120)) {
		t.Errorf("deleted %v", got)
	}
	// A dead branch whose only usable base is old pins its parent from that
	// base: restores of it must go on working.
	a = newArchive([2]uint64{1, 150})
	a.base(1, 100, 10)
	a.base(1, 200, 1)
	a.chain(1, 1, 101, 201, 300)
	a.chain(2, 151, 160)
	pl = a.plan(t, Policy{KeepLast: 1})
	if got := seqs(pl.Kept); !slices.Equal(got, []uint64{100, 200}) {
		t.Errorf("kept %v", got)
	}
	if got := deleted(pl, KindSegment); !slices.Equal(got, segKeys(1, 1)) {
		t.Errorf("deleted %v", got)
	}
}

// TestPlanUnnamedLists: an old files.json that the manifest does not name,
// below a kept base, is a dropped base; a recent one, or one at or above
// the newest base, is an upload that may still finish; an unreadable one
// holds every SST file.
func TestPlanUnnamedLists(t *testing.T) {
	a := line()
	orphan := a.unnamed(1, 250, 3*day, "x.sst", "e.sst")
	fresh := a.unnamed(1, 260, time.Minute, "y.sst")
	above := a.unnamed(1, 500, 3*day, "z.sst")
	pl := a.plan(t, Policy{KeepLast: 2})
	lists := deleted(pl, KindFileList)
	if !slices.Contains(lists, orphan) || slices.Contains(lists, fresh) || slices.Contains(lists, above) {
		t.Errorf("file lists deleted: %v", lists)
	}
	ssts := deleted(pl, KindSST)
	if !slices.Contains(ssts, sstKey("x.sst")) || slices.Contains(ssts, sstKey("e.sst")) ||
		slices.Contains(ssts, sstKey("y.sst")) || slices.Contains(ssts, sstKey("z.sst")) {
		t.Errorf("SST files deleted: %v", ssts)
	}
	notes := strings.Join(pl.Notes, "\n")
	if !strings.Contains(notes, fresh+" left alone: written 1m0s ago, within the grace 1h0m0s") ||
		!strings.Contains(notes, above+" left alone: no newer base of timeline 1 is kept") {
		t.Errorf("notes:\n%s", notes)
	}

	v := line().view()
	v.Unreadable["bases/00000001/00000000000001f4/files.json"] = errors.New("bad")
	pl, err := MakePlan(v, Policy{KeepLast: 2}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := deleted(pl, KindSST); len(got) != 0 {
		t.Errorf("SST files deleted while a file list cannot be read: %v", got)
	}
	if len(deleted(pl, KindFileList)) != 2 {
		t.Errorf("the dropped bases' lists should still go: %v", pl.Delete)
	}
}

// TestPlanPending: objects that a pending record holds are not scheduled
// again, unless the manifest as it is now needs them (a base that comes
// back and is dropped again gets a new grace); a file list that a record
// deletes does not hold its SST files; and the objects of its base that no
// record holds (a run that wrote only some of its records) are scheduled.
func TestPlanPending(t *testing.T) {
	a := line()
	a.segs[1] = nil
	a.chain(1, 1, 90, 150, 201, 250, 301, 350, 450, 500)
	// Base 150 was dropped by an earlier prune whose record is pending:
	// it names b.sst too.
	rec := a.unnamed(1, 150, 3*day, "b.sst", "q.sst")
	v := a.view()
	held := Pending{Record: "prune/x.json", Created: now.Add(-time.Minute)}
	v.Pending[rec] = held
	v.Pending[segKeys(1, 1)[0]] = held  // not needed now: stays with its record
	v.Pending[segKeys(1, 90)[0]] = held // needed by base 100 now: a new grace
	pl, err := MakePlan(v, Policy{KeepLast: 2}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if got := deleted(pl, KindSegment); pl.Pending != 2 || !slices.Equal(got, segKeys(1, 90, 150, 201, 250)) {
		t.Errorf("pending %d (want the segment and the list), deleted %v", pl.Pending, got)
	}
	if slices.Contains(deleted(pl, KindFileList), rec) {
		t.Errorf("the pending list was scheduled again")
	}
	if ssts := deleted(pl, KindSST); !slices.Contains(ssts, sstKey("b.sst")) || !slices.Contains(ssts, sstKey("q.sst")) {
		t.Errorf("b.sst is named only by dropped base 200 and by a list being deleted, q.sst only by that list: %v", ssts)
	}
	if !slices.Contains(deleted(pl, KindBaseFile), manifest.BasePrefix(1, 150)+"CURRENT") {
		t.Errorf("the file of the base whose list is pending, which no record holds, was not scheduled: %v", deleted(pl, KindBaseFile))
	}
	if len(pl.Dropped) != 2 {
		t.Errorf("dropped %v: the pending list is not dropped again", seqs(pl.Dropped))
	}
}

// TestCheckCatchesBadPlans: the invariant refuses a plan that deletes a
// segment a kept base needs, a file of a kept base, or a last segment.
func TestCheckCatchesBadPlans(t *testing.T) {
	a := line()
	v := a.view()
	pl := a.plan(t, Policy{KeepLast: 2})
	seg := func(tl uint32, first uint64) Object {
		return Object{Key: manifest.SegmentKey(tl, first), Kind: KindSegment}
	}
	bad := map[string][]Object{
		"a segment in the kept window": append(slices.Clone(pl.Delete), seg(1, 350)),
		"the segment after the base":   append(slices.Clone(pl.Delete), seg(1, 301)),
		"the last segment":             append(slices.Clone(pl.Delete), seg(1, 450)),
		"a kept base's list":           append(slices.Clone(pl.Delete), Object{Key: manifest.FileListKey(1, 300), Kind: KindFileList}),
		"a kept base's SST":            append(slices.Clone(pl.Delete), Object{Key: sstKey("d.sst"), Kind: KindSST}),
	}
	for name, del := range bad {
		if err := Check(v, pl.Manifest, del); !errors.Is(err, ErrUnsafe) {
			t.Errorf("%s: Check = %v, want ErrUnsafe", name, err)
		}
	}
	if err := Check(v, pl.Manifest, pl.Delete); err != nil {
		t.Errorf("the plan itself: %v", err)
	}
}

func TestPolicy(t *testing.T) {
	good := map[string]time.Duration{"7d": 7 * day, "36h": 36 * time.Hour, "90m": 90 * time.Minute, "1d12h": 36 * time.Hour, "0": 0, "0d": 0}
	for s, want := range good {
		if got, err := ParseDuration(s); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "banana", "-1d", "7", "1d-2h", "d", "7days", "1.5d", "-5m"} {
		if got, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", s, got)
		}
	}
	for d, want := range map[time.Duration]string{7 * day: "7d", 36 * time.Hour: "1d12h0m0s", time.Hour: "1h0m0s", 0: "0s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for _, p := range []Policy{{}, {KeepLast: -1}, {KeepWithin: -time.Hour}} {
		if p.Validate() == nil {
			t.Errorf("%+v: no error", p)
		}
	}
	if !errors.Is(Policy{}.Validate(), ErrNoPolicy) {
		t.Error("the empty policy is not ErrNoPolicy")
	}
}
