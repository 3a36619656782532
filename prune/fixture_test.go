package prune

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// now is the time of the hand-built archives; day is a day before it.
var (
	now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	day = 24 * time.Hour
)

// archive is a hand-built view: a manifest, segments, file lists and base
// objects, for planning tests without a store.
type archive struct {
	m     *manifest.Manifest
	segs  map[uint32][]catalog.Segment
	lists map[string]*manifest.FileList
	objs  map[string]objstore.ObjectInfo
}

// newArchive starts an archive with timeline 1 and the children given as
// (parent, branch) pairs, which get ids 2, 3, ...
func newArchive(children ...[2]uint64) *archive {
	a := &archive{m: manifest.New("db-identity", now.Add(-100*day)), segs: map[uint32][]catalog.Segment{},
		lists: map[string]*manifest.FileList{}, objs: map[string]objstore.ObjectInfo{}}
	for _, c := range children {
		if _, err := a.m.AddTimeline(uint32(c[0]), c[1], now.Add(-50*day)); err != nil {
			panic(err)
		}
	}
	return a
}

// sum is a fake SHA-256 for a file name.
func sum(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:])
}

// fileList makes the list of a base of tl at seq with the SST files ssts
// (by name: the same name is the same content) and a CURRENT file.
func fileList(tl uint32, seq uint64, taken time.Time, ssts ...string) *manifest.FileList {
	fl := &manifest.FileList{Format: manifest.Format, Identity: "db-identity", Timeline: tl, Sequence: seq, Created: taken}
	add := func(name, content string) {
		key, err := manifest.FileKey(tl, seq, name, sum(content))
		if err != nil {
			panic(err)
		}
		fl.Files = append(fl.Files, manifest.File{Name: name, Size: int64(len(name)), SHA256: sum(content), Key: key})
	}
	add("CURRENT", "current")
	for _, s := range ssts {
		add(s, s)
	}
	return fl
}

// base adds a base named by the manifest, taken daysAgo days before now.
func (a *archive) base(tl uint32, seq uint64, daysAgo float64, ssts ...string) manifest.Base {
	taken := now.Add(-time.Duration(daysAgo * float64(day)))
	fl := fileList(tl, seq, taken, ssts...)
	a.m.Bases = append(a.m.Bases, fl.Base())
	a.store(fl, taken)
	return fl.Base()
}

// unnamed adds a files.json (and its objects) that the manifest does not
// name, written age ago.
func (a *archive) unnamed(tl uint32, seq uint64, age time.Duration, ssts ...string) string {
	fl := fileList(tl, seq, now.Add(-age), ssts...)
	a.store(fl, now.Add(-age))
	return fl.Base().FileList
}

// store adds the objects of a file list under bases/.
func (a *archive) store(fl *manifest.FileList, at time.Time) {
	key := manifest.FileListKey(fl.Timeline, fl.Sequence)
	a.lists[key] = fl
	a.objs[key] = objstore.ObjectInfo{Key: key, Size: 500, ModTime: at}
	for _, f := range fl.Files {
		if !manifest.IsSST(f.Name) {
			a.objs[f.Key] = objstore.ObjectInfo{Key: f.Key, Size: f.Size, ModTime: at}
		}
	}
}

// chain adds segments of tl: [b0, b1), [b1, b2), ...
func (a *archive) chain(tl uint32, bounds ...uint64) {
	for i := 0; i+1 < len(bounds); i++ {
		a.segment(tl, bounds[i], bounds[i+1])
	}
}

// segment adds the segment [first, next) of tl (next == first: an end
// marker).
func (a *archive) segment(tl uint32, first, next uint64) {
	s := catalog.Segment{Segment: manifest.Segment{First: first, Next: next}, Timeline: tl, Key: manifest.SegmentKey(tl, first), Size: 1000, End: next == first}
	a.segs[tl] = append(a.segs[tl], s)
	slices.SortFunc(a.segs[tl], func(x, y catalog.Segment) int { return int(x.First) - int(y.First) })
}

func (a *archive) hole(tl uint32, from, to uint64) {
	a.m.Holes = append(a.m.Holes, manifest.Hole{Timeline: tl, From: from, To: to, Detected: now, Reason: "test"})
}

func (a *archive) view() *View {
	lists := map[string]*manifest.FileList{}
	for k, v := range a.lists {
		lists[k] = v
	}
	objs := map[string]objstore.ObjectInfo{}
	for k, v := range a.objs {
		objs[k] = v
	}
	return &View{Manifest: a.m, Segments: a.segs, Lists: lists, BaseObjects: objs, Unreadable: map[string]error{}, Pending: map[string]Pending{}}
}

// plan plans with policy p and a grace of an hour, failing the test on an
// error.
func (a *archive) plan(t *testing.T, p Policy) *Plan {
	t.Helper()
	pl, err := MakePlan(a.view(), p, now, time.Hour)
	if err != nil {
		t.Fatalf("plan %v: %v", p, err)
	}
	return pl
}

// seqs returns the sequences of the bases, in order.
func seqs(bs []BaseChoice) []uint64 {
	var out []uint64
	for _, b := range bs {
		out = append(out, b.Sequence)
	}
	return out
}

// deleted returns the keys of the plan's objects of kind.
func deleted(pl *Plan, kind string) []string {
	var out []string
	for _, o := range pl.Delete {
		if o.Kind == kind {
			out = append(out, o.Key)
		}
	}
	return out
}

func segKeys(tl uint32, firsts ...uint64) []string {
	var out []string
	for _, f := range firsts {
		out = append(out, manifest.SegmentKey(tl, f))
	}
	return out
}

func sstKey(name string) string {
	k, _ := manifest.SSTKey(sum(name))
	return k
}

func ranges(cov []manifest.Coverage, tl uint32) []manifest.Range {
	for _, c := range cov {
		if c.Timeline == tl {
			return c.Ranges
		}
	}
	return nil
}
