package prune

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// Kinds of objects, in the order a sweep deletes them: a base's file list
// before its files, so that a base is never seen whole with files missing.
const (
	KindFileList = "file list"
	KindBaseFile = "base file"
	KindSST      = "sst"
	KindSegment  = "segment"
)

var kindOrder = map[string]int{KindFileList: 0, KindBaseFile: 1, KindSST: 2, KindSegment: 3}

// Object is one object that a plan deletes, and why.
type Object struct {
	Key  string `json:"key"`
	Kind string `json:"kind"`
	Size int64  `json:"size"`
	Why  string `json:"why"`
}

// BaseChoice is a base and why a plan keeps or drops it.
type BaseChoice struct {
	manifest.Base
	// Named is false for a files.json that the manifest does not name.
	Named bool     `json:"named"`
	Why   []string `json:"why"`
}

// Plan is what one prune does: the bases it keeps and drops, the objects
// it deletes, and the restorable ranges before and after.
type Plan struct {
	Policy  Policy
	Now     time.Time
	Grace   time.Duration
	Kept    []BaseChoice
	Dropped []BaseChoice
	Delete  []Object
	// Pending counts the deletable objects that a pending record holds
	// already.
	Pending int
	// Notes are things left alone, for people.
	Notes []string
	// Before and After are the restorable ranges of each timeline.
	Before, After []manifest.Coverage
	// Manifest is the manifest without the dropped bases: what phase 1
	// commits when DropsBases.
	Manifest   *manifest.Manifest
	DropsBases bool
	// dying are the file lists that the manifest does not name and that a
	// pending record deletes: their objects and SST files that no record
	// holds (a run that wrote only some of its records) are scheduled too.
	dying []BaseChoice
}

// MakePlan applies the policy to the view at time now. grace is how old an
// unnamed files.json must be to count as a dropped base. It checks its own
// result (Check) and fails with ErrUnsafe rather than return a plan that
// would lose a kept restorable sequence.
func MakePlan(v *View, p Policy, now time.Time, grace time.Duration) (*Plan, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	m := v.Manifest
	reasons := keepReasons(m, p, now)
	pl := &Plan{Policy: p, Now: now, Grace: grace, Manifest: keptManifest(m, reasons)}
	for _, b := range m.Bases {
		if why, ok := reasons[b.FileList]; ok {
			pl.Kept = append(pl.Kept, BaseChoice{Base: b, Named: true, Why: why})
		} else {
			pl.Dropped = append(pl.Dropped, BaseChoice{Base: b, Named: true, Why: []string{dropReason(b, p, now)}})
			pl.DropsBases = true
		}
	}
	pl.Dropped = append(pl.Dropped, pl.orphans(v)...)
	pl.addSegments(v)
	pl.addBaseObjects(v)
	pl.sortOut()
	if err := pl.coverage(v); err != nil {
		return nil, err
	}
	if err := Check(v, pl.Manifest, pl.Delete); err != nil {
		return nil, err
	}
	return pl, nil
}

// keptManifest is m without the bases that reasons does not keep.
func keptManifest(m *manifest.Manifest, reasons map[string][]string) *manifest.Manifest {
	mk := *m
	mk.Bases = nil
	for _, b := range m.Bases {
		if _, ok := reasons[b.FileList]; ok {
			mk.Bases = append(mk.Bases, b)
		}
	}
	return &mk
}

// orphans returns the files.json that the manifest does not name and that
// are the lists of dropped bases: older than the grace (an upload in
// progress names its base right after its list), on a timeline of the
// manifest, and older than a base the manifest names on that timeline (an
// archiver may adopt a list at its own checkpoint's sequence, never below
// the newest base). Others are left alone, with a note. A list that a
// pending record deletes goes to pl.dying instead.
func (pl *Plan) orphans(v *View) []BaseChoice {
	var out []BaseChoice
	for _, key := range sortedKeys(v.Lists) {
		fl := v.Lists[key]
		if named(v.Manifest, key) {
			continue
		}
		if v.dying(key) {
			pl.dying = append(pl.dying, BaseChoice{Base: fl.Base(), Why: []string{"its file list is in pending record " + v.Pending[key].Record}})
			continue
		}
		if why := pl.orphanProblem(v, key, fl); why != "" {
			pl.Notes = append(pl.Notes, fmt.Sprintf("%s left alone: %s", key, why))
			continue
		}
		out = append(out, BaseChoice{Base: fl.Base(), Why: []string{fmt.Sprintf(
			"the manifest does not name it (a base that an earlier prune dropped, or whose upload stopped), its file list is older than the grace %s, and a newer base of timeline %d is kept",
			FormatDuration(pl.Grace), fl.Timeline)}})
	}
	for _, key := range sortedKeys(v.Unreadable) {
		pl.Notes = append(pl.Notes, fmt.Sprintf("%s left alone, and no SST file is deleted while it is there: %v", key, v.Unreadable[key]))
	}
	return out
}

// orphanProblem says why the unnamed list fl at key is not a dropped base,
// or "".
func (pl *Plan) orphanProblem(v *View, key string, fl *manifest.FileList) string {
	if _, ok := v.Manifest.Timeline(fl.Timeline); !ok {
		return fmt.Sprintf("timeline %d is not in the manifest", fl.Timeline)
	}
	if age := pl.Now.Sub(v.modTime(key)); age < pl.Grace {
		return fmt.Sprintf("written %s ago, within the grace %s (a base upload in progress?)", age.Round(time.Second), FormatDuration(pl.Grace))
	}
	for _, b := range pl.Manifest.Bases {
		if b.Timeline == fl.Timeline && b.Sequence > fl.Sequence {
			return ""
		}
	}
	return fmt.Sprintf("no newer base of timeline %d is kept: an archiver may still adopt it", fl.Timeline)
}

func named(m *manifest.Manifest, listKey string) bool {
	for _, b := range m.Bases {
		if b.FileList == listKey {
			return true
		}
	}
	return false
}

// addSegments adds the segments that no kept base needs.
func (pl *Plan) addSegments(v *View) {
	verdicts := segmentVerdicts(pl.Manifest, v.Segments)
	now := segmentVerdicts(v.Manifest, v.Segments) // with every base named now
	for _, t := range v.Manifest.Timelines {
		for _, s := range v.Segments[t.ID] {
			if vd := verdicts[s.Key]; !vd.keep {
				pl.add(v, Object{Key: s.Key, Kind: KindSegment, Size: s.Size, Why: vd.why}, now[s.Key].keep)
			}
		}
	}
}

// going returns the dropped bases and the dying ones.
func (pl *Plan) going() []BaseChoice {
	return append(slices.Clone(pl.Dropped), pl.dying...)
}

// addBaseObjects adds the objects under each dropped base's prefix, and
// the SST files that only dropped bases name. A key under the prefix that
// rockstream never writes (a folder marker of an S3 console, a note that
// someone left) is left alone, with a note.
func (pl *Plan) addBaseObjects(v *View) {
	dropped := map[string]bool{}
	keys := sortedKeys(v.BaseObjects)
	for _, d := range pl.going() {
		dropped[d.FileList] = true
		prefix := manifest.BasePrefix(d.Timeline, d.Sequence)
		why := fmt.Sprintf("of base %d/%d, dropped: %s", d.Timeline, d.Sequence, strings.Join(d.Why, "; "))
		for _, key := range keys {
			if !strings.HasPrefix(key, prefix) {
				continue
			}
			if err := manifest.CheckPrunable(key); err != nil {
				pl.Notes = append(pl.Notes, fmt.Sprintf("%s left alone: it is under the prefix of dropped base %d/%d, but it is no key that rockstream writes (%v); delete it by hand if nothing needs it", key, d.Timeline, d.Sequence, err))
				continue
			}
			kind := KindBaseFile
			if key == d.FileList {
				kind = KindFileList
			}
			pl.add(v, Object{Key: key, Kind: kind, Size: v.BaseObjects[key].Size, Why: why}, d.Named)
		}
	}
	if len(v.Unreadable) > 0 {
		return
	}
	pl.addSSTs(v, dropped)
}

// addSSTs adds the SST files that the dropped bases name and no other
// file list under bases/ does.
func (pl *Plan) addSSTs(v *View, dropped map[string]bool) {
	used := map[string]bool{}
	for key, fl := range v.Lists {
		if !dropped[key] && !v.dying(key) {
			for _, f := range fl.Files {
				used[f.Key] = true
			}
		}
	}
	namedNow := map[string]bool{} // named by a base that the manifest names now
	for _, d := range pl.Dropped {
		if d.Named {
			for _, f := range v.Lists[d.FileList].Files {
				namedNow[f.Key] = true
			}
		}
	}
	done := map[string]bool{}
	for _, d := range pl.going() {
		for _, f := range v.Lists[d.FileList].Files {
			if !manifest.IsSST(f.Name) || used[f.Key] || done[f.Key] {
				continue
			}
			done[f.Key] = true
			pl.add(v, Object{Key: f.Key, Kind: KindSST, Size: f.Size,
				Why: fmt.Sprintf("SST file named only by dropped bases (%s of base %d/%d)", f.Name, d.Timeline, d.Sequence)}, namedNow[f.Key])
		}
	}
}

// add adds o, unless a pending record holds it already and it was not
// needed since (neededNow: the manifest as it is now needs it, so its
// grace starts at the commit that drops it, whatever an older record says).
func (pl *Plan) add(v *View, o Object, neededNow bool) {
	if _, ok := v.Pending[o.Key]; ok && !neededNow {
		pl.Pending++
		return
	}
	pl.Delete = append(pl.Delete, o)
}

func (pl *Plan) sortOut() {
	slices.SortStableFunc(pl.Delete, func(a, b Object) int {
		return cmp.Or(cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]), cmp.Compare(a.Key, b.Key))
	})
	byBase := func(a, b BaseChoice) int {
		return cmp.Or(cmp.Compare(a.Timeline, b.Timeline), cmp.Compare(a.Sequence, b.Sequence))
	}
	slices.SortFunc(pl.Kept, byBase)
	slices.SortFunc(pl.Dropped, byBase)
}

// coverage works out the restorable ranges before and after.
func (pl *Plan) coverage(v *View) error {
	var err error
	if pl.Before, err = manifest.Restorable(v.Manifest, segmentRanges(v.Segments, nil)); err != nil {
		return fmt.Errorf("work out the restorable ranges: %w", err)
	}
	if pl.After, err = manifest.Restorable(pl.Manifest, segmentRanges(v.Segments, keySet(pl.Delete))); err != nil {
		return fmt.Errorf("work out the restorable ranges after the prune: %w", err)
	}
	return nil
}

// nothingDone makes the plan one that dropped and scheduled nothing (its
// record could not be written), saying why.
func (pl *Plan) nothingDone(why string) {
	pl.Dropped, pl.Delete, pl.DropsBases, pl.After = nil, nil, false, pl.Before
	pl.Notes = append(pl.Notes, why)
}

// Bytes is the total size of the objects the plan deletes.
func (pl *Plan) Bytes() int64 {
	var n int64
	for _, o := range pl.Delete {
		n += o.Size
	}
	return n
}

func keySet(objs []Object) map[string]bool {
	out := make(map[string]bool, len(objs))
	for _, o := range objs {
		out[o.Key] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
