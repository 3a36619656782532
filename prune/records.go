package prune

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// record is a pending record and its key.
type record struct {
	key string
	*manifest.PruneRecord
}

// due is when the record's objects may go, with the grace of this run: the
// later of its own not-before and its creation plus grace.
func (r record) due(grace time.Duration) time.Time {
	d := r.Created.Add(grace)
	if r.NotBefore.After(d) {
		return r.NotBefore
	}
	return d
}

// loadRecords reads every pending record, oldest first, reusing those in
// known. A record that breaks the format stops the prune with an error
// that names it: it is left for a person to look at.
func loadRecords(ctx context.Context, s objstore.Store, known []record) ([]record, error) {
	byKey := map[string]record{}
	for _, r := range known {
		byKey[r.key] = r
	}
	var keys []string
	for info, err := range s.List(ctx, manifest.PrunePrefix, "") {
		if err != nil {
			return nil, fmt.Errorf("list the pending records under %s: %w", manifest.PrunePrefix, err)
		}
		keys = append(keys, info.Key)
	}
	var out []record
	for _, key := range keys {
		if r, ok := byKey[key]; ok {
			out = append(out, r)
			continue
		}
		r, err := manifest.LoadPruneRecord(ctx, s, key)
		if objstore.IsNotFound(err) {
			continue // swept by another prune meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("%w; if it is not rockstream's, move it out of %s", err, manifest.PrunePrefix)
		}
		out = append(out, record{key: key, PruneRecord: r})
	}
	return out, nil
}

// pendingKeys maps every key of the records (oldest first) to the newest
// record that holds it.
func pendingKeys(rs []record) map[string]Pending {
	out := map[string]Pending{}
	for _, r := range rs {
		for _, o := range r.Objects {
			out[o.Key] = Pending{Record: r.key, Created: r.Created}
		}
	}
	return out
}

// writeRecords writes the plan's objects in records of at most
// manifest.MaxPruneObjects, created now, due after grace.
func writeRecords(ctx context.Context, s objstore.Store, pl *Plan, now time.Time) ([]record, error) {
	var out []record
	for start := 0; start < len(pl.Delete); start += manifest.MaxPruneObjects {
		part := pl.Delete[start:min(start+manifest.MaxPruneObjects, len(pl.Delete))]
		r := &manifest.PruneRecord{Format: manifest.Format, Created: now, NotBefore: now.Add(pl.Grace),
			Policy: clip(pl.Policy.String())}
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
