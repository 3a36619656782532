package rocks

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The VersionEdit encoding of RocksDB 7.8 (db/version_edit.h, Tag, and
// VersionEdit::DecodeFrom in db/version_edit.cc): a sequence of fields,
// each a varint32 tag then its value.
const (
	editComparator         = 1
	editLogNumber          = 2
	editNextFileNumber     = 3
	editLastSequence       = 4
	editCompactCursor      = 5
	editDeletedFile        = 6
	editNewFile            = 7
	editPrevLogNumber      = 9
	editMinLogNumberToKeep = 10
	editNewFile2           = 100
	editNewFile3           = 102
	editNewFile4           = 103
	editColumnFamily       = 200
	editColumnFamilyAdd    = 201
	editColumnFamilyDrop   = 202
	editMaxColumnFamily    = 203
	editInAtomicGroup      = 300
	editBlobFileAddition   = 400
	editBlobFileGarbage    = 401
	// Tags with this bit set can be skipped when unknown: a varint32
	// length and that many bytes follow.
	editSafeIgnoreMask         = 1 << 13
	editDBID                   = editSafeIgnoreMask + 1
	editBlobFileAdditionLegacy = editSafeIgnoreMask + 2
	editBlobFileGarbageLegacy  = editSafeIgnoreMask + 3
	editWALAddition            = editSafeIgnoreMask + 4
	editWALDeletion            = editSafeIgnoreMask + 5
	editFullHistoryTSLow       = editSafeIgnoreMask + 6
	editWALAddition2           = editSafeIgnoreMask + 7
	editWALDeletion2           = editSafeIgnoreMask + 8
)

// The custom fields of a kNewFile4 entry (NewFileCustomTag): a field whose
// tag has newFileNonSafeIgnoreMask set must be understood.
const (
	newFileTerminate           = 1
	newFileMinLogNumberToKeep  = 3 // kMinLogNumberToKeepHack: fixed64
	newFileOldestBlobFile      = 4
	newFileNonSafeIgnoreMask   = 1 << 6
	newFilePathID              = newFileNonSafeIgnoreMask + 1
	blobFieldEnd               = 0 // BlobFileAddition, BlobFileGarbage custom fields
	blobFieldForwardIncompat   = 1 << 6
	walAdditionFieldTerminate  = 1 // WalAdditionTag, db/wal_edit.h
	walAdditionFieldSyncedSize = 2
	maxEditLevel               = 1 << 10 // far above any num_levels
)

// versionEdit is a decoded VersionEdit: what the MANIFEST reader applies.
type versionEdit struct {
	cf                                                  uint32
	comparator, cfName, dbID                            string
	hasComparator, cfAdd, cfDrop                        bool
	logNumber, prevLogNumber, nextFile, lastSeq, minLog uint64
	hasLog, hasPrevLog, hasNextFile, hasLastSeq, hasMin bool
	maxCF                                               uint32
	hasMaxCF                                            bool
	inAtomicGroup                                       bool
	remaining                                           uint32
	deleted                                             []fileRef
	added                                               []TableFile
	blobAdded                                           []BlobFile
	blobGarbage                                         []BlobFile // GarbageCount, GarbageBytes set
	walAdded                                            []TrackedWAL
	walDeleteBefore                                     uint64
	hasWALDelete                                        bool
}

type fileRef struct {
	level  int
	number uint64
}

// errEdit is a VersionEdit that cannot be decoded.
var errEdit = errors.New("bad version edit")

// editReader decodes the fields of a VersionEdit; the first error sticks.
type editReader struct {
	b   []byte
	err error
}

func (r *editReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errEdit, what)
	}
	r.b = nil
}

func (r *editReader) uvarint(what string, max uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > max {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *editReader) u64(what string) uint64 { return r.uvarint(what, 1<<64-1) }
func (r *editReader) u32(what string) uint32 { return uint32(r.uvarint(what, 1<<32-1)) }

func (r *editReader) slice(what string) []byte {
	n := r.uvarint(what, 1<<32-1)
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.fail(what)
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *editReader) level(what string) int { return int(r.uvarint(what, maxEditLevel)) }

// internalKey reads a length-prefixed internal key: a user key then 8
// bytes of sequence and type.
func (r *editReader) internalKey(what string) {
	if k := r.slice(what); r.err == nil && len(k) < 8 {
		r.fail(what)
	}
}

// decodeVersionEdit decodes one MANIFEST record.
func decodeVersionEdit(b []byte) (versionEdit, error) {
	r := &editReader{b: b}
	var e versionEdit
	for len(r.b) > 0 && r.err == nil {
		e.field(r, r.u32("tag"))
	}
	return e, r.err
}

// field decodes the value of one field of tag.
func (e *versionEdit) field(r *editReader, tag uint32) {
	switch tag {
	case editComparator:
		e.comparator, e.hasComparator = string(r.slice("comparator name")), true
	case editLogNumber:
		e.logNumber, e.hasLog = r.u64("log number"), true
	case editPrevLogNumber:
		e.prevLogNumber, e.hasPrevLog = r.u64("previous log number"), true
	case editNextFileNumber:
		e.nextFile, e.hasNextFile = r.u64("next file number"), true
	case editLastSequence:
		e.lastSeq, e.hasLastSeq = r.u64("last sequence"), true
	case editMinLogNumberToKeep:
		e.minLog, e.hasMin = r.u64("min log number to keep"), true
	case editMaxColumnFamily:
		e.maxCF, e.hasMaxCF = r.u32("max column family"), true
	case editCompactCursor:
		r.level("compact cursor level")
		r.internalKey("compact cursor")
	case editDeletedFile:
		lvl := r.level("deleted file level")
		e.deleted = append(e.deleted, fileRef{lvl, r.u64("deleted file number")})
	case editNewFile, editNewFile2, editNewFile3:
		e.newFileOld(r, tag)
	case editNewFile4:
		e.newFile4(r)
	case editBlobFileAddition, editBlobFileAdditionLegacy:
		e.blobAddition(r)
	case editBlobFileGarbage, editBlobFileGarbageLegacy:
		e.blobGarbageField(r)
	case editWALAddition:
		e.walAddition(r)
	case editWALAddition2:
		sub := &editReader{b: r.slice("wal addition")}
		e.walAddition(sub)
		r.err = errors.Join(r.err, sub.err)
	case editWALDeletion:
		e.walDeleteBefore, e.hasWALDelete = r.u64("wal deletion"), true
	case editWALDeletion2:
		sub := &editReader{b: r.slice("wal deletion")}
		e.walDeleteBefore, e.hasWALDelete = sub.u64("wal deletion"), true
		r.err = errors.Join(r.err, sub.err)
	case editColumnFamily:
		e.cf = r.u32("column family")
	case editColumnFamilyAdd:
		e.cfName, e.cfAdd = string(r.slice("column family add")), true
	case editColumnFamilyDrop:
		e.cfDrop = true
	case editInAtomicGroup:
		e.inAtomicGroup, e.remaining = true, r.u32("atomic group remaining entries")
	case editDBID:
		e.dbID = string(r.slice("db id"))
	case editFullHistoryTSLow:
		if len(r.slice("full history ts low")) == 0 && r.err == nil {
			r.fail("full history ts low: empty")
		}
	default:
		if tag&editSafeIgnoreMask == 0 {
			r.fail(fmt.Sprintf("unknown tag %d", tag))
			return
		}
		r.slice(fmt.Sprintf("safely ignorable tag %d", tag))
	}
}

// newFileOld decodes kNewFile, kNewFile2 and kNewFile3.
func (e *versionEdit) newFileOld(r *editReader, tag uint32) {
	f := TableFile{Level: r.level("new file level"), Number: r.u64("new file number")}
	if tag == editNewFile3 {
		r.u32("new file path id")
	}
	f.Size = r.u64("new file size")
	r.internalKey("new file smallest key")
	r.internalKey("new file largest key")
	if tag != editNewFile {
		f.SmallestSeq, f.LargestSeq = r.u64("new file smallest seq"), r.u64("new file largest seq")
	}
	e.added = append(e.added, f)
}

// newFile4 decodes kNewFile4 and its custom fields
// (VersionEdit::DecodeNewFile4From).
func (e *versionEdit) newFile4(r *editReader) {
	f := TableFile{Level: r.level("new file level"), Number: r.u64("new file number"), Size: r.u64("new file size")}
	r.internalKey("new file smallest key")
	r.internalKey("new file largest key")
	f.SmallestSeq, f.LargestSeq = r.u64("new file smallest seq"), r.u64("new file largest seq")
	for r.err == nil {
		tag := r.u32("new file custom field")
		if tag == newFileTerminate || r.err != nil {
			break
		}
		field := &editReader{b: r.slice("new file custom field")}
		switch {
		case r.err != nil:
		case tag == newFileMinLogNumberToKeep:
			if len(field.b) != 8 {
				r.fail("min log number to keep in a new file")
				break
			}
			e.minLog, e.hasMin = binary.LittleEndian.Uint64(field.b), true
		case tag == newFileOldestBlobFile:
			f.OldestBlob = field.u64("oldest blob file number")
		case tag == newFilePathID:
			if len(field.b) != 1 || field.b[0] > 3 {
				r.fail("new file path id")
			} else if field.b[0] != 0 {
				r.fail("new file in db_paths[" + fmt.Sprint(field.b[0]) + "]: only files in the database directory are supported")
			}
		case tag&newFileNonSafeIgnoreMask != 0:
			r.fail(fmt.Sprintf("new file custom field %d, not supported", tag))
		}
		r.err = errors.Join(r.err, field.err)
	}
	e.added = append(e.added, f)
}

// blobAddition decodes a BlobFileAddition (db/blob/blob_file_addition.cc).
func (e *versionEdit) blobAddition(r *editReader) {
	b := BlobFile{Number: r.u64("blob file number"), TotalCount: r.u64("blob count"), TotalBytes: r.u64("blob bytes")}
	r.slice("blob checksum method")
	r.slice("blob checksum value")
	blobCustomFields(r)
	e.blobAdded = append(e.blobAdded, b)
}

// blobGarbageField decodes a BlobFileGarbage (db/blob/blob_file_garbage.cc).
func (e *versionEdit) blobGarbageField(r *editReader) {
	b := BlobFile{Number: r.u64("blob file number"), GarbageCount: r.u64("garbage blob count"), GarbageBytes: r.u64("garbage blob bytes")}
	blobCustomFields(r)
	e.blobGarbage = append(e.blobGarbage, b)
}

func blobCustomFields(r *editReader) {
	for r.err == nil {
		tag := r.u32("blob custom field")
		switch {
		case r.err != nil || tag == blobFieldEnd:
			return
		case tag&blobFieldForwardIncompat != 0:
			r.fail(fmt.Sprintf("blob file custom field %d, not supported", tag))
			return
		}
		r.slice("blob custom field")
	}
}

// walAddition decodes a WalAddition (db/wal_edit.cc).
func (e *versionEdit) walAddition(r *editReader) {
	w := TrackedWAL{Number: r.u64("wal number")}
	for r.err == nil {
		switch tag := r.u32("wal addition field"); {
		case r.err != nil:
			return
		case tag == walAdditionFieldTerminate:
			e.walAdded = append(e.walAdded, w)
			return
		case tag == walAdditionFieldSyncedSize:
			w.SyncedSize, w.Synced = r.u64("wal synced size"), true
		default:
			r.fail(fmt.Sprintf("wal addition field %d", tag))
		}
	}
}

// isFamilyEdit says whether the edit adds or drops a column family.
func (e *versionEdit) isFamilyEdit() bool { return e.cfAdd || e.cfDrop }

// isWALEdit says whether the edit only tracks WALs (VersionEdit::IsWalManipulation).
func (e *versionEdit) isWALEdit() bool { return len(e.walAdded) > 0 || e.hasWALDelete }
