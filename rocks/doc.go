// Package rocks is rockstream's only cgo package: every other package talks
// to RocksDB through it. It uses grocksdb v1.7.15 over Debian's RocksDB
// 7.8.3.
//
// What it offers:
//
//   - Follower: a database that another process writes, opened as a RocksDB
//     secondary instance with all its column families; CatchUp reads the
//     writer's progress. Updates reads its WAL batch by batch, with
//     continuity checked (a *GapError instead of RocksDB's silent skip).
//     Checkpoint writes a checkpoint and returns its exact last sequence.
//   - WALTail: the batches of a database's WAL read from its files
//     (<dir>/<n>.log and <dir>/archive/<n>.log) in plain Go, while the
//     writer appends to them, with the same continuity checks and no RocksDB
//     instance: no replay into memtables, no memory but a read buffer and
//     the batch at hand. It reads compressed WAL (wal_compression=zstd), and
//     its Head tells where the WAL ends (the newest file's last batch), so
//     that the archiver measures its lag against the database.
//   - FollowerSource: the sidecar archiver's Source (archive.Source) over a
//     database that another process writes: it reads the batches with a
//     WALTail and takes a checkpoint with CopyCheckpoint, with no RocksDB
//     instance at all.
//   - ReadManifest: the MANIFEST read in plain Go (its log of VersionEdits
//     applied as RocksDB recovers it): last sequence, live column families
//     with their SST and blob files, tracked WALs, column family additions
//     and drops.
//   - CopyCheckpoint: a checkpoint of a database that another process
//     writes, made of files: the MANIFEST's bytes up to its last complete
//     edit, hard links to the SST and blob files it names, the WAL files
//     that recovery replays or checks (cut at their last complete record),
//     OPTIONS and IDENTITY. Files that vanish meanwhile (a compaction) make
//     it read the MANIFEST on and try again. Its sequence is computed in Go:
//     the MANIFEST's last sequence or the end of the last batch of the WAL
//     copied, whichever is larger (two-phase-commit batches counted with
//     Txns); a checkpoint whose WAL copies miss sequences written without
//     the WAL and not flushed yet is ErrUnflushed.
//   - Primary: the archiver's Source (archive.Source) over a database that
//     the program owns and has opened read-write itself (library mode). It
//     reads the WAL of the program's handle with the same Updates and
//     continuity checks, takes checkpoints of it, and never closes it.
//   - DB: a local database opened writable (the standby) or read-only,
//     with the database's own options (Options.Own: its OPTIONS file) or
//     RocksDB's defaults; Apply replays a batch read from the WAL with the
//     sequence numbers it had in the source.
//   - Replayer: restore's and the drill's replay by RocksDB's own recovery:
//     batches written as WAL files (WALWriter) into a base, recovered with
//     the database's own options in chunks, the sequence checked; or, in
//     hand-off, only written, for the application's RocksDB to recover.
//   - InspectOptions, Operators, Finding: what an OPTIONS file needs that
//     rockstream does not have (a merge operator or comparator of the
//     application's own), and the application's own operators in library
//     mode.
//   - Txns: the prepared sections of a TransactionDB's two-phase-commit
//     transactions, and how many sequences each batch uses (txn.go);
//     PreparedIn reads them from a base's WAL copies. Apply applies
//     transactions as recovery would.
//   - Column families created and dropped: FollowerSource and Primary
//     notice them (archive.FamilyWatcher; familywatch.go says where each is
//     placed in the sequence, since RocksDB records none), BatchFamilies
//     lists the ids a batch names, FamilyOptions reads a family's options
//     from the OPTIONS file, and DB.CreateFamily, DB.DropFamily and the Replayer's replay a
//     change with the id checked (ErrFamilyID).
//   - ReadWALRetention, ReadIdentity, CheckpointFiles: files of a database
//     directory, in plain Go.
//   - Digest: sha256 of every key and value per column family, to compare a
//     restored database with its source.
//
// # Sequence numbers
//
// A batch uses the sequences Seq to Seq+Count-1; the next batch starts at
// Seq+Count (Batch.Next). Count is the batch header's count of records but
// for a TransactionDB's two-phase commit (WriteCommitted policy): a prepare
// is logged with its records and uses no sequence, a commit uses its own
// records' and the prepared count, whose records are inserted at its
// sequences, and a rollback uses none (Txns, after
// utilities/transactions/pessimistic_transaction.cc and db/write_batch.cc's
// MemTableInserter). WALTail gives that Count; Updates and Primary, over
// a plain grocksdb.DB, give the header's. Applying batches read from the
// WAL, in order, to a checkpoint of the source keeps the sequences aligned:
// after each batch the copy's LatestSequence is Seq+Count-1 (checked by
// Apply, for multi-column-family batches too).
//
// Updates(from) yields first the batch that covers from: when from is
// inside a multi-operation batch, RocksDB positions on that batch, which
// starts before from, and Updates yields it as is. Callers that resume right
// after a batch treat Seq != from on the first batch as their own error.
//
// # RocksDB 7.8.3 behaviours found while testing
//
// These are pinned by tests (names in brackets).
//
//   - Debian's RocksDB aborts the process instead of returning an error on
//     a read-only open of a database whose MANIFEST tracks WALs when the
//     options do not (db_impl_open.cc:624), on a secondary instance over a
//     WAL with 2PC markers (write_batch.cc:601), and crashes on a secondary
//     instance of an integrated BlobDB database. Nothing in the sidecar's
//     path opens a RocksDB instance any more, and no checkpoint is opened
//     to learn its sequence [TestCheckpointTrackedWALs,
//     TestCheckpointTransactionDB, TestCheckpointBlobDB].
//
//   - A VersionEdit that adds or drops a column family carries the
//     MANIFEST's last sequence as of its previous write, which can be
//     behind the database's (VersionSet::LogAndApplyCFHelper)
//     [TestReadManifestLdb].
//
//   - A checkpoint of a secondary is built from the secondary's view as of
//     its last catch-up but takes the WAL files live at the time of the
//     call, so a WAL file that the writer archived in between is left out
//     silently: the checkpoint opens at the writer's sequence with a hole.
//     Checkpoint detects that and retries after a catch-up
//     [TestCheckpointArchivedWAL]. A checkpoint's last sequence can be ahead
//     of the follower's [TestFollowCheckpointApply].
//
//   - A secondary does not notice that its database was deleted and created
//     again in the same directory (db_bench does that); CatchUp compares the
//     IDENTITY file [TestFollowerReplaced].
//
//   - Replaying a batch that holds an empty range deletion (begin == end)
//     does not count that operation's sequence: a follower, a read-only
//     open or a restarted writer ends one sequence short when such a batch
//     is the last one. With Debian's RocksDB, built with assertions, reading
//     that batch with the WAL iterator while it is the follower's last batch
//     aborts the process (transaction_log_impl.cc: current_last_seq_ <=
//     LastSequence()) [TestEmptyDeleteRange]. WALTail, which the sidecar
//     reads with, has no such limit [TestWALTailEmptyDeleteRange].
//
//   - A flush that drops the newest entries (a Put and its SingleDelete)
//     makes the database reopen at an older last sequence
//     [TestSequenceAfterFlushAndReopen]. Apply reports both as a gap instead
//     of writing at shifted sequences.
//
//   - On a primary (the program's own handle) an empty range deletion is
//     counted, so reading its batch is safe, but a checkpoint taken while it
//     is the last batch ends one sequence short, inside that batch; the
//     Primary then refuses to continue from there
//     [TestPrimaryEmptyDeleteRange].
//
//   - A checkpoint of a primary without a flush leaves out the writes made
//     without the WAL, and opens at the database's sequence all the same
//     when logged writes follow them [TestPrimaryCheckpointUnloggedWrites].
//     A checkpoint with a flush that dropped the newest entries (a Put and
//     its SingleDelete) opens at an older sequence, possibly inside a batch
//     [TestPrimaryCheckpointDroppedEntries]. Primary.Checkpoint flushes only
//     when the first applies. No checkpoint holds an IDENTITY file;
//     Primary.Checkpoint copies it.
//
//   - LoadLatestOptions resolves the built-in merge operators that an
//     OPTIONS file names (uint64add, stringappend, stringappendtest, max,
//     put, bytesxor, sortlist) [TestOwnOptionsMergeOperators]; grocksdb
//     v1.7.15 gives no access to the DBOptions it loads (latestDBOptions
//     reads them, the layout checked), and its Options.Destroy frees a Go
//     merge operator a second time (options with one are left to the
//     LatestOptions that own them).
//
//   - Recovery in point-in-time mode stops silently at a batch that fails
//     to insert (a merge without a merge operator), and skips writes to a
//     column family it does not know: the Replayer decodes every batch
//     first and checks the sequence reached. A batch with two-phase-commit
//     markers recovered without allow_2pc aborts Debian's RocksDB
//     (write_batch.cc:601) [TestReplayerTwoPhaseCommit]. The flush at the
//     end of a recovery can drop the newest entries and reopen behind, as
//     Apply's can (restore's finish).
//
//   - A checkpoint of a secondary holds no OPTIONS file (the sidecar's
//     file checkpoint copies the newest one).
//
//   - RocksDB logs a batch before it decodes it: a malformed batch, a merge
//     without a merge operator, an unknown column family or a range deletion
//     that ends before it begins fails after it is in the WAL (and a bad
//     batch in the WAL stops the database from opening). Apply decodes the
//     batch first and refuses those (ErrCorrupt, ErrUnsupported).
//
// # Library mode
//
// A program that opens its database with grocksdb itself archives it in
// the same process with the sidecar's behaviour:
//
//	opts.SetWALTtlSeconds(3600)           // keep flushed WAL for the archiver
//	db, err := grocksdb.OpenDb(opts, dir) // the program's own handle
//	...
//	src, err := rocks.NewPrimary(db, dir) // dir: where db was opened
//	a, err := archive.New(src, store, archive.Options{WorkDir: work})
//	done := make(chan error, 1)
//	go func() { done <- a.Run(ctx) }()    // next to the program's writes
//	...
//	cancel()                              // Run uploads what it read, returns
//	err = <-done
//	src.Close()                           // after Run returned
//	db.Close()                            // last: the program's, as before
//
// Without WAL_ttl_seconds or WAL_size_limit_MB (ReadWALRetention reads
// them), RocksDB deletes a WAL file at its flush, possibly before the
// archiver read it: the archive then records a hole and takes a new base.
// Writes made with WriteOptions.DisableWAL are a hole too; the Primary's
// Checkpoint notices when they are missing from a checkpoint and takes it
// again with a flush. The archive package's Example_libraryMode runs this
// whole.
//
// # Resources
//
// Every grocksdb object is released by the type that created it: close a
// Follower, DB, Primary, Updates, WALTail or FollowerSource when done. Closing a Follower or a
// Primary closes its Updates; closing a Primary leaves the program's
// database open, and must come before the program closes it.
// RocksDB asserts that no column family handle outlives its database; this
// package destroys them in order.
//
// # Testing consumers
//
// The types are concrete. A consumer that wants to test without RocksDB
// declares the few methods it uses as its own interface, e.g.
//
//	type wal interface {
//		Next() (rocks.Batch, bool, error)
//		Close() error
//	}
//
// which *Updates satisfies and a slice of batches fakes in a few lines.
package rocks
