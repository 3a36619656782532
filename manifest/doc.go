// Package manifest is the layout of an archive in its bucket: every object
// key, the manifest (the one mutable object) with its compare-and-swap, the
// file lists of bases, the validation of all of them when read, and the
// restorable ranges that follow from them. No other package builds a key.
//
// # The bucket
//
// Keys are relative to the objstore.Store, which adds any prefix of the
// location. Numbers are lower-case hex of fixed width, so that a listing in
// key order is numeric order:
//
//	manifest.json                              the manifest (Manifest)
//	segments/<tl 8 hex>/<first 16 hex>.seg     segments of timeline tl
//	bases/<tl 8 hex>/<seq 16 hex>/files.json   a base's file list (FileList)
//	bases/<tl 8 hex>/<seq 16 hex>/<name>       its other files: CURRENT,
//	                                           MANIFEST-*, OPTIONS-*,
//	                                           IDENTITY, *.log
//	sst/<sha256 64 hex>.sst                    SST files, shared by bases
//	probe/<32 hex>                             short-lived objects of
//	                                           `rockstream check`
//	prune/<nanos 16 hex>-<rand 8 hex>.json     pending records of
//	                                           `rockstream prune`
//	                                           (PruneRecord)
//
// For example segments/00000001/00000000000004b1.seg is the segment of
// timeline 1 whose first batch starts at sequence 1201.
//
// # Segments
//
// A segment's key holds its first sequence only. The segments of a
// timeline are contiguous: the next one starts at the sequence after the
// last batch of the one before. So a follower that has applied everything
// up to S gets SegmentKey(tl, S+1), and a 404 means nothing new yet; no
// listing is needed. A segment is created with if-none-match, so two
// writers of one timeline collide on the same key and one of them fails.
// Once its put has succeeded a segment is durable and counts: the manifest
// does not list segments.
//
// # Timelines
//
// Timeline 1 is the database's first history. A promotion or a restore
// that goes on writing starts a child timeline, with the next free id,
// which branches from its parent at a sequence B: the parent's batches up
// to and including B belong to the child, the parent's later ones do not,
// and the child's own segments start at B+1. So the segments of a
// timeline's history are its own plus its parent's up to the branch point,
// and so on up to timeline 1. A parent always has a lower id than its
// child.
//
// # Bases
//
// A base is a RocksDB checkpoint taken at sequence S (it contains exactly
// the batches up to S). Its file list names each file with its size,
// SHA-256 and key. SST files are stored under their content's hash, once
// for all bases; the other files under the base's own prefix. A file list
// is written once (if-none-match) and never changed once the manifest names
// it (ReplaceFileList is the writer's, for a fenced archiver's leftover).
//
// # The manifest
//
// manifest.json holds the database identity, the timelines, the bases, the
// holes (sequences known to be missing) and the writer. It changes only
// when a base is added, a hole recorded, or a writer takes over, and only
// by compare-and-swap: Create puts it with if-none-match, Commit replaces
// it with if-match on the ETag that Load returned, and Update wraps the
// two in a retry loop. Every write sets a new random revision, by which a
// writer whose put was refused after a retry of the client recognises its
// own write. A writer is fenced when the stored writer has a higher epoch,
// or the same epoch under another identity.
//
// # Restorable ranges
//
// Restorable takes the manifest and the segments of each timeline and
// returns, per timeline, the ranges of sequences a restore can reach: from
// each base, through the unbroken chain of segments after it, up to the
// first gap or recorded hole. PlanRestore picks the base and the segments
// for one target.
//
// # Pending prune records
//
// A prune drops bases from the manifest first, then writes a PruneRecord
// (create-only) listing the objects to delete once its grace is over, and
// deletes the record when they are gone. Its key holds its creation time,
// so a listing of prune/ is in time order. A record names only segment,
// base and SST keys of the layout's exact forms (CheckPrunable): never the
// manifest, a probe or another record.
//
// # Versions
//
// manifest.json, files.json and the pending records carry "format": 1. A
// reader refuses any other version, and refuses unknown fields: a change
// of fields is a new version, because a writer that does not know a field
// would drop it when it rewrites the manifest. Every limit that reading enforces is a
// constant of this package (MaxFileSize, MaxFiles, MaxEntries,
// MaxManifestSize, MaxFileListSize, MaxPruneObjects, MaxPruneRecordSize).
package manifest
