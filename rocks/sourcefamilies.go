package rocks

import (
	"fmt"
	"log/slog"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/manifest"
)

var _ archive.FamilyWatcher = (*FollowerSource)(nil)

// SetLogger sets where the source logs what it cannot carry of a column
// family change (options left out); slog.Default() otherwise.
func (s *FollowerSource) SetLogger(l *slog.Logger) { s.fam.log = l }

// ResumeFamilies starts the column family watch of an archive that
// continues after sequence at: its families are those of the database in
// baseDir (a base's CURRENT and MANIFEST, read with ReadManifest) changed
// by changes, in order. The next Next compares them with the database's
// MANIFEST: what differs happened while no archiver ran.
func (s *FollowerSource) ResumeFamilies(baseDir string, changes []manifest.ColumnFamilyChange, at uint64) error {
	m, err := ReadManifest(baseDir)
	if err != nil {
		return fmt.Errorf("rocks: the column families of the base: %w", err)
	}
	known, maxID := familiesAfter(m, changes)
	s.fam.start(known, maxID, at)
	return nil
}

// familiesAfter is the families of m after changes, and the largest id
// they gave (RocksDB never gives an id twice).
func familiesAfter(m *Manifest, changes []manifest.ColumnFamilyChange) (map[uint32]string, uint32) {
	known, maxID := map[uint32]string{}, m.MaxColumnFamily
	for _, f := range m.Families {
		known[f.ID] = f.Name
		maxID = max(maxID, f.ID)
	}
	for _, c := range changes {
		maxID = max(maxID, c.ID)
		if c.Op == manifest.CFCreate {
			known[c.ID] = c.Name
		} else {
			delete(known, c.ID)
		}
	}
	return known, maxID
}

// FamilyChanges returns the column families created and dropped that the
// source noticed since the last call, each with its After (Timeline is the
// archiver's to set). The watch starts at the first Checkpoint (with its
// families) unless ResumeFamilies started it.
func (s *FollowerSource) FamilyChanges() ([]manifest.ColumnFamilyChange, error) {
	return s.fam.take(), nil
}

// watchFrom starts the watch at a checkpoint, unless it runs already.
func (s *FollowerSource) watchFrom(res CopiedCheckpoint) {
	if !s.fam.started() && res.Manifest != nil {
		known, maxID := familiesAfter(res.Manifest, nil)
		s.fam.start(known, maxID, res.Seq)
	}
}

var _ archive.FamilyWatcher = (*Primary)(nil)

// SetLogger sets where the Primary logs what it cannot carry of a column
// family change (options left out); slog.Default() otherwise.
func (p *Primary) SetLogger(l *slog.Logger) { p.fam.log = l }

// ResumeFamilies is FollowerSource.ResumeFamilies.
func (p *Primary) ResumeFamilies(baseDir string, changes []manifest.ColumnFamilyChange, at uint64) error {
	m, err := ReadManifest(baseDir)
	if err != nil {
		return fmt.Errorf("rocks: the column families of the base: %w", err)
	}
	known, maxID := familiesAfter(m, changes)
	p.fam.start(known, maxID, at)
	return nil
}

// FamilyChanges is FollowerSource.FamilyChanges.
func (p *Primary) FamilyChanges() ([]manifest.ColumnFamilyChange, error) {
	return p.fam.take(), nil
}

// watchFrom starts the watch at the checkpoint in dir, whose last sequence
// is seq, unless it runs already.
func (p *Primary) watchFrom(dir string, seq uint64) error {
	if p.fam.started() {
		return nil
	}
	m, err := ReadManifest(dir)
	if err != nil {
		return fmt.Errorf("rocks: the column families of the checkpoint %s: %w", dir, err)
	}
	known, maxID := familiesAfter(m, nil)
	p.fam.start(known, maxID, seq)
	return nil
}
