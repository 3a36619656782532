package rocks

import (
	"errors"
	"fmt"
	"slices"

	"github.com/linxGnu/grocksdb"
)

// ErrFamilyID is a column family change that this database cannot follow:
// the id that RocksDB gives (or gave) a family is not the one the change
// names, so batches that name it would write to another family.
var ErrFamilyID = errors.New("column family id mismatch")

// CreateFamily creates the column family name with options (the family's
// section of an OPTIONS file, "key=value;...", applied over RocksDB's
// defaults; see FamilyOptions), and checks that RocksDB gives it id:
// RocksDB gives a new family max_column_family+1
// (VersionSet::CreateColumnFamily, db/version_set.cc), which the MANIFEST
// says before anything is created. A family that exists already with that
// name and id is left as it is (created is false): a base taken after the
// change holds it; so is an id below max_column_family that the database
// lacks: the family was created and dropped since. Any other disagreement
// is ErrFamilyID.
func (d *DB) CreateFamily(id uint32, name, options string) (created bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writable(); err != nil {
		return false, err
	}
	created, err = d.h.createFamily(id, name, options)
	if created && err != nil {
		d.err = err // created with another id: batches would go astray
	}
	return created, err
}

// DropFamily drops the column family id, which must be named name (with
// the WAL disabled, after a flush of it: see handle.dropFamily). A family
// that is gone already is left so (dropped is false): a base taken after
// the change lacks it. A family with that id and another name is
// ErrFamilyID; the default column family cannot be dropped.
func (d *DB) DropFamily(id uint32, name string) (dropped bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writable(); err != nil {
		return false, err
	}
	return d.h.dropFamily(id, name, d.flush)
}

// createFamily is DB.CreateFamily on an open handle.
func (h *handle) createFamily(id uint32, name, options string) (created bool, err error) {
	for _, cf := range h.cfs {
		switch {
		case cf.ID() == id && cf.Name() == name:
			return false, nil
		case cf.ID() == id || cf.Name() == name:
			return false, fmt.Errorf("rocks: create column family %q (id %d) in %s: %w: the database has %q with id %d",
				name, id, h.dir, ErrFamilyID, cf.Name(), cf.ID())
		}
	}
	m, err := ReadManifest(h.dir)
	if err != nil {
		return false, fmt.Errorf("rocks: create column family %q: %w", name, err)
	}
	if id <= m.MaxColumnFamily {
		return false, nil // created before and dropped since: a later state
	}
	if next := m.MaxColumnFamily + 1; next != id {
		return false, fmt.Errorf("rocks: create column family %q in %s: %w: the archive says id %d, RocksDB would give it id %d (max_column_family %d)",
			name, h.dir, ErrFamilyID, id, next, m.MaxColumnFamily)
	}
	o, err := grocksdb.GetOptionsFromString(nil, options)
	if err != nil {
		return false, fmt.Errorf("rocks: create column family %q in %s: its options %q: %w", name, h.dir, options, err)
	}
	defer o.Destroy()
	cf, err := h.db.CreateColumnFamily(o, name)
	if err != nil {
		return false, fmt.Errorf("rocks: create column family %q in %s: %w", name, h.dir, err)
	}
	h.cfs = append(h.cfs, cf)
	h.ids[cf.ID()] = true
	if cf.ID() != id {
		return true, fmt.Errorf("rocks: create column family %q in %s: %w: RocksDB gave it id %d, the archive says %d", name, h.dir, ErrFamilyID, cf.ID(), id)
	}
	return true, nil
}

// dropFamily is DB.DropFamily on an open handle; flushFirst flushes the
// family before the drop.
func (h *handle) dropFamily(id uint32, name string, flushFirst bool) (dropped bool, err error) {
	if id == 0 {
		return false, fmt.Errorf("rocks: drop column family %q in %s: %w: id 0 is the default column family", name, h.dir, ErrFamilyID)
	}
	i := slices.IndexFunc(h.cfs, func(cf *grocksdb.ColumnFamilyHandle) bool { return cf.ID() == id })
	if i < 0 {
		return false, nil
	}
	cf := h.cfs[i]
	if cf.Name() != name {
		return false, fmt.Errorf("rocks: drop column family %q (id %d) in %s: %w: id %d is %q here", name, id, h.dir, ErrFamilyID, id, cf.Name())
	}
	if flushFirst {
		// The family may hold the newest sequences, which only its memtable
		// knows with the WAL disabled: a flush first records them in the
		// MANIFEST (VersionEdit::AddFile raises the edit's last sequence),
		// and the drop's edit carries that on
		// (VersionSet::LogAndApplyCFHelper). Else the database reopens
		// behind.
		fo := grocksdb.NewDefaultFlushOptions()
		defer fo.Destroy()
		fo.SetWait(true)
		if err := h.db.FlushCF(cf, fo); err != nil {
			return false, fmt.Errorf("rocks: drop column family %q in %s: flush it first: %w", name, h.dir, err)
		}
	}
	if err := h.db.DropColumnFamily(cf); err != nil {
		return false, fmt.Errorf("rocks: drop column family %q in %s: %w", name, h.dir, err)
	}
	cf.Destroy()
	h.cfs = slices.Delete(h.cfs, i, i+1)
	delete(h.ids, id)
	delete(h.merges, id)
	return true, nil
}
