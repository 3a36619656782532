package prune

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// sweepBatch is the number of keys judged against one fresh scan of the
// archive.
const sweepBatch = 1000

// Sweep is what the sweep of one pending record did.
type Sweep struct {
	Record string `json:"record"`
	// Deleted counts the objects deleted, Gone those already gone.
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	Gone         int   `json:"gone"`
	// Kept are the objects that turned out to be needed again, with why.
	Kept []Object `json:"kept,omitempty"`
}

// sweepAll sweeps every record whose grace is over, oldest first.
func (r *runner) sweepAll(ctx context.Context, records []record) error {
	now := r.opts.Now()
	for _, rec := range records {
		due := rec.due(r.opts.Grace)
		if now.Before(due) {
			r.rep.Waiting = append(r.rep.Waiting, Waiting{Record: rec.key, Objects: len(rec.Objects), Due: due})
			continue
		}
		sw, err := r.sweep(ctx, rec, records)
		r.rep.Swept = append(r.rep.Swept, sw)
		if err != nil {
			return fmt.Errorf("prune: sweep %s: %w", rec.key, err)
		}
		r.log.Info("prune: swept", "record", rec.key, "deleted", sw.Deleted, "bytes", sw.DeletedBytes, "gone", sw.Gone, "kept", len(sw.Kept))
	}
	return nil
}

// sweep deletes the objects of rec that are still not needed, in batches
// judged against a fresh scan, then the record itself.
func (r *runner) sweep(ctx context.Context, rec record, records []record) (Sweep, error) {
	sw := Sweep{Record: rec.key}
	objs := make([]Object, len(rec.Objects))
	for i, o := range rec.Objects {
		objs[i] = Object{Key: o.Key, Kind: kindOf(o.Key), Why: o.Why}
	}
	slices.SortStableFunc(objs, func(a, b Object) int { return cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]) })
	grace := max(r.opts.Grace, rec.NotBefore.Sub(rec.Created))
	for start := 0; start < len(objs); start += sweepBatch {
		batch := objs[start:min(start+sweepBatch, len(objs))]
		var err error
		if records, err = loadRecords(ctx, r.s, records); err != nil {
			return sw, err
		}
		if err := r.sweepBatch(ctx, rec, batch, pendingKeys(records), grace, &sw); err != nil {
			return sw, err
		}
	}
	if err := r.s.Delete(ctx, rec.key); err != nil {
		return sw, fmt.Errorf("delete the swept record: %w", err)
	}
	return sw, nil
}

// sweepBatch judges a batch of objects against the archive as it is now
// and deletes those still not needed.
func (r *runner) sweepBatch(ctx context.Context, rec record, batch []Object, pending map[string]Pending, grace time.Duration, sw *Sweep) error {
	v, err := scan(ctx, r.s, pending, r.cache)
	if err != nil {
		return err
	}
	j := judge{v: v, rec: rec, segs: segmentVerdicts(v.Manifest, v.Segments), sizes: segmentSizes(v), users: sstUsers(v)}
	var del []Object
	for _, o := range batch {
		keep, gone, size := j.decide(o)
		if p, ok := pending[o.Key]; ok && p.Record != rec.key && keep == "" {
			keep = fmt.Sprintf("held by the newer record %s: it was needed again after this record", p.Record)
		}
		switch {
		case keep != "":
			o.Why = keep
			sw.Kept = append(sw.Kept, o)
		case gone:
			sw.Gone++
		default:
			o.Size = size
			del = append(del, o)
		}
	}
	if err := Check(v, v.Manifest, del); err != nil {
		return err
	}
	for _, o := range del {
		if err := r.remove(ctx, o, grace, sw); err != nil {
			return err
		}
	}
	return nil
}

// remove deletes one object. An SST file is looked at first: one written
// within the grace (a base upload that reuses it) stays.
func (r *runner) remove(ctx context.Context, o Object, grace time.Duration, sw *Sweep) error {
	if o.Kind == KindSST {
		info, err := r.s.Head(ctx, o.Key)
		if objstore.IsNotFound(err) {
			sw.Gone++
			return nil
		}
		if err != nil {
			return fmt.Errorf("look at %s: %w", o.Key, err)
		}
		if since := r.opts.Now().Sub(info.ModTime); since < grace {
			o.Why = fmt.Sprintf("written %s ago, within the grace %s: a base upload may use it", since.Round(time.Second), FormatDuration(grace))
			sw.Kept = append(sw.Kept, o)
			return nil
		}
		o.Size = info.Size
	}
	if err := r.s.Delete(ctx, o.Key); err != nil {
		return fmt.Errorf("delete %s: %w", o.Key, err)
	}
	sw.Deleted++
	sw.DeletedBytes += o.Size
	return nil
}

// judge decides the objects of a record against a fresh view.
type judge struct {
	v     *View
	rec   record
	segs  map[string]verdict
	sizes map[string]int64
	users map[string]string // SST key: a file list that names it
}

// decide returns why o must stay (keep), or that it is gone, or its size
// for a delete.
func (j judge) decide(o Object) (keep string, gone bool, size int64) {
	switch o.Kind {
	case KindSegment:
		return j.segment(o.Key)
	case KindSST:
		return j.sst(o.Key), false, 0
	}
	return j.baseObject(o.Key)
}

func (j judge) segment(key string) (string, bool, int64) {
	tl, _, _ := manifest.ParseSegmentKey(key)
	if _, ok := j.v.Manifest.Timeline(tl); !ok {
		return fmt.Sprintf("timeline %d is not in the manifest", tl), false, 0
	}
	vd, listed := j.segs[key]
	switch {
	case !listed:
		return "", true, 0
	case vd.keep:
		return vd.why, false, 0
	}
	return "", false, j.sizes[key]
}

// baseObject judges a file list or another file under a base's prefix.
func (j judge) baseObject(key string) (string, bool, int64) {
	tl, seq, name, _ := manifest.ParseBaseFileKey(key)
	list := manifest.FileListKey(tl, seq)
	info, listed := j.v.BaseObjects[key]
	switch {
	case named(j.v.Manifest, list):
		return fmt.Sprintf("base %d/%d is in the manifest again", tl, seq), false, 0
	case !listed:
		return "", true, 0
	case info.ModTime.After(j.rec.Created):
		return fmt.Sprintf("written at %s, after the record", stamp(info.ModTime)), false, 0
	case name != manifest.FileListName && j.listStays(list):
		return fmt.Sprintf("the file list of base %d/%d is there and not being deleted (a new upload?)", tl, seq), false, 0
	}
	return "", false, info.Size
}

// listStays reports whether the file list at key is there and is not one
// that a pending record deletes.
func (j judge) listStays(key string) bool {
	_, there := j.v.BaseObjects[key]
	return there && !j.v.dying(key)
}

// sst judges an SST file: it stays while a file list names it that is not
// being deleted, or while a file list cannot be read.
func (j judge) sst(key string) string {
	if len(j.v.Unreadable) > 0 {
		return fmt.Sprintf("a file list cannot be read (%s): no SST file is deleted while it is there", sortedKeys(j.v.Unreadable)[0])
	}
	if lk, ok := j.users[key]; ok {
		return fmt.Sprintf("named by %s", lk)
	}
	return ""
}

// sstUsers maps each SST key to a file list that names it, among the lists
// that no pending record deletes.
func sstUsers(v *View) map[string]string {
	out := map[string]string{}
	for _, lk := range sortedKeys(v.Lists) {
		if v.dying(lk) {
			continue
		}
		for _, f := range v.Lists[lk].Files {
			if _, ok := out[f.Key]; !ok && manifest.IsSST(f.Name) {
				out[f.Key] = lk
			}
		}
	}
	return out
}

func segmentSizes(v *View) map[string]int64 {
	out := map[string]int64{}
	for _, segs := range v.Segments {
		for _, s := range segs {
			out[s.Key] = s.Size
		}
	}
	return out
}

// kindOf is the kind of a key that manifest.CheckPrunable accepted.
func kindOf(key string) string {
	switch {
	case strings.HasPrefix(key, manifest.SegmentsPrefix):
		return KindSegment
	case strings.HasPrefix(key, manifest.SSTPrefix):
		return KindSST
	case strings.HasSuffix(key, "/"+manifest.FileListName):
		return KindFileList
	}
	return KindBaseFile
}
