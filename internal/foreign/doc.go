// Package foreign plays applications that write RocksDB the way real
// programs do, each with its own options (a "shape"), for the foreign-writer
// suite: rockstream archives a database that another process owns, and a
// restore to sequence S must be the database the application had at S.
//
// The program cmd/foreignwriter (a test fixture, not a product, hence under
// internal/ and not cmd/) writes one shape deterministically from a seed and,
// at marks, records the exact state: the database's latest sequence, taken
// while no write is in flight (the writer is single-threaded), and a digest
// of every key and value per column family, as JSON lines. At each mark it
// also takes a RocksDB checkpoint of its own database, so that a difference
// can be shown key by key. Its verify and diff modes open a folder with the
// shape's own options: that is "opened by the application".
//
// The digest is the one of rocks.Digest (rocks/digest.go): per column family,
// sha256 over every key and value in key order, each preceded by its length
// as 8 bytes big-endian; the suite checks that both agree.
//
// Shapes (Lookup, Names):
//
//   - plain: one default family, default options, WAL_ttl_seconds (the baseline).
//   - homeserver: shaped like a Matrix homeserver (tuwunel's
//     src/database/engine/{db_opts,cf_opts}.rs and src/database/maps.rs):
//     over 80 column families, FIFO with a TTL for caches, universal for the
//     small random maps, level for the rest, zstd, block sizes of their own,
//     manual_wal_flush with periodic FlushWAL, pipelined writes,
//     track_and_verify_wals_in_manifest, WAL_size_limit_MB=1024,
//     WAL_ttl_seconds, max_total_wal_size, small write buffers.
//   - merge: families with the built-in merge operators uint64add and
//     stringappend (named in the options string, so the OPTIONS file names
//     them), written with Merge.
//   - txn: a TransactionDB (write-committed) with named transactions:
//     prepare+commit, prepare+rollback, prepared across marks, and one left
//     prepared at the end, interleaved with plain writes, several families.
//   - cfchurn: column families created (with options of their own) and
//     dropped while writing, names reused after a drop.
//   - walzstd: wal_compression=zstd.
//   - smallmem: 64 KiB to 256 KiB write buffers, many WAL switches.
//   - waldir: the WAL in DIR.wal beside the database DIR (wal_dir).
//   - unordered: unordered_write=true.
//   - avoidflush: avoid_flush_during_recovery=true.
//   - blobdb: integrated BlobDB (enable_blob_files, min_blob_size=64).
//   - comparator: the built-in rocksdb.ReverseBytewiseComparator.
//   - unlogged: one batch in 40 written with WriteOptions.DisableWAL.
//   - udt: user-defined timestamps (leveldb.BytewiseComparator.u64ts).
//   - dbbench: what db_bench --benchmarks=mergerandom --merge_operator=uint64add
//     writes; the program only reads it (verify), db_bench is the writer.
//
// This package uses grocksdb directly, as an application does (like
// internal/bench); rockstream's own code reaches RocksDB only through rocks/.
package foreign
