// Package standby keeps a warm copy of an archived RocksDB database: it
// builds the database from the archive once, then applies every new write
// batch as the archiver uploads it, so that the copy is a few hundred
// milliseconds behind the primary.
//
// # Bootstrap
//
// When the folder is missing or empty, Run restores the latest archived state
// of the archive's current timeline (the writer's, else the newest) with
// restore.Run: the newest base at or below it plus the segments after it,
// built beside the folder and renamed into place. When the folder holds a
// database of this archive (its IDENTITY equals the manifest's), Run continues
// from the database's latest sequence. A folder that holds anything else, or
// another archive's database, is refused (ErrNotStandby, ErrOtherArchive).
//
// The timeline being followed is kept in the file STANDBY-TIMELINE in the
// folder (RocksDB leaves files it does not know alone); it is written before
// the first batch of a new timeline is applied. The bootstrap writes it into
// the restored folder before the rename into place
// (restore.Options.BeforeInstall), so a crash leaves either an empty folder
// or a database with its record. A folder without a record (left by an
// older version, or put there by hand) is followed only when its database
// is at or below every branch point of the archive, where all histories
// agree: on the timeline of the current path that holds its sequence, and
// on to the child at each branch point. Otherwise Run refuses it
// (ErrRebuild), since which history it holds cannot be told.
//
// # Catch-up
//
// A standby behind by at least Options.CatchUpBytes (32 MiB; the command's
// --catch-up) of segments on its timeline replays them as a restore does
// (restore.CatchUp, rocks.Replayer's direct path: written without the WAL
// into memtables that are sorted when they flush, segments read ahead),
// several times faster than the follow path below; its state is then
// "catching_up". It looks (one listing) when the first segment of a run was
// waiting at its first GET (a restart behind a backlog), or two in a row
// were (it falls behind a writer), at most every 30 s. The database is
// closed meanwhile; the column families flush together (atomic_flush, also
// at the close), and the database's own OPTIONS file is kept aside while
// the bulk load's are the newest (rocks.KeptOptionsName), so a crash
// half-way leaves the database at one sequence with its own options, and
// the next start goes on from there. It stops before the first batch with
// two-phase-commit markers, at a gap, at a branch point, and makes column
// family changes at their place; the follow path goes on from where it
// ends, as after a restart (prepares held in memory are read again when one
// commits). Never with a live stream. A promotion asked meanwhile waits for
// its end.
//
// # Follow
//
// The database stays open with its WAL on, so every applied batch is durable
// and atomic: after a crash (even kill -9) the database's latest sequence is
// exactly the last batch applied, and Run resumes right after it. Each batch
// is applied only when it starts at the database's latest sequence + 1
// (rocks.DB.ApplyBatches), so no batch is applied twice or skipped. The
// batches of a segment are gathered (up to 4 MiB, and up to a column family
// change) and applied together: each run of plain batches as one write
// batch that gives every record its own sequence, since a write per batch
// costs more than a small batch; readers see a gathering appear at once. The database is
// opened with its own options (its OPTIONS file), so merges replay with
// their merge operators (Options.Operators for the application's own).
// The column families that the manifest records as created or dropped
// (manifest.ColumnFamilyChange) are created or dropped before the first
// batch after their place; a batch that names a family the database lacks
// makes Run read the manifest at once, and each periodic read brings the
// drops (restore.ApplyFamilyChange; a change the database reflects
// already, after a restart, is left as it is).
//
// A TransactionDB's two-phase-commit transactions are applied as RocksDB's
// recovery applies them (rocks.DB.Apply): a prepare is held in memory, its
// commit writes the prepared records at the commit's sequences, a rollback
// drops them, so the standby's latest sequence is the source's after every
// batch and no uncommitted write is ever visible. A segment is read from
// the batch after S on, including the prepares (which use no sequence) at
// S+1. The first commit, in a run, of a transaction prepared before the run
// (before a restart, or in the bootstrap's restore) makes the standby read
// what was prepared at the run's start: the WAL copies of the base that a
// restore to there starts from, and the segments after it (txns.go); a
// standby of a database without transactions never does.
//
// With S applied, the next segment is at manifest.SegmentKey(tl, S+1): the
// segments of a timeline are contiguous (docs/FORMAT.md). Run polls that key
// with one GET every Options.Poll; a 404 means nothing new. While the archive
// is idle the interval grows to at most Options.MaxPoll, and falls back to
// Poll as soon as a segment arrives. At start, when S+1 is inside a segment
// (after a restart, or a base taken inside a segment), and after batches
// applied from the live stream (which end anywhere), the timeline is
// listed once from the newest base below S+1 (catalog.Containing) to find
// the segment that holds it; the same listing tells whether later data
// exists when none does.
//
// Under a steady load the archiver uploads a segment every segment age, so
// Run predicts the next one's arrival: one period (the difference of the
// last two segments' header times) after the last one appeared (between
// the GET that missed it and the GET that found it), once two consecutive
// periods agree within 25% (one slow pair of segments predicts nothing).
// It then waits until 3 fine polls (Poll/10) before that moment, still
// polling at least every 4 Poll or half a period, whichever is longer (a
// segment that comes early is found then), polls every Poll/10 until 20
// fine polls after it, and goes back to Poll and its backoff when nothing
// came. A segment that arrives as predicted costs about 6 GETs and is found
// within Poll/10 of its upload. Only a period up to MaxPoll is predicted,
// so the wait never exceeds what the idle backoff allows.
//
// Every Options.ManifestCheck the manifest is read again with a conditional
// GET (manifest.Reload). When the current timeline has moved on to a child of
// the followed one (a promotion elsewhere), Run applies the parent's batches
// up to the child's branch point and then follows the child; a segment with
// segments.FlagEnd also sends it to the child. When the standby has already
// applied batches past the branch point, they are not in the new history: Run
// stops with ErrRebuild.
//
// A damaged segment, a segment of another timeline, a batch that does not
// continue the database, a hole that the manifest records at S+1, or a
// manifest that cannot be trusted stop Run with an error that names the key;
// damage matches restore.ErrCorrupt (or segments.ErrCorrupt,
// manifest.ErrInvalid). What was applied stays applied. Store errors (the
// store unreachable for a while) are logged, counted and retried.
//
// # Reading from the standby
//
// Another process reads the folder as a RocksDB secondary instance, which
// never changes the standby's files: grocksdb.OpenDbAsSecondary (or
// OpenDbAsSecondaryColumnFamilies for several column families) with a scratch
// folder of its own, then TryCatchUpWithPrimary every so often to see the
// batches applied since. rocks' Example_secondaryReader (rocks/example_test.go)
// shows it whole; rocks.OpenFollower does the same for Go code of this module.
//
// # Library mode
//
// A Go program runs the standby in-process: New, then Run in a goroutine.
// After a promotion (Promote, or POST /promote on Handler) Run closes the
// database and returns nil. Standby.TakeOver then opens the folder
// read-write with the program's own options (TakeoverOptions.Open), hands
// the *grocksdb.DB to the program, and archives it in-process on the new
// timeline (an archive.Archiver over rocks.Primary, with Options.WriterID):
// the program becomes the primary without a restart (Example_takeOver).
// Primary.Close stops that archiver; the program closes the database after.
//
// Before it closes the database, a promotion records itself in
// STANDBY-TIMELINE ("promoted"; RecordPromotion, which `rockstream
// promote --from` also calls). Run on a promoted folder (the program or
// the process restarted) never opens the database, which the application
// may hold: it returns nil at once, and Promoted reports the recorded
// promotion, so that TakeOver (or the command line's archiver) continues
// as after the promotion itself, with its writer ID. A promoted folder
// whose timeline a later promotion fenced is refused (ErrRebuild). A
// promotion that committed but was not recorded (a crash in between) is
// recognized at start: the manifest's writer is Options.WriterID on a
// child of the followed timeline, branching at or below the database's
// sequence.
//
// # Status and lag
//
// Status reports the applied sequence, the archive head (the last sequence of
// the newest segment read, from its trailer), and the lag: in sequences, head
// minus applied; in seconds, 0 once every batch of every segment found is
// applied, else the time since the archive time of the last applied batch (or,
// before any, of the first batch of the segment at hand). Neither counts the
// time the archiver holds a batch before its upload (--segment-age) or the
// poll interval: the commit-to-visible lag is that plus the lag reported.
// Handler serves it as JSON (/status) and as Prometheus metrics (/metrics).
package standby
