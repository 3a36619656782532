package catalog

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// Status is what an archive holds, for `rockstream status`: a person reads
// its table, a program its JSON.
type Status struct {
	Location string           `json:"location"`
	Identity string           `json:"identity"`
	Created  time.Time        `json:"created"`
	Writer   *manifest.Writer `json:"writer,omitempty"`
	// Encryption is the archive's, when it is encrypted: the ids of the
	// keys its objects were written with.
	Encryption *manifest.Encryption `json:"encryption,omitempty"`
	Timelines  []TimelineStatus     `json:"timelines"`
	Bases      []BaseStatus         `json:"bases"`
	Stored     StoredBytes          `json:"stored"`
	Checked    time.Time            `json:"checked"`
	Problems   []string             `json:"problems,omitempty"`
	manifest   *manifest.Manifest
}

// TimelineStatus is one timeline: what of it can be restored.
type TimelineStatus struct {
	ID       uint32          `json:"id"`
	Parent   uint32          `json:"parent,omitempty"`
	Branch   uint64          `json:"branch,omitempty"`
	Created  time.Time       `json:"created"`
	Segments int             `json:"segments"`
	Bytes    int64           `json:"segment_bytes"`
	Ranges   []RangeStatus   `json:"restorable"`
	Holes    []manifest.Hole `json:"holes,omitempty"`
	// FamilyChanges are the column families created and dropped on the
	// timeline, by After.
	FamilyChanges []manifest.ColumnFamilyChange `json:"column_family_changes,omitempty"`
	// LastSequence is the last archived sequence of the timeline and
	// LastTime when its batch was archived (zero when unknown).
	LastSequence uint64    `json:"last_sequence"`
	LastTime     time.Time `json:"last_time,omitempty"`
	// Ended is set when a promotion ended the timeline.
	Ended bool `json:"ended,omitempty"`
}

// RangeStatus is a restorable range of sequences.
type RangeStatus struct {
	From     uint64    `json:"from"`
	To       uint64    `json:"to"`
	FromTime time.Time `json:"from_time,omitempty"`
	ToTime   time.Time `json:"to_time,omitempty"`
}

// BaseStatus is one base.
type BaseStatus struct {
	manifest.Base
	// SharedFiles is how many of its files another base stores too.
	SharedFiles int `json:"shared_files"`
	// ReplayNeeds are the options of its OPTIONS file that rockstream
	// cannot replay by itself (a merge operator or comparator of the
	// application's own): a restore from it needs --hand-off or the
	// operators. Empty when rockstream replays it all, and when the status
	// was read without an Inspect (the catalog does not read RocksDB's
	// formats: restore.ReplayNeeds does).
	ReplayNeeds []string `json:"replay_needs,omitempty"`
}

// StoredBytes is what the archive stores, each object counted once.
type StoredBytes struct {
	Segments int64 `json:"segments"`
	Bases    int64 `json:"bases"`
	Total    int64 `json:"total"`
}

// ReadStatus reads the archive's manifest, segment chains, the last
// segment's trailer of each timeline and every base's file list.
func ReadStatus(ctx context.Context, s objstore.Store) (*Status, error) {
	return ReadStatusWith(ctx, s, nil)
}

// Inspect tells, from a base's file list, what a replay of the base needs
// that rockstream does not have (BaseStatus.ReplayNeeds).
type Inspect func(ctx context.Context, s objstore.Store, fl *manifest.FileList) ([]string, error)

// ReadStatusWith is ReadStatus that also inspects each base (when inspect
// is not nil); a base that cannot be inspected is a problem.
func ReadStatusWith(ctx context.Context, s objstore.Store, inspect Inspect) (*Status, error) {
	c, err := Load(ctx, s)
	if err != nil {
		return nil, err
	}
	m := c.Manifest
	st := &Status{Location: s.String(), Identity: m.Identity, Created: m.Created, Writer: m.Writer, Encryption: m.Encryption, Checked: time.Now().UTC(), manifest: m}
	cov, err := manifest.Restorable(m, c.Ranges())
	if err != nil {
		return nil, fmt.Errorf("work out the restorable ranges: %w", err)
	}
	for _, cv := range cov {
		st.Timelines = append(st.Timelines, c.timelineStatus(ctx, s, cv))
	}
	if err := st.readBases(ctx, s, inspect); err != nil {
		return nil, err
	}
	for _, t := range st.Timelines {
		st.Stored.Segments += t.Bytes
	}
	st.Stored.Total = st.Stored.Segments + st.Stored.Bases
	return st, nil
}

func (c *Catalog) timelineStatus(ctx context.Context, s objstore.Store, cv manifest.Coverage) TimelineStatus {
	t, _ := c.Manifest.Timeline(cv.Timeline)
	ts := TimelineStatus{ID: t.ID, Parent: t.Parent, Branch: t.Branch, Created: t.Created, Holes: cv.Holes}
	for _, ch := range c.Manifest.ColumnFamilyChanges {
		if ch.Timeline == t.ID {
			ts.FamilyChanges = append(ts.FamilyChanges, ch)
		}
	}
	sort.SliceStable(ts.FamilyChanges, func(i, j int) bool { return ts.FamilyChanges[i].After < ts.FamilyChanges[j].After })
	segs := c.Segments[t.ID]
	ts.Segments = len(segs)
	for _, sg := range segs {
		ts.Bytes += sg.Size
	}
	if n := len(segs); n > 0 {
		last := segs[n-1]
		ts.Ended = last.End
		if last.Next > 0 {
			ts.LastSequence = last.Next - 1
		}
		if last.Last != nil {
			ts.LastTime = last.Last.LastTime
		}
	}
	for _, r := range cv.Ranges {
		rs := RangeStatus{From: r.From, To: r.To, FromTime: c.baseTime(r.From)}
		if r.To == ts.LastSequence && !ts.LastTime.IsZero() {
			rs.ToTime = ts.LastTime
		} else {
			rs.ToTime = c.endTime(ctx, s, t.ID, r.To)
		}
		ts.Ranges = append(ts.Ranges, rs)
		ts.LastSequence = max(ts.LastSequence, r.To)
	}
	return ts
}

func (c *Catalog) baseTime(seq uint64) time.Time {
	for _, b := range c.Manifest.Bases {
		if b.Sequence == seq {
			return b.Time
		}
	}
	return time.Time{}
}

// endTime is when the batch that ends at seq was archived: the last time of
// the segment that ends there (one ranged get), or zero if unknown.
func (c *Catalog) endTime(ctx context.Context, s objstore.Store, tl uint32, seq uint64) time.Time {
	for _, sg := range c.Segments[tl] {
		if sg.Next == seq+1 {
			if _, tr, err := ReadTrailer(ctx, s, sg.Key, sg.Size); err == nil {
				return tr.LastTime
			}
		}
	}
	return time.Time{}
}

// readBases loads every base's file list to count shared files and bytes.
func (st *Status) readBases(ctx context.Context, s objstore.Store, inspect Inspect) error {
	m := st.manifest
	users := map[string]int{}
	lists := make([]*manifest.FileList, len(m.Bases))
	sizes := map[string]int64{}
	for i, b := range m.Bases {
		fl, err := manifest.LoadFileList(ctx, s, m, b)
		if err != nil {
			st.Problems = append(st.Problems, fmt.Sprintf("base %d/%d: %v", b.Timeline, b.Sequence, err))
			continue
		}
		lists[i] = fl
		for _, f := range fl.Files {
			users[f.Key]++
			sizes[f.Key] = f.Size
		}
	}
	for _, n := range sizes {
		st.Stored.Bases += n
	}
	for i, b := range m.Bases {
		bs := BaseStatus{Base: b}
		if fl := lists[i]; fl != nil {
			for _, f := range fl.Files {
				if users[f.Key] > 1 {
					bs.SharedFiles++
				}
			}
			if inspect != nil {
				needs, err := inspect(ctx, s, fl)
				if err != nil {
					st.Problems = append(st.Problems, fmt.Sprintf("base %d/%d: %v", b.Timeline, b.Sequence, err))
				}
				bs.ReplayNeeds = needs
			}
		}
		st.Bases = append(st.Bases, bs)
	}
	sort.Slice(st.Bases, func(i, j int) bool {
		if st.Bases[i].Timeline != st.Bases[j].Timeline {
			return st.Bases[i].Timeline < st.Bases[j].Timeline
		}
		return st.Bases[i].Sequence < st.Bases[j].Sequence
	})
	return nil
}
