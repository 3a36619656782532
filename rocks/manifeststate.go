package rocks

import (
	"errors"
	"fmt"
	"slices"
)

// manifestState is the state that the edits of a MANIFEST build, as
// VersionEditHandler and VersionBuilder build it (db/version_edit_handler.cc,
// db/version_builder.cc, db/wal_edit.cc).
type manifestState struct {
	seen                       bool  // an edit was applied
	applied                    int64 // the end of the last edit applied
	lastSeq, nextFile, prevLog uint64
	minLog                     uint64
	hasLastSeq, hasNextFile    bool
	maxCF                      uint32
	dbID                       string
	fams                       map[uint32]*familyState
	wals                       map[uint64]TrackedWAL
	walMin                     uint64 // WalSet's min_wal_number_to_keep_
	famEdits                   []FamilyEdit
	group                      []versionEdit // an atomic group being read
}

type familyState struct {
	name, comparator string
	logNumber        uint64
	files            map[fileRef]TableFile
	blobs            map[uint64]*BlobFile
}

func newFamily(name string) *familyState {
	return &familyState{name: name, files: map[fileRef]TableFile{}, blobs: map[uint64]*BlobFile{}}
}

// defaultFamily is the name of column family 0, which no edit adds.
const defaultFamily = "default"

func newManifestState() *manifestState {
	return &manifestState{fams: map[uint32]*familyState{0: newFamily(defaultFamily)}, wals: map[uint64]TrackedWAL{}}
}

// apply applies an edit that ends at offset end. The edits of an atomic
// group are applied together once the last one is read; a group that the
// MANIFEST ends inside is not applied, as in RocksDB.
func (st *manifestState) apply(e versionEdit, end int64) error {
	if e.inAtomicGroup {
		if len(st.group) > 0 && st.group[len(st.group)-1].remaining != e.remaining+1 {
			return fmt.Errorf("%w: atomic group: %d edits remaining after %d", errEdit, e.remaining, st.group[len(st.group)-1].remaining)
		}
		st.group = append(st.group, e)
		if e.remaining > 0 {
			return nil
		}
		group := st.group
		st.group = nil
		for _, g := range group {
			if err := st.applyOne(g); err != nil {
				return err
			}
		}
	} else {
		if len(st.group) > 0 {
			return fmt.Errorf("%w: an edit outside the atomic group that is still %d edits short", errEdit, st.group[len(st.group)-1].remaining)
		}
		if err := st.applyOne(e); err != nil {
			return err
		}
	}
	st.applied, st.seen = end, true
	return nil
}

func (st *manifestState) applyOne(e versionEdit) error {
	if err := st.applyEntries(e); err != nil {
		return err
	}
	if f := st.fams[e.cf]; f != nil && !e.isWALEdit() && !e.cfDrop {
		if e.hasLog {
			f.logNumber = max(f.logNumber, e.logNumber)
		}
		if e.hasComparator {
			f.comparator = e.comparator
		}
	}
	st.applyGlobal(e)
	return nil
}

// applyEntries applies what VersionEditHandler::ApplyVersionEdit does
// before it extracts the fields of every edit (ExtractInfoFromVersionEdit):
// a family added or dropped, WALs tracked, or files.
func (st *manifestState) applyEntries(e versionEdit) error {
	switch {
	case e.cfAdd:
		if _, ok := st.fams[e.cf]; ok {
			return fmt.Errorf("%w: column family %d (%q) added twice", errEdit, e.cf, e.cfName)
		}
		st.fams[e.cf] = newFamily(e.cfName)
		st.maxCF = max(st.maxCF, e.cf)
		st.famEdits = append(st.famEdits, FamilyEdit{ID: e.cf, Name: e.cfName, LastSequence: e.lastSeq})
	case e.cfDrop:
		f, ok := st.fams[e.cf]
		if !ok || e.cf == 0 {
			return fmt.Errorf("%w: drop of column family %d, which does not exist", errEdit, e.cf)
		}
		delete(st.fams, e.cf)
		st.famEdits = append(st.famEdits, FamilyEdit{ID: e.cf, Name: f.name, Drop: true, LastSequence: e.lastSeq})
	case e.isWALEdit():
		return st.applyWALs(e)
	default:
		f, ok := st.fams[e.cf]
		if !ok {
			return fmt.Errorf("%w: edit of column family %d, which does not exist", errEdit, e.cf)
		}
		return f.applyFiles(e)
	}
	return nil
}

// applyGlobal applies the fields that are the database's, not a family's.
func (st *manifestState) applyGlobal(e versionEdit) {
	if e.hasPrevLog {
		st.prevLog = e.prevLogNumber
	}
	if e.hasNextFile {
		st.nextFile, st.hasNextFile = e.nextFile, true
	}
	if e.hasMaxCF {
		st.maxCF = max(st.maxCF, e.maxCF)
	}
	if e.hasMin {
		st.minLog = max(st.minLog, e.minLog)
	}
	if e.hasLastSeq {
		st.lastSeq, st.hasLastSeq = e.lastSeq, true
	}
	if e.dbID != "" {
		st.dbID = e.dbID
	}
}

// applyWALs applies WAL additions and deletions (WalSet::AddWal,
// WalSet::DeleteWalsBefore).
func (st *manifestState) applyWALs(e versionEdit) error {
	for _, w := range e.walAdded {
		if w.Number < st.walMin {
			continue
		}
		old, ok := st.wals[w.Number]
		switch {
		case ok && !w.Synced:
			return fmt.Errorf("%w: wal %d is created more than once", errEdit, w.Number)
		case ok && old.Synced && w.SyncedSize <= old.SyncedSize:
		default:
			st.wals[w.Number] = w
		}
	}
	if e.hasWALDelete && e.walDeleteBefore > st.walMin {
		st.walMin = e.walDeleteBefore
		for n := range st.wals {
			if n < st.walMin {
				delete(st.wals, n)
			}
		}
	}
	return nil
}

// applyFiles deletes, then adds, the SST and blob files of an edit, as
// VersionBuilder does.
func (f *familyState) applyFiles(e versionEdit) error {
	for _, d := range e.deleted {
		if _, ok := f.files[d]; !ok {
			return fmt.Errorf("%w: deletion of sst file %d from level %d of column family %q, where it is not", errEdit, d.number, d.level, f.name)
		}
		delete(f.files, d)
	}
	for _, a := range e.added {
		ref := fileRef{a.Level, a.Number}
		if _, ok := f.files[ref]; ok {
			return fmt.Errorf("%w: sst file %d added twice to level %d of column family %q", errEdit, a.Number, a.Level, f.name)
		}
		f.files[ref] = a
	}
	for _, b := range e.blobAdded {
		if _, ok := f.blobs[b.Number]; ok {
			return fmt.Errorf("%w: blob file %d added twice to column family %q", errEdit, b.Number, f.name)
		}
		f.blobs[b.Number] = &b
	}
	for _, g := range e.blobGarbage {
		b, ok := f.blobs[g.Number]
		if !ok {
			return fmt.Errorf("%w: garbage in blob file %d of column family %q, which it does not have", errEdit, g.Number, f.name)
		}
		b.GarbageCount += g.GarbageCount
		b.GarbageBytes += g.GarbageBytes
	}
	return nil
}

// liveBlobs returns the blob files that the family's version holds
// (VersionBuilder::SaveBlobFilesTo): none older than the oldest one that an
// SST file refers to, and none that is all garbage and that no SST file
// refers to as its oldest.
func (f *familyState) liveBlobs() []BlobFile {
	linked := map[uint64]bool{}
	oldest := uint64(0)
	for _, t := range f.files {
		if t.OldestBlob != 0 {
			linked[t.OldestBlob] = true
			if oldest == 0 || t.OldestBlob < oldest {
				oldest = t.OldestBlob
			}
		}
	}
	var live []BlobFile
	for n, b := range f.blobs {
		if n < oldest || (!linked[n] && b.GarbageCount >= b.TotalCount) {
			continue
		}
		live = append(live, *b)
	}
	slices.SortFunc(live, func(a, b BlobFile) int { return cmpUint(a.Number, b.Number) })
	return live
}

// complete checks that the MANIFEST has what recovery requires
// (VersionEditHandler::CheckIterationResult).
func (st *manifestState) complete(path string) error {
	var missing []error
	if !st.hasNextFile {
		missing = append(missing, errors.New("no next file number"))
	}
	if !st.hasLastSeq {
		missing = append(missing, errors.New("no last sequence"))
	}
	if len(missing) > 0 {
		return fmt.Errorf("rocks: read manifest %s: %w: %w", path, ErrCorrupt, errors.Join(missing...))
	}
	return nil
}
