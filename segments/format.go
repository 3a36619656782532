package segments

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"time"
)

// Version is the format version that this package writes. It reads
// version 1 as well. Part of the format.
const Version = 2

// Version1 is the first format version, in which a batch's span is its
// write batch header's count. Readers read it forever; NewWriter writes it
// only when asked (Header.Version).
const Version1 = 1

// Sizes of the fixed parts. Part of the format.
const (
	headerSize      = 44 // file header
	blockHeaderSize = 44 // block header
	trailerSize     = 96 // trailer, the last bytes of every v1 segment
	recordOverhead  = 16 // v1 batch record: length, time, CRC
	recordOverhead2 = 24 // v2 batch record: length, time, span, flags, CRC
	batchHeaderSize = 12 // RocksDB write batch header: sequence, count
	minRecordSize   = recordOverhead + batchHeaderSize
	minRecordSize2  = recordOverhead2 + batchHeaderSize
)

// overhead returns the bytes of a batch record around its data in format
// version v.
func overhead(v uint16) int {
	if v == Version1 {
		return recordOverhead
	}
	return recordOverhead2
}

// Flags of a v2 batch record. A batch whose record does not fit in a block
// of MaxBlockSize bytes is cut into fragments, each a record of its own in
// a block of its own: the first fragment has flagContinued, the middle ones
// both flags, the last flagContinuation. Every fragment repeats the batch's
// time and span; the first fragment's data begins with the batch's write
// batch header, the others' data is the rest of the batch's data, in order.
// Part of the format.
const (
	// flagContinued: the batch goes on in the next record.
	flagContinued uint32 = 1 << 0
	// flagContinuation: the record goes on with the previous record's batch.
	flagContinuation uint32 = 1 << 1
)

// knownRecordFlags holds every flag bit of a v2 batch record that this
// package knows. A reader rejects a record with any other bit set with
// ErrUnsupported; a reader that knew none (before the fragments) rejects
// every fragment so. Part of the format.
const knownRecordFlags = flagContinued | flagContinuation

// Magic numbers and section tags. Part of the format.
var (
	magic      = [8]byte{0x89, 'R', 'K', 'S', 'E', 'G', '\r', '\n'}
	endMagic   = [4]byte{'R', 'K', 'N', 'D'}
	blockTag   = [4]byte{'B', 'L', 'C', 'K'}
	trailerTag = [4]byte{'T', 'R', 'L', 'R'}
)

// FlagEnd marks a segment that ends its timeline: no batch follows it on
// that timeline. A promotion writes one, normally with no batches, at the old
// timeline's next key to fence the old writer. Part of the format.
const FlagEnd uint32 = 1 << 0

// knownFlags holds every flag bit that version 1 defines. A v1 reader
// rejects a segment with any other bit set, with ErrUnsupported.
const knownFlags = FlagEnd

// Codec says how the blocks of a segment are compressed. Part of the format.
type Codec uint16

const (
	// CodecNone stores blocks as they are.
	CodecNone Codec = 0
	// CodecZstd stores each block as zstd frames that decode on their own.
	CodecZstd Codec = 1
)

// String returns the codec's name, for messages.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", uint16(c))
}

// Limits on block sizes.
const (
	// DefaultBlockSize is the writer's default target for the uncompressed
	// batch records of one block.
	DefaultBlockSize = 1 << 20
	// DefaultMaxBlockSize is the default bound on the uncompressed size of a
	// block, for writers and readers alike. A batch whose record does not fit
	// in it is cut into fragments (format version 2), or refused by a
	// version 1 writer.
	DefaultMaxBlockSize = 64 << 20
	// DefaultMaxBatchSize bounds the data of a batch that a Reader puts
	// together from fragments: 1 GiB, the largest WAL record that
	// rockstream's WAL reader assembles (rocks/waltail.go walMaxRecord).
	DefaultMaxBatchSize = 1 << 30
	// maxMaxBlockSize bounds the MaxBlockSize options.
	maxMaxBlockSize = 1 << 30
)

// Errors. Check them with errors.Is.
var (
	// ErrCorrupt reports a segment that breaks the format: damaged,
	// truncated, or not a segment at all. Every such error is a
	// *CorruptError.
	ErrCorrupt = errors.New("segments: corrupt segment")
	// ErrGap reports a batch whose sequence is not the one expected.
	ErrGap = errors.New("segments: sequence gap")
	// ErrUnsupported reports a well-formed segment that uses a format
	// version, codec or flag that this package does not know.
	ErrUnsupported = errors.New("segments: unsupported segment")
	// ErrTooLarge reports a batch that a Writer cannot store: in format
	// version 1, one whose record does not fit in a block of MaxBlockSize
	// bytes; in version 2, one above DefaultMaxBatchSize.
	ErrTooLarge = errors.New("segments: batch too large")
)

// CorruptError says where and how a segment breaks the format.
type CorruptError struct {
	// Offset is the byte offset in the segment of the part at fault. For a
	// batch inside a compressed block it is the offset of the block header.
	Offset int64
	// Reason says what is wrong, for people.
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("segments: corrupt segment at byte %d: %s", e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

func corruptf(off int64, format string, args ...any) error {
	return &CorruptError{Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// Header is the start of a segment.
type Header struct {
	// Version is the format version; NewWriter takes 0 for Version.
	Version uint16
	// Codec compresses the blocks.
	Codec Codec
	// Flags holds FlagEnd or nothing.
	Flags uint32
	// Timeline is the timeline that the segment belongs to.
	Timeline uint64
	// FirstSeq is the sequence number of the segment's first batch, or of
	// the batch that would have come first when it has none.
	FirstSeq uint64
	// Created is when the segment was started; the zero Time is stored as 0.
	Created time.Time
}

// Trailer is the end of a segment: it says how many blocks and batches came
// before it, so that no cut or splice goes unnoticed.
type Trailer struct {
	// BlockCount is the number of blocks.
	BlockCount uint32
	// BatchCount is the number of batch records: the number of batches,
	// but that a batch cut into k fragments counts k (format version 2).
	BatchCount uint64
	// NextSeq is the sequence after the last batch: its Seq plus its
	// Count. It is the first sequence of the timeline's next segment, and
	// equals Header.FirstSeq when the segment has no batches.
	NextSeq uint64
	// RawBytes is the sum of the uncompressed sizes of the blocks: the
	// batch records, their data and framing.
	RawBytes uint64
	// FirstTime and LastTime are the archive times of the first and last
	// batch; zero when the segment has no batches.
	FirstTime time.Time
	LastTime  time.Time
	// Size is the length of the segment in bytes, the trailer included.
	Size int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

var le = binary.LittleEndian

// Times are stored as int64 unix nanoseconds; 0 stands for the zero Time.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

func encodeTime(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func decodeTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func checkTime(t time.Time) error {
	if t.IsZero() || (!t.Before(minTime) && !t.After(maxTime)) {
		return nil
	}
	return fmt.Errorf("segments: time %v is outside the range of int64 unix nanoseconds", t)
}

// check reports a header that this version can neither write nor read.
func (h Header) check() error {
	if err := checkVersion(h.Version); err != nil {
		return err
	}
	if h.Codec != CodecNone && h.Codec != CodecZstd {
		return fmt.Errorf("%w: codec %d", ErrUnsupported, uint16(h.Codec))
	}
	if h.Flags&^knownFlags != 0 {
		return fmt.Errorf("%w: unknown flags %#x", ErrUnsupported, h.Flags&^knownFlags)
	}
	return nil
}

// sameHeader reports whether a and b encode to the same bytes.
func sameHeader(a, b Header) bool {
	return a.Version == b.Version && a.Codec == b.Codec && a.Flags == b.Flags &&
		a.Timeline == b.Timeline && a.FirstSeq == b.FirstSeq &&
		encodeTime(a.Created) == encodeTime(b.Created)
}

func appendHeader(b []byte, h Header) []byte {
	start := len(b)
	b = append(b, magic[:]...)
	b = le.AppendUint16(b, h.Version)
	b = le.AppendUint16(b, uint16(h.Codec))
	b = le.AppendUint32(b, h.Flags)
	b = le.AppendUint64(b, h.Timeline)
	b = le.AppendUint64(b, h.FirstSeq)
	b = le.AppendUint64(b, uint64(encodeTime(h.Created)))
	return le.AppendUint32(b, checksum(b[start:]))
}

// parsePrefix checks the magic and version: the first 10 bytes, the same in
// every version of the format.
func parsePrefix(b []byte) error {
	if [8]byte(b[:8]) != magic {
		return corruptf(0, "not a segment: bad magic %x", b[:8])
	}
	return checkVersion(le.Uint16(b[8:]))
}

// checkVersion reports a format version that this package does not read.
func checkVersion(v uint16) error {
	if v != Version1 && v != Version {
		return fmt.Errorf("%w: format version %d (this package reads versions 1 and 2)", ErrUnsupported, v)
	}
	return nil
}

func parseHeader(b []byte) (Header, error) {
	if err := parsePrefix(b); err != nil {
		return Header{}, err
	}
	if got, want := le.Uint32(b[40:]), checksum(b[:40]); got != want {
		return Header{}, corruptf(0, "header checksum %#08x, computed %#08x", got, want)
	}
	h := Header{
		Version:  le.Uint16(b[8:]),
		Codec:    Codec(le.Uint16(b[10:])),
		Flags:    le.Uint32(b[12:]),
		Timeline: le.Uint64(b[16:]),
		FirstSeq: le.Uint64(b[24:]),
		Created:  decodeTime(int64(le.Uint64(b[32:]))),
	}
	return h, h.check()
}

// blockHeader is the fixed part in front of each block's stored bytes.
type blockHeader struct {
	index     uint32 // position of the block in the segment, from 0
	batches   uint32 // batch records in the block, at least 1
	rawLen    uint32 // uncompressed bytes of the records
	storedLen uint32 // bytes that follow the header
	bodyCRC   uint32 // CRC32C of the stored bytes
	firstSeq  uint64 // Seq of the first batch
	nextSeq   uint64 // Seq+Count of the last batch
}

func putBlockHeader(b []byte, bh blockHeader) {
	copy(b, blockTag[:])
	le.PutUint32(b[4:], bh.index)
	le.PutUint32(b[8:], bh.batches)
	le.PutUint32(b[12:], bh.rawLen)
	le.PutUint32(b[16:], bh.storedLen)
	le.PutUint32(b[20:], bh.bodyCRC)
	le.PutUint64(b[24:], bh.firstSeq)
	le.PutUint64(b[32:], bh.nextSeq)
	le.PutUint32(b[40:], checksum(b[:40]))
}

// parseBlockHeader checks the checksum of a block header; the tag was
// checked by the caller.
func parseBlockHeader(b []byte, off int64) (blockHeader, error) {
	if got, want := le.Uint32(b[40:]), checksum(b[:40]); got != want {
		return blockHeader{}, corruptf(off, "block header checksum %#08x, computed %#08x", got, want)
	}
	return blockHeader{
		index:     le.Uint32(b[4:]),
		batches:   le.Uint32(b[8:]),
		rawLen:    le.Uint32(b[12:]),
		storedLen: le.Uint32(b[16:]),
		bodyCRC:   le.Uint32(b[20:]),
		firstSeq:  le.Uint64(b[24:]),
		nextSeq:   le.Uint64(b[32:]),
	}, nil
}

// maxStoredLen bounds the compressed size of a block of raw bytes: zstd's
// worst case is raw + raw/256 + a little.
func maxStoredLen(c Codec, raw uint32) uint64 {
	if c == CodecNone {
		return uint64(raw)
	}
	return uint64(raw) + uint64(raw)>>7 + 1024
}

func appendTrailer(b []byte, h Header, t Trailer) []byte {
	start := len(b)
	b = append(b, trailerTag[:]...)
	b = le.AppendUint32(b, t.BlockCount)
	b = le.AppendUint64(b, t.BatchCount)
	b = le.AppendUint64(b, t.NextSeq)
	b = le.AppendUint64(b, t.RawBytes)
	b = le.AppendUint64(b, uint64(encodeTime(t.FirstTime)))
	b = le.AppendUint64(b, uint64(encodeTime(t.LastTime)))
	b = le.AppendUint64(b, uint64(t.Size))
	b = le.AppendUint64(b, h.Timeline)
	b = le.AppendUint64(b, h.FirstSeq)
	b = le.AppendUint64(b, uint64(encodeTime(h.Created)))
	b = le.AppendUint32(b, h.Flags)
	b = le.AppendUint16(b, uint16(h.Codec))
	b = le.AppendUint16(b, h.Version)
	b = le.AppendUint32(b, checksum(b[start:]))
	return append(b, endMagic[:]...)
}

// parseTrailer decodes the trailerSize bytes of b, found at offset off, and
// checks that they agree with each other.
func parseTrailer(b []byte, off int64) (Header, Trailer, error) {
	if [4]byte(b[92:]) != endMagic {
		return Header{}, Trailer{}, corruptf(off+92, "not a segment end: bad end magic %x", b[92:])
	}
	if v := le.Uint16(b[86:]); checkVersion(v) != nil {
		return Header{}, Trailer{}, fmt.Errorf("%w: trailer of format version %d (this package reads versions 1 and 2)", ErrUnsupported, v)
	}
	if got, want := le.Uint32(b[88:]), checksum(b[:88]); got != want {
		return Header{}, Trailer{}, corruptf(off, "trailer checksum %#08x, computed %#08x", got, want)
	}
	if [4]byte(b[:4]) != trailerTag {
		return Header{}, Trailer{}, corruptf(off, "bad trailer tag %x", b[:4])
	}
	h, t := decodeTrailer(b)
	if err := h.check(); err != nil {
		return h, t, err
	}
	return h, t, checkTrailer(h, t, off)
}

func decodeTrailer(b []byte) (Header, Trailer) {
	t := Trailer{
		BlockCount: le.Uint32(b[4:]),
		BatchCount: le.Uint64(b[8:]),
		NextSeq:    le.Uint64(b[16:]),
		RawBytes:   le.Uint64(b[24:]),
		FirstTime:  decodeTime(int64(le.Uint64(b[32:]))),
		LastTime:   decodeTime(int64(le.Uint64(b[40:]))),
		Size:       int64(le.Uint64(b[48:])),
	}
	h := Header{
		Timeline: le.Uint64(b[56:]),
		FirstSeq: le.Uint64(b[64:]),
		Created:  decodeTime(int64(le.Uint64(b[72:]))),
		Flags:    le.Uint32(b[80:]),
		Codec:    Codec(le.Uint16(b[84:])),
		Version:  le.Uint16(b[86:]),
	}
	return h, t
}

// checkTrailer checks the rules that tie the trailer's fields together.
func checkTrailer(h Header, t Trailer, off int64) error {
	switch {
	case t.Size != off+trailerSize:
		return corruptf(off, "trailer says the segment is %d bytes, it ends at %d", t.Size, off+trailerSize)
	case t.NextSeq < h.FirstSeq:
		return corruptf(off, "trailer next sequence %d is below the first sequence %d", t.NextSeq, h.FirstSeq)
	case (t.BlockCount == 0) != (t.BatchCount == 0), t.BatchCount < uint64(t.BlockCount):
		return corruptf(off, "trailer counts %d blocks for %d batches", t.BlockCount, t.BatchCount)
	case t.BatchCount > t.RawBytes/uint64(overhead(h.Version)+batchHeaderSize):
		return corruptf(off, "trailer counts %d raw bytes for %d batches", t.RawBytes, t.BatchCount)
	case t.BatchCount == 0 && (t.NextSeq != h.FirstSeq || !t.FirstTime.IsZero() || !t.LastTime.IsZero()):
		return corruptf(off, "trailer of a segment without batches has a sequence range or times")
	case uint64(off) < headerSize+uint64(t.BlockCount)*blockHeaderSize:
		return corruptf(off, "trailer counts %d blocks, too many for its offset", t.BlockCount)
	}
	return nil
}
