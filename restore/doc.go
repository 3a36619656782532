// Package restore builds a RocksDB database from an archive at any
// restorable point (Run), and checks that an archive holds everything a
// restore needs (Verify).
//
// # Restore
//
// Run reads the manifest and the segment listings (catalog.Load), picks the
// timeline and the target sequence, and lets manifest.PlanRestore choose
// the base and the segments: the base, then the segments in order,
// following parent timelines up to their branch points. Then it
//
//  1. downloads the base's files in parallel, with ranged gets, into a
//     temporary folder beside the destination (.NAME.restore-XXXX, so that
//     the final rename is atomic), checking each file's size and SHA-256
//     against the base's files.json;
//  2. opens that checkpoint once with the database's own options (its
//     OPTIONS file) and checks its sequence, then streams each segment (one
//     block decoded at a time, with a bounded read-ahead of the next
//     segments so that transfers overlap with the replay), replaying its
//     batches in order, up to the last batch that ends at or before the
//     target (rocks.Replayer). A batch is atomic: a target inside a batch
//     rounds down to the batch before. Each batch is decoded first and
//     must start right after the one before; a batch that the database's
//     options cannot replay (a merge without a merge operator) is refused
//     before it is written. Batches are written directly into the
//     database, opened with its own options, at their own sequences and
//     without the WAL (memtables flushed in RocksDB's background threads
//     meanwhile, every column family flushed at the end); from the first
//     batch with two-phase-commit markers on (from the start when the
//     base's own WAL copies hold some, and when the database opens behind
//     the batches), they are written into WAL files of the checkpoint instead, and every 256 MiB of WAL, and at the
//     end, the database is opened so that RocksDB's recovery replays the
//     file (which is what rebuilds a prepared transaction). Either way its
//     last sequence is checked. The column families created or dropped in
//     between (the plan's CFChanges) are created or dropped at their place:
//     what is written up to there is flushed or recovered, then the
//     database is opened to make the change, with the id that the batches
//     name checked (rocks.Replayer.CreateFamily);
//  3. opens it again read-only and checks that its last sequence is the
//     one reached (see finish for the one case where RocksDB comes back
//     behind, and what is done then);
//  4. syncs every file of the folder, and renames it into place. With
//     Force, a destination that held files is moved aside first, and
//     deleted only once the new one is in place.
//
// With Options.HandOff (for a merge operator or comparator of the
// application's own, which rockstream does not have), step 2 only writes
// the WAL files and step 3 is skipped: the application's RocksDB replays
// them at its first open.
//
// Whatever fails before the rename removes the temporary folder and
// leaves the destination as it was. Errors name the object key at fault;
// damage to the archive matches ErrCorrupt (or segments.ErrCorrupt,
// manifest.ErrInvalid), a target outside the archive
// manifest.ErrNotRestorable with the restorable ranges in its text.
//
// # Catch-up
//
// CatchUp replays, with the same replayer, the segments after the sequence
// of a database that lives on (a standby's: PlanCatchUp lists them), into
// that database in place: the families flush together and its own OPTIONS
// file is kept aside while the bulk-load options are the newest
// (rocks.ReplayOptions.InPlace), so a crash half-way leaves it at one
// sequence with its own options; it stops before the first batch with
// two-phase-commit markers (rocks.ReplayOptions.StopAtTxn).
//
// # Targets
//
// A sequence target N gives the database holding exactly the batches of
// the timeline's history whose last sequence is at most N. A time target T
// gives the last batch archived at or before T (segment trailers carry the
// archive times of their first and last batch, each batch its own; a base
// its own time), or a base taken at or before T if that is later in the
// history. Times are assumed not to go backwards along a history (one
// archiver stamps them in order). Without a target, the latest restorable
// state. The timeline defaults to the newest one whose ranges hold the
// target; for a restore to the latest state, to the timeline that the
// manifest's writer writes, else the newest.
//
// # Verify
//
// Verify reads every object a restore could need: each base's files.json
// and every file it names (size and SHA-256), each segment whole (CRCs,
// continuity, header and trailer against its key), and the continuity
// between consecutive segments of a timeline, which the catalog takes on
// trust from key names (docs/FORMAT.md, "Rules of the writer"). It then
// compares the restorable ranges that status derives from the key names
// with the ranges that the objects actually give. With Drill it also
// restores the latest state into a scratch folder, and reproduces the
// newest base from an older base and the segments, comparing logical
// digests (FormatDigest).
package restore
