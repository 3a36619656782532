package manifest

import (
	"cmp"
	"fmt"
	"slices"
	"time"
)

// Operations of a ColumnFamilyChange. Part of the format.
const (
	CFCreate = "create"
	CFDrop   = "drop"
)

// Limits of a ColumnFamilyChange.
const (
	maxCFNameLen    = 1024
	maxCFOptionsLen = 1 << 20
)

// ColumnFamilyChange is a column family that the database created or
// dropped while it was archived. Batches name column families by id, and a
// base holds the families its database had when it was taken: a restore
// (or a standby) past After creates or drops the family before it replays
// the batches after After, so that it ends with the families the database
// had at its target, and the new family gets the id its batches name.
//
// RocksDB records no exact sequence for the change: its MANIFEST edit
// carries the MANIFEST's last sequence, which can be far behind the
// database's (VersionSet::LogAndApplyCFHelper, RocksDB db/version_set.cc).
// The archiver places it at the earliest point it can prove is after it: no
// batch up to After writes to a created family, no batch after After to a
// dropped one. A change belongs to every restore whose target is at or
// after After (the state at a sequence is the newest one with that
// sequence).
type ColumnFamilyChange struct {
	// Timeline is the timeline whose batches the change sits between.
	Timeline uint32 `json:"timeline"`
	// After is where the change sits: between the batch that ends at After
	// and the next.
	After uint64 `json:"after"`
	// Op is CFCreate or CFDrop.
	Op string `json:"op"`
	// ID is the family's id, which its batches name.
	ID uint32 `json:"id"`
	// Name is the family's name.
	Name string `json:"name"`
	// Options are the new family's options, as RocksDB's OPTIONS file holds
	// them ("key=value;..."), for a create; empty for a drop.
	Options string `json:"options,omitempty"`
	// Detected is when the archiver saw the change.
	Detected time.Time `json:"detected"`
}

// checkCFChanges checks the column family changes of m.
func (m *Manifest) checkCFChanges(tls map[uint32]Timeline) error {
	if err := checkCount("column_family_changes", len(m.ColumnFamilyChanges), 0); err != nil {
		return err
	}
	if len(m.ColumnFamilyChanges) > 0 && m.Format < FormatCFChanges {
		return invalid("column_family_changes", "format %d has none (they need format %d)", m.Format, FormatCFChanges)
	}
	for i, c := range m.ColumnFamilyChanges {
		if err := checkCFChange(fmt.Sprintf("column_family_changes[%d]", i), c, tls); err != nil {
			return err
		}
	}
	return nil
}

func checkCFChange(field string, c ColumnFamilyChange, tls map[uint32]Timeline) error {
	if _, ok := tls[c.Timeline]; !ok {
		return invalid(field+".timeline", "no timeline %d", c.Timeline)
	}
	switch {
	case c.After > MaxSequence:
		return invalid(field+".after", "%d is beyond the largest sequence %d", c.After, uint64(MaxSequence))
	case c.Op != CFCreate && c.Op != CFDrop:
		return invalid(field+".op", "%q is neither %q nor %q", short(c.Op), CFCreate, CFDrop)
	case c.ID == 0:
		return invalid(field+".id", "0 is the default column family, which is never created or dropped")
	case c.Op == CFDrop && c.Options != "":
		return invalid(field+".options", "a drop has no options")
	case len(c.Options) > maxCFOptionsLen:
		return invalid(field+".options", "%d bytes, more than %d", len(c.Options), maxCFOptionsLen)
	}
	return checkText(field+".name", c.Name, 1, maxCFNameLen)
}

// CFChangesBetween returns the column family changes that a replay from a
// base at sequence from to the target to passes along the pieces of a
// lineage: those with After in [from, to], ordered by After (changes at
// the same After keep the order in which they were recorded). A base at
// from may or may not hold a change made at from: a replayer applies a
// change only when the database does not reflect it yet.
func (m *Manifest) CFChangesBetween(line []Piece, from, to uint64) []ColumnFamilyChange {
	var out []ColumnFamilyChange
	for _, c := range m.ColumnFamilyChanges {
		if c.After < from || c.After > to {
			continue
		}
		for _, p := range line {
			if p.Timeline == c.Timeline && c.After+1 >= p.From && c.After <= p.To {
				out = append(out, c)
				break
			}
		}
	}
	slices.SortStableFunc(out, func(a, b ColumnFamilyChange) int { return cmp.Compare(a.After, b.After) })
	return out
}
