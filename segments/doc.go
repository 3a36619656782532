// Package segments reads and writes segment files, format version 2 (and
// reads version 1): the unit in which rockstream archives RocksDB write
// batches. A segment holds
// consecutive write batches of one timeline, exactly as RocksDB encodes
// them, with the time each was archived. This package knows nothing of
// storage: a Writer writes to an io.Writer, a Reader reads from an
// io.Reader, and ReadTrailer reads the end of a segment through an
// io.ReaderAt.
//
// The format is a contract with every archive ever written. The layout
// below, and every constant that the code marks "part of the format", may
// not change within a version; docs/FORMAT.md says the same in more words,
// and the golden files in testdata/segments/v1 and v2 at the top of the
// repository must read forever.
//
// # Layout
//
// All integers are little-endian. CRC32C is the Castagnoli CRC of
// hash/crc32, stored as it comes (no masking). Times are int64 nanoseconds
// since the Unix epoch; 0 means "not known" and reads back as the zero
// time.Time. A segment is a header, zero or more blocks, and a trailer:
//
//	+--------+---------+---------+-----+---------+---------+
//	| header | block 0 | block 1 | ... | block n | trailer |
//	+--------+---------+---------+-----+---------+---------+
//	  44 B                                          96 B
//
// Header, 44 bytes:
//
//	offset size field
//	     0    8 magic     89 52 4B 53 45 47 0D 0A ("\x89RKSEG\r\n")
//	     8    2 version   uint16, 2 (or 1)
//	    10    2 codec     uint16: 0 none, 1 zstd
//	    12    4 flags     uint32: bit 0 FlagEnd; every other bit 0
//	    16    8 timeline  uint64
//	    24    8 firstSeq  uint64: Seq of the first batch, or of the batch
//	                      that would have come first
//	    32    8 created   int64 time
//	    40    4 crc       CRC32C of bytes 0..40
//
// Block: a 44-byte header, then storedLen bytes. With codec none they are
// the batch records themselves; with zstd, one or more zstd frames that
// decode, on their own, to the rawLen bytes of the records:
//
//	offset size field
//	     0    4 tag       "BLCK"
//	     4    4 index     uint32: 0 for the first block, then one more each
//	     8    4 batches   uint32: records in the block, at least 1; a
//	                      fragment of a cut batch is a record
//	    12    4 rawLen    uint32: uncompressed bytes of the records
//	    16    4 storedLen uint32: bytes after this header; rawLen for none
//	    20    4 bodyCRC   CRC32C of the storedLen bytes
//	    24    8 firstSeq  uint64: Seq of the block's first batch; when
//	                      it begins with the rest of a cut batch,
//	                      Seq+span of that batch
//	    32    8 nextSeq   uint64: Seq+span of the batch of its last record
//	    40    4 crc       CRC32C of bytes 0..40
//	    44    . stored    storedLen bytes
//
// Batch record, version 2, 24+n bytes, one after another in a block's raw
// bytes:
//
//	offset size field
//	     0    4 n         uint32: length of data, at least 12
//	     4    8 time      int64 time the batch was archived
//	    12    4 span      uint32: the sequence numbers the batch uses (Count)
//	    16    4 flags     uint32: 0 for a whole batch; bit 0 continued,
//	                      bit 1 continuation (a cut batch); any other
//	                      bit is ErrUnsupported
//	    20    n data      the write batch as in the WAL: Seq as uint64, the
//	                      count of its records as uint32, then the records
//	  20+n    4 crc       CRC32C of bytes 0..20+n
//
// The span is the header's count but for two-phase-commit transactions: a
// prepare uses no sequence, a commit its own records' plus the prepared
// ones (docs/FORMAT.md). Version 1's record has no span and no flags
// (16+n bytes: n, time, data, crc): there the span is the header's count.
//
// # Cut batches
//
// In version 2, a batch whose record does not fit in a block of
// MaxBlockSize bytes is cut into fragments, records that follow each other:
// the first has flag continued and data that begins with the batch's
// header, the middle ones both flags, the last continuation. Each repeats
// the batch's time and span and has its own CRC, and holds at least 12
// bytes of data; their data end to end is the batch's. Each but the last
// fills a block of its own. The batch takes its sequences at its first
// fragment: so a block's firstSeq and nextSeq above. Every record counts
// in a block's batches and the trailer's batchCount. A Reader puts the
// fragments together up to MaxBatchSize (DefaultMaxBatchSize, 1 GiB),
// growing its buffer by the bytes read, never by a declared length.
//
// Trailer, 96 bytes, the last bytes of the segment:
//
//	offset size field
//	     0    4 tag        "TRLR"
//	     4    4 blockCount uint32
//	     8    8 batchCount uint64
//	    16    8 nextSeq    uint64: Seq+span of the last batch; firstSeq
//	                       when there is none. The next segment's firstSeq.
//	    24    8 rawBytes   uint64: sum of the blocks' rawLen
//	    32    8 firstTime  int64 time of the first batch; 0 when none
//	    40    8 lastTime   int64 time of the last batch; 0 when none
//	    48    8 size       uint64: length of the segment, trailer included
//	    56    8 timeline   \
//	    64    8 firstSeq    |
//	    72    8 created     | copies of the header's fields
//	    80    4 flags       |
//	    84    2 codec       |
//	    86    2 version    /
//	    88    4 crc        CRC32C of bytes 0..88
//	    92    4 end magic  "RKND"
//
// # Rules
//
// A reader checks all of these and reports a breach as ErrCorrupt:
//
//   - Sequences are contiguous. The first batch has Seq = firstSeq; each
//     next batch has Seq = Seq+Count (the span) of the one before; a
//     block's firstSeq and nextSeq are those of its first and last batch;
//     the trailer's nextSeq is that of the last batch. Count may be 0.
//   - A batch's data is at least 12 bytes, and its first 8 bytes are its
//     Seq. In version 1 the next 4 are its Count, stored nowhere else.
//   - Blocks are numbered 0, 1, 2, ... with no gap, so a missing, repeated
//     or moved block is found by its header alone. A block holds at least
//     one record; a segment with no batches has no blocks.
//   - The fragments of a cut batch follow each other, the last before the
//     trailer, with the same span and time, and put together they are at
//     most MaxBatchSize bytes.
//   - The trailer's counts, sequences, raw bytes and size match what came
//     before it, its copy of the header matches the header, and nothing
//     follows it. A segment cut anywhere, even between two blocks, has no
//     trailer at its end and reads as corrupt.
//   - A block's rawLen is at most the reader's MaxBlockSize (default 64
//     MiB) and its storedLen at most rawLen + rawLen/128 + 1024, checked
//     before anything is allocated; the CRC of the stored bytes is checked
//     before they are decompressed, and a zstd block never decodes past
//     rawLen bytes.
//
// SkipTo passes over a block by its header alone, and so does not check
// its stored bytes; it then passes over the rest of a cut batch at the
// start of the next block it reads.
//
// A segment with FlagEnd ends its timeline: no batch follows it there. A
// promotion writes one, normally with no batches, at the old timeline's
// next key, so that the old writer's next upload fails.
//
// A Writer starts a block after the one whose records reach BlockSize
// (default 1 MiB), and a batch that would take the open block past
// BlockSize starts the next; a batch larger than BlockSize thus has a block
// of its own. A batch larger than MaxBlockSize is cut into fragments of
// BlockSize bytes, after ending the open block. Each block is compressed on its own, so a Writer may compress
// several at once (WriterOptions.Concurrency) and still write the same
// bytes.
//
// # Versions
//
// In every version, a segment starts with the 8-byte magic and the uint16
// version, and ends with the uint16 version 10 bytes before its end and the
// 4-byte end magic. A reader stops at an unknown version with
// ErrUnsupported naming it (a v1 reader given a v2 segment: "segments:
// unsupported segment: format version 2 (this package reads version 1)").
// It also rejects, with ErrUnsupported, a codec or a flag bit (of the
// header, or of a v2 record) it does not know: new ones may be added within
// a version, once every reader knows them. Any other change makes a new
// version, which readers learn before any writer writes it. NewWriter
// writes Version unless the header asks for Version1.
package segments
