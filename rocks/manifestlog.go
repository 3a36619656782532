package rocks

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Manifest is what a database's MANIFEST says, read in plain Go
// (ReadManifest): the state that RocksDB recovers from it before it
// replays the WAL. The MANIFEST is a log of VersionEdits in the WAL's
// record format (wal.go), applied in order as VersionEditHandler does
// (db/version_edit_handler.cc).
type Manifest struct {
	File               string // the MANIFEST's base name, MANIFEST-<number>
	Size               int64  // the bytes read: the end of the last complete edit applied
	LastSequence       uint64
	NextFileNumber     uint64
	PrevLogNumber      uint64
	MinLogNumberToKeep uint64
	MaxColumnFamily    uint32
	Comparator         string       // the default column family's
	DBID               string       // empty unless the MANIFEST records it
	Families           []Family     // the live column families, by ID
	WALs               []TrackedWAL // the WALs tracked (track_and_verify_wals_in_manifest), by number
	// FamilyEdits are the column family additions and drops, in order.
	FamilyEdits []FamilyEdit
}

// Family is a live column family.
type Family struct {
	ID         uint32
	Name       string
	LogNumber  uint64 // WAL files before this one hold nothing of it that is not in its files
	Comparator string
	Files      []TableFile // live SST files, by level then number
	Blobs      []BlobFile  // live blob files, by number
}

// TableFile is a live SST file, <Number>.sst.
type TableFile struct {
	Level                   int
	Number, Size            uint64
	SmallestSeq, LargestSeq uint64
	OldestBlob              uint64 // the oldest blob file it refers to; 0: none
}

// BlobFile is a blob file, <Number>.blob (integrated BlobDB).
type BlobFile struct {
	Number                     uint64
	TotalCount, TotalBytes     uint64
	GarbageCount, GarbageBytes uint64
}

// TrackedWAL is a WAL file that the MANIFEST tracks. RocksDB's recovery
// fails when a WAL with a synced size is missing or shorter
// (WalSet::CheckWals, db/wal_edit.cc).
type TrackedWAL struct {
	Number     uint64
	SyncedSize uint64
	Synced     bool
}

// FamilyEdit is the addition or the drop of a column family, with the last
// sequence that its edit carries (VersionSet::LogAndApplyCFHelper,
// db/version_set.cc): the database's last sequence when it happened.
type FamilyEdit struct {
	ID           uint32
	Name         string // of the family added or dropped
	Drop         bool
	LastSequence uint64
}

// ReadManifest reads the MANIFEST that the CURRENT file of dbDir names, up
// to its last complete edit. A MANIFEST that is damaged, or holds what
// RocksDB 7.8 would refuse, is an error naming the file and offset.
func ReadManifest(dbDir string) (*Manifest, error) {
	mr, err := openManifest(dbDir)
	if err != nil {
		return nil, err
	}
	defer mr.close()
	if err := mr.read(); err != nil {
		return nil, err
	}
	return mr.st.manifest(mr.name), nil
}

// maxManifestRecord bounds an edit: a MANIFEST's first edit lists every
// live file of a column family, a few hundred bytes each.
const maxManifestRecord = 256 << 20

// manifestReader reads a MANIFEST, and can read on from where it stopped
// while its file stays open (a checkpoint reads again the edits that the
// writer appended meanwhile).
type manifestReader struct {
	name string // MANIFEST-<number>
	f    *os.File
	lr   *logReader
	st   *manifestState
}

// openManifest opens the MANIFEST that dbDir's CURRENT names.
func openManifest(dbDir string) (*manifestReader, error) {
	if err := checkDatabase(dbDir); err != nil {
		return nil, err
	}
	cur, err := os.ReadFile(filepath.Join(dbDir, "CURRENT"))
	if err != nil {
		return nil, fmt.Errorf("rocks: read manifest: %w", err)
	}
	name, ok := strings.CutSuffix(string(cur), "\n")
	num, err := strconv.ParseUint(strings.TrimPrefix(name, "MANIFEST-"), 10, 64)
	if !ok || !strings.HasPrefix(name, "MANIFEST-") || err != nil {
		return nil, fmt.Errorf("rocks: read manifest: %s: CURRENT holds %q, not a MANIFEST name", dbDir, cur)
	}
	path := filepath.Join(dbDir, name)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("rocks: read manifest: %w", err)
	}
	return &manifestReader{name: name, f: f, lr: newLogReader(f, path, num, maxManifestRecord), st: newManifestState()}, nil
}

func (m *manifestReader) close() { m.f.Close() }

// read applies the edits that are complete in the file from where the
// last read stopped.
func (m *manifestReader) read() error {
	m.lr.seek(m.st.applied)
	for {
		rec, ok, err := m.lr.next()
		if err != nil {
			return fmt.Errorf("rocks: read manifest %w", err)
		}
		if !ok {
			break
		}
		e, err := decodeVersionEdit(rec)
		if err == nil {
			err = m.st.apply(e, m.lr.End())
		}
		if err != nil {
			return fmt.Errorf("rocks: read manifest %s at offset %d: %w: %w", m.lr.path, m.lr.recOff, ErrCorrupt, err)
		}
	}
	if !m.st.seen {
		return fmt.Errorf("rocks: read manifest %s: %w: no complete edit (the MANIFEST of a database being created?)", m.lr.path, ErrCorrupt)
	}
	return m.st.complete(m.lr.path)
}

// manifest returns what the edits applied so far say.
func (st *manifestState) manifest(name string) *Manifest {
	m := &Manifest{
		File: name, Size: st.applied, LastSequence: st.lastSeq, NextFileNumber: st.nextFile,
		PrevLogNumber: st.prevLog, MinLogNumberToKeep: st.minLog, MaxColumnFamily: st.maxCF, DBID: st.dbID,
		FamilyEdits: slices.Clone(st.famEdits),
	}
	for _, id := range slices.Sorted(maps.Keys(st.fams)) {
		f := st.fams[id]
		fam := Family{ID: id, Name: f.name, LogNumber: f.logNumber, Comparator: f.comparator}
		fam.Files = slices.Collect(maps.Values(f.files))
		slices.SortFunc(fam.Files, func(a, b TableFile) int {
			return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.Number, b.Number))
		})
		fam.Blobs = f.liveBlobs()
		if id == 0 {
			m.Comparator = f.comparator
		}
		m.Families = append(m.Families, fam)
	}
	for _, n := range slices.Sorted(maps.Keys(st.wals)) {
		m.WALs = append(m.WALs, st.wals[n])
	}
	return m
}
