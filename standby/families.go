package standby

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// errFamiliesUnknown: a batch writes to a column family that the database
// lacks and the manifest could not be read to learn of its creation.
var errFamiliesUnknown = errors.New("a column family creation is not known yet")

// famKey names a column family change: an id is created once and dropped
// once on a timeline.
type famKey struct {
	tl uint32
	op string
	id uint32
}

// applyFamilies applies the column family changes of tl's lineage with
// After at or before reached that this run has not applied yet: the
// database may reflect them already (its base, or this standby before a
// restart), which restore.ApplyFamilyChange tells. A drop that the
// standby learns of late (its manifest was older than the segments it
// read) is applied when it learns of it: the batches in between did not
// write to the family.
func (s *Standby) applyFamilies(tl uint32, reached uint64) error {
	if len(s.famDone) == len(s.m.ColumnFamilyChanges) {
		return nil
	}
	for _, c := range s.m.CFChangesBetween(s.m.Lineage(tl), 0, reached) {
		k := famKey{c.Timeline, c.Op, c.ID}
		if s.famDone[k] {
			continue
		}
		changed, err := restore.ApplyFamilyChange(s.db, c)
		if err != nil {
			return fmt.Errorf("standby: %w", err)
		}
		s.famDone[k], s.famOpen = true, nil
		if changed {
			s.log.Info("column family change applied", "op", c.Op, "family", c.Name, "id", c.ID, "after", c.After, "applied", reached)
		}
	}
	return nil
}

// familiesQuiet says whether familiesBefore has nothing to do for b: no
// change of tl's lineage that is not applied yet is due before b, and b
// writes only to families the database has. Batches are then applied
// together.
func (s *Standby) familiesQuiet(tl uint32, b segments.Batch) bool {
	if s.famOpen == nil || s.famDue(tl) < b.Seq {
		return false
	}
	ids, err := rocks.BatchFamilies(b.Data)
	if err != nil {
		return false // familiesBefore and Apply name the damage
	}
	for _, id := range ids {
		if !s.famOpen[id] {
			return false
		}
	}
	return true
}

// famDue is the lowest After of the changes of tl's lineage that are not
// applied yet (MaxUint64: none), worked out again only when the manifest,
// the timeline or the changes applied change.
func (s *Standby) famDue(tl uint32) uint64 {
	c := &s.famDueCache
	if c.m == s.m && c.tl == tl && c.done == len(s.famDone) {
		return c.due
	}
	due := uint64(math.MaxUint64)
	for _, ch := range s.m.CFChangesBetween(s.m.Lineage(tl), 0, math.MaxUint64) {
		if !s.famDone[famKey{ch.Timeline, ch.Op, ch.ID}] {
			due = min(due, ch.After)
		}
	}
	*c = famDueCache{m: s.m, tl: tl, done: len(s.famDone), due: due}
	return due
}

// famDueCache is what famDue worked out last.
type famDueCache struct {
	m    *manifest.Manifest
	tl   uint32
	done int
	due  uint64
}

// familiesBefore applies the changes due before batch b, and reads the
// manifest again when b writes to a column family the database lacks (its
// creation was recorded after the standby's last read). ready is false when
// that read failed (the store): the batch waits for the next round.
func (s *Standby) familiesBefore(ctx context.Context, tl uint32, b segments.Batch) (ready bool, err error) {
	if err := s.applyFamilies(tl, b.Seq-1); err != nil {
		return false, err
	}
	ids, err := rocks.BatchFamilies(b.Data)
	if err != nil {
		return true, nil // Apply names the damage
	}
	if s.famOpen == nil {
		s.famOpen = map[uint32]bool{}
		for _, cf := range s.db.ColumnFamilies() {
			s.famOpen[cf.ID] = true
		}
	}
	for _, id := range ids {
		if !s.famOpen[id] {
			read := s.read
			if err := s.checkManifest(ctx, true); err != nil {
				return false, err
			}
			if s.read == read {
				return false, nil
			}
			return true, s.applyFamilies(tl, b.Seq-1)
		}
	}
	return true, nil
}
