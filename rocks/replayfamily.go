package rocks

import "fmt"

// CreateFamily creates a column family between the batches added so far
// and the next ones, as DB.CreateFamily does (the id checked): the WAL
// written so far is recovered first, then the database is opened with its
// own options for the change, and its column families are read again. The
// family's options go into the database's OPTIONS file, which the later
// recoveries open it with. A hand-off replay cannot make the change: it
// never opens the database.
func (r *Replayer) CreateFamily(id uint32, name, options string) (created bool, err error) {
	return r.changeFamily(name, func(h *handle) (bool, error) { return h.createFamily(id, name, options) })
}

// DropFamily drops a column family between the batches added so far and
// the next ones, as DB.DropFamily does; see CreateFamily.
func (r *Replayer) DropFamily(id uint32, name string) (dropped bool, err error) {
	return r.changeFamily(name, func(h *handle) (bool, error) { return h.dropFamily(id, name, true) })
}

func (r *Replayer) changeFamily(name string, change func(*handle) (bool, error)) (bool, error) {
	if r.opts.HandOff {
		return false, fmt.Errorf("rocks: replay into %s: the column family %q is created or dropped within the replay, which a hand-off cannot do (the application's RocksDB would not know of it): restore to a target before the change, or without hand-off",
			r.dir, name)
	}
	if err := r.closeDirect(); err != nil {
		return false, err
	}
	if r.w != nil {
		if err := r.endChunk(r.next - 1); err != nil {
			return false, err
		}
	}
	h, err := r.open()
	if err != nil {
		return false, fmt.Errorf("rocks: replay into %s: open for a column family change: %w", r.dir, err)
	}
	changed, err := change(h)
	h.close()
	if err != nil {
		return changed, err
	}
	if changed {
		// The column families, their ids and merge operators as the next
		// recovery opens them.
		if err := r.openBase(); err != nil {
			return changed, err
		}
	}
	return changed, nil
}
