package prune

import (
	"context"
	"fmt"
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
	// Kept are the objects that turned out to be needed again, or that
	// must wait, with why.
	Kept []Object `json:"kept,omitempty"`
	// Carried is the new record that holds the kept objects that may go
	// later (an SST file written within the grace, or any SST file while a
	// file list cannot be read), so that none is left unscheduled.
	Carried string `json:"carried,omitempty"`
}

// sweepAll sweeps every record whose grace is over, oldest first.
func (r *runner) sweepAll(ctx context.Context) error {
	records, err := loadRecords(ctx, r.s, r.records)
	if err != nil {
		return fmt.Errorf("prune %s: %w", r.s, err)
	}
	r.records = records
	now := r.opts.Now()
	for _, rec := range records {
		due := rec.due(r.opts.Grace)
		if now.Before(due) {
			r.rep.Waiting = append(r.rep.Waiting, Waiting{Record: rec.key, Objects: len(rec.Objects), Due: due})
			continue
		}
		sw, carried, err := r.sweep(ctx, rec)
		r.rep.Swept = append(r.rep.Swept, sw)
		if err != nil {
			return fmt.Errorf("prune: sweep %s: %w", rec.key, err)
		}
		if carried != nil {
			r.rep.Waiting = append(r.rep.Waiting, Waiting{Record: carried.key, Objects: len(carried.Objects), Due: carried.due(r.opts.Grace)})
		}
		r.log.Info("prune: swept", "record", rec.key, "deleted", sw.Deleted, "bytes", sw.DeletedBytes, "gone", sw.Gone, "kept", len(sw.Kept), "carried_to", sw.Carried)
	}
	return nil
}

// sweep deletes the objects of rec that are still not needed, in batches
// judged against a fresh scan, carries those that must wait into a new
// record (returned), and then deletes rec.
func (r *runner) sweep(ctx context.Context, rec record) (Sweep, *record, error) {
	sw := Sweep{Record: rec.key}
	objs, grace := recordObjects(rec), r.recordGrace(rec)
	var carry []Object
	for start := 0; start < len(objs); start += sweepBatch {
		batch := objs[start:min(start+sweepBatch, len(objs))]
		if err := r.sweepBatch(ctx, rec, batch, grace, &sw, &carry); err != nil {
			return sw, nil, err
		}
	}
	var carried *record
	if len(carry) > 0 {
		written, err := writeRecords(ctx, r.s, carry, r.opts.Policy, r.opts.Now(), wait(grace))
		if err != nil {
			return sw, nil, fmt.Errorf("carry %d objects that must wait into a new record: %w", len(carry), err)
		}
		carried, sw.Carried = &written[0], written[0].key
	}
	if err := r.s.Delete(ctx, rec.key); err != nil {
		return sw, carried, fmt.Errorf("delete the swept record: %w", err)
	}
	return sw, carried, nil
}

// sweepBatch judges a batch of objects against the archive as it is now
// and deletes those still not needed. When the archive changes before a
// delete, the rest of the batch is judged again against a new scan.
func (r *runner) sweepBatch(ctx context.Context, rec record, batch []Object, grace time.Duration, sw *Sweep, carry *[]Object) error {
	for attempt := 1; len(batch) > 0; attempt++ {
		if attempt > maxAttempts {
			return fmt.Errorf("the archive changed under the sweep %d times in a row: the next prune finishes it", maxAttempts)
		}
		v, err := r.view(ctx)
		if err != nil {
			return err
		}
		del := r.judgeAll(v, rec, batch, sw, carry)
		if err := Check(v, v.Manifest, del); err != nil {
			return err
		}
		if batch, err = r.deleteJudged(ctx, v, del, grace, sw, carry); err != nil {
			return err
		}
	}
	return nil
}

// judgeAll judges the objects of batch against v. It adds what stays and
// what is gone to sw (and what stays but may go later to carry), and
// returns what to delete. An object that another record holds longer
// stays for that record.
func (r *runner) judgeAll(v *View, rec record, batch []Object, sw *Sweep, carry *[]Object) []Object {
	j := judge{v: v, rec: rec, segs: segmentVerdicts(v.Manifest, v.Segments), sizes: segmentSizes(v), users: sstUsers(v)}
	now := r.opts.Now()
	var del []Object
	for _, o := range batch {
		keep, later, gone, size := j.decide(o)
		if p, ok := v.Pending[o.Key]; ok && keep == "" && !gone && now.Before(p.Due) {
			keep = fmt.Sprintf("held by record %s until %s: it was dropped again, or with a longer grace", p.Record, stamp(p.Due))
		}
		switch {
		case keep != "":
			o.Why = keep
			sw.Kept = append(sw.Kept, o)
			if later {
				*carry = append(*carry, o)
			}
		case gone:
			sw.Gone++
		default:
			o.Size = size
			del = append(del, o)
		}
	}
	return del
}

// deleteJudged deletes the objects that were judged against v, kind by
// kind. Before each kind it checks that the manifest is still the one v
// read and, before the SST files, that no file list appeared or changed
// under bases/; before each SST file it looks at the file (one written
// within the grace stays) and at the manifest again, so that a base
// committed meanwhile keeps what it names. When the archive changed it
// returns the objects not handled yet, to be judged again.
func (r *runner) deleteJudged(ctx context.Context, v *View, del []Object, grace time.Duration, sw *Sweep, carry *[]Object) ([]Object, error) {
	for i, o := range del {
		if i == 0 || o.Kind != del[i-1].Kind {
			changed, err := r.changed(ctx, v, o.Kind == KindSST)
			if err != nil || changed {
				return del[i:], err
			}
		}
		if o.Kind == KindSST {
			stays, err := r.sstStays(ctx, &o, grace, sw, carry)
			if err != nil {
				return nil, err
			}
			if stays {
				continue
			}
			changed, err := r.changed(ctx, v, false)
			if err != nil || changed {
				return del[i:], err
			}
		}
		if err := r.s.Delete(ctx, o.Key); err != nil {
			return nil, fmt.Errorf("delete %s: %w", o.Key, err)
		}
		sw.Deleted++
		sw.DeletedBytes += o.Size
	}
	return nil, nil
}

// changed reports whether the manifest is no longer the one v read (one
// conditional GET) or, with lists, whether a file list under bases/ is new
// or written again since v was read.
func (r *runner) changed(ctx context.Context, v *View, lists bool) (bool, error) {
	_, tag, err := manifest.Reload(ctx, r.s, v.ETag)
	if err != nil {
		return false, err
	}
	if tag != v.ETag || !lists {
		return tag != v.ETag, nil
	}
	for info, err := range r.s.List(ctx, manifest.BasesPrefix, "") {
		if err != nil {
			return false, fmt.Errorf("list %s: %w", manifest.BasesPrefix, err)
		}
		if !strings.HasSuffix(info.Key, "/"+manifest.FileListName) {
			continue
		}
		if seen, ok := v.BaseObjects[info.Key]; !ok || seen.ETag != info.ETag || !seen.ModTime.Equal(info.ModTime) {
			return true, nil
		}
	}
	return false, nil
}

// sstStays looks at SST file o right before its delete: one that is gone
// is counted, and one written within the grace (a base upload may be
// reusing it) stays and is carried to a new record. Otherwise it sets
// o's size.
func (r *runner) sstStays(ctx context.Context, o *Object, grace time.Duration, sw *Sweep, carry *[]Object) (bool, error) {
	info, err := r.s.Head(ctx, o.Key)
	if objstore.IsNotFound(err) {
		sw.Gone++
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("look at %s: %w", o.Key, err)
	}
	if since := r.opts.Now().Sub(info.ModTime); since < grace {
		kept := *o
		kept.Why = fmt.Sprintf("written %s ago, within the grace %s: a base upload may use it", since.Round(time.Second), FormatDuration(grace))
		sw.Kept = append(sw.Kept, kept)
		*carry = append(*carry, kept)
		return true, nil
	}
	o.Size = info.Size
	return false, nil
}

// judge decides the objects of a record against a fresh view.
type judge struct {
	v     *View
	rec   record
	segs  map[string]verdict
	sizes map[string]int64
	users map[string]string // SST key: a file list that names it
}

// decide returns why o must stay (keep; later when it may go once that
// passes), or that it is gone, or its size for a delete.
func (j judge) decide(o Object) (keep string, later, gone bool, size int64) {
	switch o.Kind {
	case KindSegment:
		keep, gone, size = j.segment(o.Key)
	case KindSST:
		keep, later = j.sst(o.Key)
	default:
		keep, gone, size = j.baseObject(o.Key)
	}
	return keep, later, gone, size
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
	case info.ModTime.After(j.rec.written()):
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
// being deleted, or, for later, while a file list cannot be read.
func (j judge) sst(key string) (string, bool) {
	if len(j.v.Unreadable) > 0 {
		return fmt.Sprintf("a file list cannot be read (%s): no SST file is deleted while it is there", sortedKeys(j.v.Unreadable)[0]), true
	}
	if lk, ok := j.users[key]; ok {
		return fmt.Sprintf("named by %s", lk), false
	}
	return "", false
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
