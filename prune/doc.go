// Package prune is retention: it deletes the bases that a policy no longer
// keeps, and the segments and SST files that only they needed, without
// ever taking a sequence away from a kept base's restorable range.
//
// # What is kept
//
// A Policy keeps, for each timeline t of the manifest, some of the bases
// usable to restore t (manifest.Lineage: t's own bases and its ancestors'
// at or before each branch point): KeepLast keeps the N newest by
// sequence; KeepWithin keeps those taken within the duration and the
// newest one taken before it, so that a restore reaches back that far. A
// base that either rule keeps, for any timeline, is kept; the newest usable
// base of every timeline always is.
//
// A segment is needed when, for some timeline t whose history holds it
// (across branch points), it holds a sequence after the oldest kept base
// usable by t. A timeline with no usable base keeps all its segments and
// pins nothing of its ancestors. The last segment of each timeline is
// always kept: it says where the timeline's archive ends (an end marker
// fences an old primary). Segments of timelines that the manifest does not
// list are never touched. A dropped base loses its file list and every
// object under its prefix, and the SST files that no other file list under
// bases/ names (an archiver may be uploading a base that the manifest does
// not name yet). While any files.json cannot be read, no SST file goes.
//
// MakePlan computes this from a View (the manifest, the segment listing,
// the file lists) without any I/O, and Check is the invariant it checks
// before anything changes: with the kept bases, every sequence that was
// restorable is still restorable once the planned objects are gone, and no
// file of a kept base is among them.
//
// # Two phases
//
// Phase 1 commits the manifest without the dropped bases (one
// compare-and-swap; when another write came first, the archive is scanned
// and planned again; the writer field is never changed), then writes a
// pending record, prune/<created>-<rand>.json, of the objects to delete
// and why (manifest.PruneRecord). Phase 2, in the same run and in every
// later one, sweeps each record whose grace is over: it judges each object
// again against the archive as it is then (a fresh scan per batch of
// keys), deletes only those still unneeded, and then the record. An object
// that a newer record holds waits for that one (it was needed again in
// between). An SST file written within the grace stays: a base upload may
// be reusing it.
//
// A process that dies between the commit and the record leaves the
// dropped bases' objects unnamed; a later run treats a files.json that the
// manifest does not name as a dropped base once it is older than the grace
// and a newer base of its timeline is kept. Objects under a base prefix
// without a files.json (an upload that stopped) are never deleted.
//
// # Concurrent readers and writers
//
// A restore or standby bootstrap that read the manifest before phase 1
// finds every object it needs for the grace period after the record was
// written. The archiver's own compare-and-swap fails once after a prune's
// and is redone. A new base reuses only SST files that a committed base
// names, uploads the others again (refreshing them), and checks after its
// commit that every SST file it names is there: so a base upload shorter
// than the grace never loses a file to a prune.
package prune
