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
	// Count is the number of operations; the batch uses the sequence
	// numbers Seq to Seq+Count-1.
	Count uint32
	// Time is when the batch was archived. The zero Time is stored as 0,
	// and 0 (the Unix epoch to the nanosecond) reads back as the zero Time.
	Time time.Time
	// Data is the batch as RocksDB encodes it (WriteBatch.Data()): the
	// sequence as 8 bytes and the count as 4 bytes, little-endian, then the
	// records.
	Data []byte
}

// check reports a batch whose Data is too short or disagrees with Seq and
// Count.
func (b Batch) check() error {
	if len(b.Data) < batchHeaderSize {
		return fmt.Errorf("segments: batch at sequence %d: data of %d bytes is shorter than the %d-byte write batch header", b.Seq, len(b.Data), batchHeaderSize)
	}
	seq, count := le.Uint64(b.Data), le.Uint32(b.Data[8:])
	if seq != b.Seq || count != b.Count {
		return fmt.Errorf("segments: batch at sequence %d count %d: its data says sequence %d count %d", b.Seq, b.Count, seq, count)
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
	// record alone exceeds it is refused with ErrTooLarge. 0 means
	// DefaultMaxBlockSize. A reader refuses blocks above its own
	// ReaderOptions.MaxBlockSize, so keep the two alike.
	MaxBlockSize int
}

func (o WriterOptions) withDefaults() (WriterOptions, error) {
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	if o.MaxBlockSize == 0 {
		o.MaxBlockSize = DefaultMaxBlockSize
	}
	if o.MaxBlockSize < minRecordSize || o.MaxBlockSize > maxMaxBlockSize {
		return o, fmt.Errorf("segments: MaxBlockSize %d is outside [%d, %d]", o.MaxBlockSize, minRecordSize, maxMaxBlockSize)
	}
	if o.BlockSize < 1 || o.BlockSize > o.MaxBlockSize {
		return o, fmt.Errorf("segments: BlockSize %d is outside [1, MaxBlockSize %d]", o.BlockSize, o.MaxBlockSize)
	}
	return o, nil
}

// Writer writes one segment. It holds at most one block in memory, with
// its compressed form. It is not safe for concurrent use.
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
	closed   bool
	err      error // the first write error, returned from then on
}

// NewWriter writes the header h to w and returns a Writer for the batches
// that follow. h.Version may be 0 or Version; the first batch must start at
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
	sw.buf = make([]byte, blockHeaderSize) // grown to a block by the first batch
	sw.out = make([]byte, blockHeaderSize)
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

// Buffered returns the number of uncompressed record bytes of the open
// block, not yet written. Size plus Buffered bounds the segment's size
// before Close, give or take compression and a trailer.
func (w *Writer) Buffered() int { return len(w.buf) - blockHeaderSize }

// Trailer returns the trailer as it stands: complete after Close.
func (w *Writer) Trailer() Trailer { return w.t }

// Append adds b to the segment. It fails with ErrGap when b.Seq is not
// NextSeq, with ErrTooLarge when b does not fit in a block, and when
// b.Data's header disagrees with b.Seq and b.Count; such a batch is left out
// and the Writer stays usable. An error in writing a block (of the
// underlying writer, or of the compressor) is returned by every later call.
func (w *Writer) Append(b Batch) error {
	if err := w.usable(); err != nil {
		return err
	}
	if err := b.check(); err != nil {
		return err
	}
	if b.Seq != w.next {
		return fmt.Errorf("%w: expected sequence %d, got %d", ErrGap, w.next, b.Seq)
	}
	size := recordOverhead + len(b.Data)
	if size > w.opts.MaxBlockSize {
		return fmt.Errorf("%w: batch at sequence %d needs %d bytes, above MaxBlockSize %d", ErrTooLarge, b.Seq, size, w.opts.MaxBlockSize)
	}
	if w.Buffered() > 0 && w.Buffered()+size > w.opts.BlockSize {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.add(b)
	if w.Buffered() >= w.opts.BlockSize {
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

// add appends the record of b to the open block.
func (w *Writer) add(b Batch) {
	if w.block.batches == 0 {
		w.block.firstSeq = b.Seq
	}
	if room := recordOverhead + len(b.Data); cap(w.buf)-len(w.buf) < room {
		w.buf = slices.Grow(w.buf, max(room, blockHeaderSize+w.opts.BlockSize-len(w.buf)))
	}
	start := len(w.buf)
	w.buf = le.AppendUint32(w.buf, uint32(len(b.Data)))
	w.buf = le.AppendUint64(w.buf, uint64(encodeTime(b.Time)))
	w.buf = append(w.buf, b.Data...)
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

// flush writes the open block, if it holds any batch.
func (w *Writer) flush() error {
	if w.block.batches == 0 {
		return nil
	}
	raw := w.buf[blockHeaderSize:]
	block := w.buf
	if w.h.Codec == CodecZstd {
		if bound := blockHeaderSize + int(maxStoredLen(CodecZstd, uint32(len(raw)))); cap(w.out) < bound {
			w.out = make([]byte, blockHeaderSize, bound)
		}
		out, err := compress(w.out[:blockHeaderSize], raw)
		if err != nil {
			w.err = err
			return err
		}
		w.out, block = out, out
	}
	stored := block[blockHeaderSize:]
	if uint64(len(stored)) > maxStoredLen(w.h.Codec, uint32(len(raw))) {
		w.err = fmt.Errorf("segments: block %d compressed to %d bytes, above the format's bound for %d bytes", w.block.index, len(stored), len(raw))
		return w.err
	}
	w.block.rawLen = uint32(len(raw))
	w.block.storedLen = uint32(len(stored))
	w.block.bodyCRC = checksum(stored)
	w.block.nextSeq = w.next
	putBlockHeader(block, w.block)
	if err := w.write(block, fmt.Sprintf("block %d", w.block.index)); err != nil {
		return err
	}
	w.t.BlockCount++
	w.t.RawBytes += uint64(len(raw))
	w.block = blockHeader{index: w.block.index + 1}
	w.buf = w.buf[:blockHeaderSize]
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

// Close writes the open block and the trailer. It does not close the
// underlying writer. Closing again does nothing.
func (w *Writer) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	if err := w.flush(); err != nil {
		return err
	}
	final := w.t
	final.Size += trailerSize
	if err := w.write(appendTrailer(nil, w.h, final), "trailer"); err != nil {
		return err
	}
	w.closed = true
	return nil
}
