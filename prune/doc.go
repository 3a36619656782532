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
// Phase 1 first writes a pending record, prune/<created>-<rand>.json, of
// the objects to delete and why (manifest.PruneRecord), and then commits
// the manifest without the dropped bases (one compare-and-swap; when
// another write came first, the archive is scanned and planned again; the
// writer field is never changed). The record comes first so that every
// drop that a reader of the manifest can see has its record: a run that
// dies in between leaves a record of objects that the manifest still
// names, which its sweep keeps, and drops nothing. Its not_before is its
// creation plus the grace plus an allowance for the commit (the smaller
// of the grace and 10 s); a commit that takes longer makes the run write
// its records again after it. So an object goes no earlier than a grace
// after the commit that stopped naming it.
//
// Phase 2, in the same run and in every later one, sweeps each record
// whose wait is over: it judges each object again against the archive as
// it is then (a fresh scan per batch of keys: the manifest first, then the
// records), deletes only those still unneeded, and then the record. A key
// waits for every record that holds it: an object that another record
// holds longer (it was dropped again, or with a longer grace) waits for
// that one. Right before deleting, the sweep checks that the manifest did
// not change (and, before SST files, that no file list appeared), and
// judges again when it did; an SST file written within the grace stays (a
// base upload may be reusing it). What stays but may go later (such an
// SST file, or any SST file while a file list cannot be read) is carried
// into a new record, so that nothing is left unscheduled.
//
// A record's wait counts from the later of its created time and the time
// the store wrote it, by the clock of the host that sweeps: prune hosts
// are assumed to keep their clocks right (NTP).
//
// A file list that a pending record deletes makes its base's other
// objects and SST files be scheduled too, when no record holds them (a run
// that wrote only some of its records). A files.json that the manifest
// does not name and no record holds (a base dropped by an older rockstream
// that died before its record, or an upload that stopped) counts as a
// dropped base once it is older than the grace and a newer base of its
// timeline is kept. Objects under a base prefix without a files.json (an
// upload that stopped), and keys under a dropped base's prefix that
// rockstream never writes, are never deleted.
//
// # Concurrent readers and writers
//
// A restore or standby bootstrap that read the manifest before phase 1
// finds every object it needs for the grace period after the commit. The
// archiver's own compare-and-swap fails once after a prune's and is
// redone. A new base reuses only SST files that a committed base names and
// uploads the others again (refreshing them). After its commit, it checks
// that every file of the base, its files.json included, is there,
// uploading again any that is not. A base whose upload, from its
// start to that check, is shorter than the grace never meets a sweep of
// its files; a longer one is covered by these checks but for one window:
// a sweep's delete already on its way when the archiver commits and
// looks (about one request's time).
package prune
