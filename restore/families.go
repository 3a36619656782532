package restore

import (
	"fmt"

	"github.com/rockstream/rockstream/manifest"
)

// FamilyChanger is a database that column families can be created in and
// dropped from: a rocks.DB (the standby) or a rocks.Replayer (a restore).
type FamilyChanger interface {
	CreateFamily(id uint32, name, options string) (bool, error)
	DropFamily(id uint32, name string) (bool, error)
}

// ApplyFamilyChange creates or drops a column family of db as c says,
// unless db reflects it already (a base taken at or after c.After; a
// standby that applied it before a restart). A family whose id RocksDB
// would not give as c says is an error (rocks.ErrFamilyID) naming both.
func ApplyFamilyChange(db FamilyChanger, c manifest.ColumnFamilyChange) (changed bool, err error) {
	if c.Op == manifest.CFCreate {
		changed, err = db.CreateFamily(c.ID, c.Name, c.Options)
	} else {
		changed, err = db.DropFamily(c.ID, c.Name)
	}
	if err != nil {
		return false, fmt.Errorf("the column family change after sequence %d (%s %q, id %d, timeline %d): %w", c.After, c.Op, c.Name, c.ID, c.Timeline, err)
	}
	return changed, nil
}

// familyChanges applies a plan's column family changes at their place
// while its batches are replayed.
type familyChanges struct {
	pending []manifest.ColumnFamilyChange // ordered by After
	applied int
}

// upTo applies the pending changes with After at or before reached: the
// database's sequence before the next batch, or at the end.
func (f *familyChanges) upTo(db FamilyChanger, reached uint64) error {
	for f != nil && len(f.pending) > 0 && f.pending[0].After <= reached {
		changed, err := ApplyFamilyChange(db, f.pending[0])
		if err != nil {
			return err
		}
		if changed {
			f.applied++
		}
		f.pending = f.pending[1:]
	}
	return nil
}
