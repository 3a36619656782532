package prune

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// commitAllowance is the time that a record's not_before holds beyond its
// grace for the manifest commit that follows the record: a record is
// written before the commit that drops its bases, and its grace counts
// from that commit. A commit that takes longer makes the run write its
// records again after the commit (see runner.afterCommit).
const commitAllowance = 10 * time.Second

// wait is how long after its creation a record written with grace waits:
// the grace and the commit allowance (none with no grace).
func wait(grace time.Duration) time.Duration {
	return grace + min(grace, commitAllowance)
}

// graceOf is the grace of a record that waits w after its creation: the
// inverse of wait. (A record of an older rockstream, which waited its
// grace alone, comes out a little shorter; a sweep takes the longer of it
// and its own grace.)
func graceOf(w time.Duration) time.Duration {
	if w <= 2*commitAllowance {
		return w / 2
	}
	return w - commitAllowance
}

// record is a pending record, its key, and when the store wrote it.
type record struct {
	key string
	// stored is the record object's modification time by the store's
	// clock, zero when not known.
	stored time.Time
	*manifest.PruneRecord
}

// written is when the record was written: by the store's clock where
// known, else by the clock of the host that wrote it.
func (r record) written() time.Time {
	if r.stored.IsZero() {
		return r.Created
	}
	return r.stored
}

// due is when the record's objects may go, with the grace of this run: its
// wait (the longer of not_before - created and grace) counted from the
// later of its creation time and the time the store wrote it, so that a
// host whose clock is behind does not make a record older than it is. A
// record with no wait is due at once.
func (r record) due(grace time.Duration) time.Time {
	w := max(grace, r.NotBefore.Sub(r.Created))
	if w == 0 || !r.stored.After(r.Created) {
		return r.Created.Add(w)
	}
	return r.stored.Add(w)
}

// loadRecords reads every pending record, oldest first, reusing those in
// known. A record that breaks the format stops the prune with an error
// that names it: it is left for a person to look at. A prune reads the
// records after the manifest: a drop that the manifest shows has its
// record in the listing, as a prune writes the record first.
func loadRecords(ctx context.Context, s objstore.Store, known []record) ([]record, error) {
	byKey := map[string]record{}
	for _, r := range known {
		byKey[r.key] = r
	}
	var infos []objstore.ObjectInfo
	for info, err := range s.List(ctx, manifest.PrunePrefix, "") {
		if err != nil {
			return nil, fmt.Errorf("list the pending records under %s: %w", manifest.PrunePrefix, err)
		}
		infos = append(infos, info)
	}
	var out []record
	for _, info := range infos {
		if r, ok := byKey[info.Key]; ok {
			r.stored = info.ModTime
			out = append(out, r)
			continue
		}
		r, err := manifest.LoadPruneRecord(ctx, s, info.Key)
		if objstore.IsNotFound(err) {
			continue // swept by another prune meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("%w; if it is not rockstream's, move it out of %s", err, manifest.PrunePrefix)
		}
		out = append(out, record{key: info.Key, stored: info.ModTime, PruneRecord: r})
	}
	return out, nil
}

// pendingKeys maps every key of the records to the record that holds it
// longest (the latest due with this run's grace): a key goes no earlier
// than every record that holds it allows. Created is when the newest of
// those records was written.
func pendingKeys(rs []record, grace time.Duration) map[string]Pending {
	out := map[string]Pending{}
	for _, r := range rs {
		due, written := r.due(grace), r.written()
		for _, o := range r.Objects {
			p, ok := out[o.Key]
			if !ok || due.After(p.Due) {
				p.Record, p.Due = r.key, due
			}
			if written.After(p.Created) {
				p.Created = written
			}
			out[o.Key] = p
		}
	}
	return out
}

// writeRecords writes objs in records of at most manifest.MaxPruneObjects,
// created at created and waiting wait, for the policy p. An object whose
// key a record may not hold is left out (the plan never makes one).
func writeRecords(ctx context.Context, s objstore.Store, objs []Object, p Policy, created time.Time, wait time.Duration) ([]record, error) {
	var out []record
	objs = prunable(objs)
	for start := 0; start < len(objs); start += manifest.MaxPruneObjects {
		part := objs[start:min(start+manifest.MaxPruneObjects, len(objs))]
		r := &manifest.PruneRecord{Format: manifest.Format, Created: created, NotBefore: created.Add(wait),
			Policy: clip(p.String())}
		for _, o := range part {
			r.Objects = append(r.Objects, manifest.PruneObject{Key: o.Key, Why: clip(o.Why)})
		}
		key, err := manifest.PutPruneRecord(ctx, s, r)
		if err != nil {
			return out, err
		}
		out = append(out, record{key: key, PruneRecord: r})
	}
	return out, nil
}

// prunable returns the objects of objs that a record may hold.
func prunable(objs []Object) []Object {
	var out []Object
	for _, o := range objs {
		if manifest.CheckPrunable(o.Key) == nil {
			out = append(out, o)
		}
	}
	return out
}

// clip cuts s to the longest text a record field holds.
func clip(s string) string {
	const most = 1024
	if len(s) <= most {
		return s
	}
	s = s[:most-3]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}
