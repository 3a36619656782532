package segments

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"
)

// Batch is one RocksDB write batch.
type Batch struct {
	// Seq is the sequence number of the batch's first operation.
	Seq uint64
	// Count is the number of sequence numbers that the batch uses: Seq to
	// Seq+Count-1. It is the write batch header's count, but for batches of
	// two-phase-commit transactions (a prepare uses none, a commit the
	// prepared count too): format version 2 stores it, version 1 only the
	// header.
	Count uint32
	// Time is when the batch was archived. The zero Time is stored as 0,
	// and 0 (the Unix epoch to the nanosecond) reads back as the zero Time.
	Time time.Time
	// Data is the batch as RocksDB encodes it (WriteBatch.Data()): the
	// sequence as 8 bytes and the count as 4 bytes, little-endian, then the
	// records.
	Data []byte
}

// check reports a batch whose Data is too short or disagrees with Seq, or
// in format version 1 with Count.
func (b Batch) check(version uint16) error {
	if len(b.Data) < batchHeaderSize {
		return fmt.Errorf("segments: batch at sequence %d: data of %d bytes is shorter than the %d-byte write batch header", b.Seq, len(b.Data), batchHeaderSize)
	}
	seq, count := le.Uint64(b.Data), le.Uint32(b.Data[8:])
	if seq != b.Seq {
		return fmt.Errorf("segments: batch at sequence %d: its data says sequence %d", b.Seq, seq)
	}
	if version == Version1 && count != b.Count {
		return fmt.Errorf("segments: batch at sequence %d count %d: its data says count %d, and format version 1 stores no other", b.Seq, b.Count, count)
	}
	if b.Seq > math.MaxUint64-uint64(b.Count) {
		return fmt.Errorf("segments: batch at sequence %d count %d overflows the sequence numbers", b.Seq, b.Count)
	}
	return checkTime(b.Time)
}

// WriterOptions tunes a Writer. The zero value is the default.
type WriterOptions struct {
	// BlockSize is the target for the uncompressed bytes of a block: a
	// block is written once its batch records reach it. 0 means
	// DefaultBlockSize.
	BlockSize int
	// MaxBlockSize bounds the uncompressed bytes of a block. A batch whose
	// record alone exceeds it is cut into fragments of BlockSize bytes (of
	// MaxBlockSize, when smaller), in blocks of their own; format version
	// 1 refuses it with ErrTooLarge. 0 means
	// DefaultMaxBlockSize. A reader refuses blocks above its own
	// ReaderOptions.MaxBlockSize, so keep the two alike.
	MaxBlockSize int
	// Concurrency is the number of blocks that may be compressed at once,
	// each on a goroutine of its own, while Append goes on filling the
	// next block. 0 compresses each block within the Append (or Close)
	// that ends it, on the caller's goroutine. The segment is the same,
	// byte for byte, either way: each block is compressed on its own, and
	// blocks are written in order, on the caller's goroutine, within
	// Append and Close. Each block in flight holds its records, its
	// compressed form and a zstd encoder (about 8 MiB) in memory. It is
	// ignored with CodecNone.
	Concurrency int
}

// maxConcurrency bounds WriterOptions.Concurrency.
const maxConcurrency = 64

func (o WriterOptions) withDefaults() (WriterOptions, error) {
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.MaxBlockSize == 0 {
		o.MaxBlockSize = DefaultMaxBlockSize
	}
	if o.MaxBlockSize < minRecordSize2 || o.MaxBlockSize > maxMaxBlockSize {
		return o, fmt.Errorf("segments: MaxBlockSize %d is outside [%d, %d]", o.MaxBlockSize, minRecordSize2, maxMaxBlockSize)
	}
	if o.BlockSize < 1 || o.BlockSize > o.MaxBlockSize {
		return o, fmt.Errorf("segments: BlockSize %d is outside [1, MaxBlockSize %d]", o.BlockSize, o.MaxBlockSize)
	}
	if o.Concurrency < 0 || o.Concurrency > maxConcurrency {
		return o, fmt.Errorf("segments: Concurrency %d is outside [0, %d]", o.Concurrency, maxConcurrency)
	}
	return o, nil
}

// Writer writes one segment. It holds at most one block in memory, with
// its compressed form, plus the blocks in flight (see
// WriterOptions.Concurrency). It is not safe for concurrent use.
type Writer struct {
	w    io.Writer
	h    Header
	opts WriterOptions
	// buf holds room for a block header, then the records of the open
	// block; out holds a block header and a compressed block.
	buf, out []byte
	block    blockHeader // the open block: index, batches, firstSeq
	next     uint64      // the sequence that the next batch must have
	t        Trailer     // running counts; Size is the bytes written so far
	flight   []*job      // blocks being compressed, oldest first
	inFlight int         // the record bytes of the blocks in flight
	closed   bool
	err      error // the first write error, returned from then on
}

// NewWriter writes the header h to w and returns a Writer for the batches
// that follow. h.Version may be 0 (Version), Version or Version1; the first batch must start at
// h.FirstSeq.
func NewWriter(w io.Writer, h Header, opts WriterOptions) (*Writer, error) {
	if h.Version == 0 {
		h.Version = Version
	}
	if err := h.check(); err != nil {
		return nil, err
	}
	if err := checkTime(h.Created); err != nil {
		return nil, err
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	sw := &Writer{w: w, h: h, opts: opts, next: h.FirstSeq}
	sw.t.NextSeq = h.FirstSeq
	// buf and out get a block's buffer from the pool at the first batch.
	if err := sw.write(appendHeader(nil, h), "header"); err != nil {
		return nil, err
	}
	return sw, nil
}

// Header returns the segment's header.
func (w *Writer) Header() Header { return w.h }

// NextSeq returns the sequence that the next batch must start at: the
// header's FirstSeq, then the Seq plus Count of the last batch.
func (w *Writer) NextSeq() uint64 { return w.next }

// Size returns the number of bytes written to the underlying writer.
func (w *Writer) Size() int64 { return w.t.Size }

// Buffered returns the number of uncompressed record bytes not yet
// written: those of the open block, and of the blocks in flight. Size plus
// Buffered bounds the segment's size before Close, give or take
// compression and a trailer.
func (w *Writer) Buffered() int { return w.open() + w.inFlight }

// open returns the number of record bytes of the open block.
func (w *Writer) open() int { return max(len(w.buf)-blockHeaderSize, 0) }

// Trailer returns the trailer as it stands: complete after Close. Its
// BlockCount and RawBytes count the blocks written.
func (w *Writer) Trailer() Trailer { return w.t }

// Append adds b to the segment. A batch whose record does not fit in a
// block of MaxBlockSize bytes is cut into fragments of about BlockSize
// bytes, each in a block of its own (format version 2). It fails with
// ErrGap when b.Seq is not NextSeq, with ErrTooLarge when b cannot be
// stored (above MaxBlockSize in version 1, above DefaultMaxBatchSize), and when
// b.Data's header disagrees with b.Seq and b.Count; such a batch is left out
// and the Writer stays usable. An error in writing a block (of the
// underlying writer, or of the compressor) is returned by every later call;
// that of a block compressed in flight, from the call that collects it.
func (w *Writer) Append(b Batch) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := b.check(w.h.Version); err != nil {
		return err
	}
	if b.Seq != w.next {
		return fmt.Errorf("%w: expected sequence %d, got %d", ErrGap, w.next, b.Seq)
	}
	size := overhead(w.h.Version) + len(b.Data)
	if size > w.opts.MaxBlockSize {
		return w.appendCut(b)
	}
	if w.open() > 0 && w.open()+size > w.opts.BlockSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.add(b, b.Data, 0)
	if w.open() >= w.opts.BlockSize {
		return w.flush()
	}
	return nil
}

// appendCut adds b, whose record does not fit in a block, as fragments
// (format version 2): the open block is ended, then each fragment but the
// last fills a block of BlockSize bytes (of MaxBlockSize when smaller), and
// the last stays in the open block. Each fragment holds at least
// batchHeaderSize bytes of data, as any record does.
func (w *Writer) appendCut(b Batch) error {
	size := overhead(w.h.Version) + len(b.Data)
	room := min(max(w.opts.BlockSize, recordOverhead2+2*batchHeaderSize), w.opts.MaxBlockSize) - recordOverhead2
	switch {
	case w.h.Version == Version1:
		return fmt.Errorf("%w: batch at sequence %d needs %d bytes, above MaxBlockSize %d, and format version 1 cannot cut a batch", ErrTooLarge, b.Seq, size, w.opts.MaxBlockSize)
	case len(b.Data) > DefaultMaxBatchSize:
		return fmt.Errorf("%w: batch at sequence %d has %d bytes, above the %d that a reader puts together", ErrTooLarge, b.Seq, len(b.Data), DefaultMaxBatchSize)
	case room < 2*batchHeaderSize:
		return fmt.Errorf("%w: batch at sequence %d needs %d bytes, and MaxBlockSize %d is too small to cut it", ErrTooLarge, b.Seq, size, w.opts.MaxBlockSize)
	}
	if err := w.flush(); err != nil {
		return err
	}
	rest := b.Data
	for flags := flagContinued; ; flags |= flagContinuation {
		k := len(rest)
		if k > room {
			k = min(room, k-batchHeaderSize) // the last fragment too holds a header's worth
		} else {
			flags &^= flagContinued
		}
		w.add(b, rest[:k], flags)
		rest = rest[k:]
		if flags&flagContinued == 0 {
			break
		}
		if err := w.flush(); err != nil {
			return err
		}
	}
	if w.open() >= w.opts.BlockSize {
		return w.flush()
	}
	return nil
}

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("segments: writer is closed")
	}
	return nil
}

// add appends a record of b to the open block: the whole batch, with
// flags 0 and data b.Data, or one of its fragments. A block's firstSeq is
// the sequence expected at its start: that of its first record's batch,
// or, when it begins with a continuation, the sequence after that batch.
func (w *Writer) add(b Batch, data []byte, flags uint32) {
	if w.block.batches == 0 {
		w.block.firstSeq = w.next
	}
	if room := overhead(w.h.Version) + len(data); cap(w.buf)-len(w.buf) < room {
		w.grow(room)
	}
	start := len(w.buf)
	w.buf = le.AppendUint32(w.buf, uint32(len(data)))
	w.buf = le.AppendUint64(w.buf, uint64(encodeTime(b.Time)))
	if w.h.Version != Version1 {
		w.buf = le.AppendUint32(w.buf, b.Count)
		w.buf = le.AppendUint32(w.buf, flags)
	}
	w.buf = append(w.buf, data...)
	w.buf = le.AppendUint32(w.buf, checksum(w.buf[start:]))
	w.block.batches++
	w.next = b.Seq + uint64(b.Count)
	if w.t.BatchCount == 0 {
		w.t.FirstTime = b.Time
	}
	w.t.LastTime = b.Time
	w.t.BatchCount++
	w.t.NextSeq = w.next
}

// grow makes room for room more bytes in the open block: a buffer of a
// whole block, from the pool when the block is empty.
func (w *Writer) grow(room int) {
	if w.open() == 0 {
		putBuf(w.buf)
		w.buf = getBuf(blockHeaderSize + max(room, w.opts.BlockSize))
		return
	}
	w.buf = slices.Grow(w.buf, max(room, blockHeaderSize+w.opts.BlockSize-len(w.buf)))
}

// flush ends the open block, if it holds any batch, and writes it, or
// hands it to a goroutine to compress.
func (w *Writer) flush() error {
	if w.block.batches == 0 {
		return nil
	}
	bh := w.endBlock()
	if w.h.Codec != CodecNone && w.opts.Concurrency > 0 {
		return w.handOff(bh)
	}
	block, err := encodeBlock(w.h.Codec, bh, w.buf, &w.out)
	if err != nil {
		w.err = err
		return err
	}
	if err := w.writeBlock(block, bh); err != nil {
		return err
	}
	w.buf = w.buf[:blockHeaderSize]
	return nil
}

// endBlock returns the header of the open block, less what its stored
// bytes decide, and starts the next block.
func (w *Writer) endBlock() blockHeader {
	bh := w.block
	bh.rawLen = uint32(w.open())
	bh.nextSeq = w.next
	w.block = blockHeader{index: bh.index + 1}
	return bh
}

// encodeBlock returns the block of the records in buf[blockHeaderSize:],
// header included: buf itself with CodecNone, else the header and the
// compressed records in *out, which it grows as needed.
func encodeBlock(codec Codec, bh blockHeader, buf []byte, out *[]byte) ([]byte, error) {
	if testHookEncode != nil {
		if err := testHookEncode(bh.index); err != nil {
			return nil, err
		}
	}
	raw := buf[blockHeaderSize:]
	block := buf
	if codec == CodecZstd {
		if bound := blockHeaderSize + int(maxStoredLen(CodecZstd, uint32(len(raw)))); cap(*out) < bound {
			putBuf(*out)
			*out = getBuf(bound)
		}
		o, err := compress((*out)[:blockHeaderSize], raw)
		if err != nil {
			return nil, err
		}
		*out, block = o, o
	}
	stored := block[blockHeaderSize:]
	if uint64(len(stored)) > maxStoredLen(codec, uint32(len(raw))) {
		return nil, fmt.Errorf("segments: block %d compressed to %d bytes, above the format's bound for %d bytes", bh.index, len(stored), len(raw))
	}
	bh.storedLen = uint32(len(stored))
	bh.bodyCRC = checksum(stored)
	putBlockHeader(block, bh)
	return block, nil
}

// writeBlock writes an encoded block and counts it.
func (w *Writer) writeBlock(block []byte, bh blockHeader) error {
	if err := w.write(block, fmt.Sprintf("block %d", bh.index)); err != nil {
		return err
	}
	w.t.BlockCount++
	w.t.RawBytes += uint64(bh.rawLen)
	return nil
}

func (w *Writer) write(b []byte, what string) error {
	n, err := w.w.Write(b)
	w.t.Size += int64(n)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		w.err = fmt.Errorf("segments: write %s at byte %d: %w", what, w.t.Size-int64(n), err)
	}
	return w.err
}

// Close writes the open block, after the blocks in flight, and the
// trailer. It does not close the underlying writer. Closing again does
// nothing. When Close returns, no block of the Writer is in flight.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		w.drop()
		return w.err
	}
	if err := w.closeBlocks(); err != nil {
		w.drop()
		return err
	}
	final := w.t
	final.Size += trailerSize
	if err := w.write(appendTrailer(nil, w.h, final), "trailer"); err != nil {
		return err
	}
	w.closed = true
	putBuf(w.buf)
	putBuf(w.out)
	w.buf, w.out = nil, nil
	return nil
}

// closeBlocks writes the open block, after the blocks in flight.
func (w *Writer) closeBlocks() error {
	if err := w.flush(); err != nil {
		return err
	}
	return w.collect(0)
}
