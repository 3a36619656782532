package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
)

// ReaderOptions tunes a Reader. The zero value is the default.
type ReaderOptions struct {
	// MaxBlockSize bounds the uncompressed size of a block, and so the
	// Reader's memory: a block that declares more is reported as corrupt
	// before anything is allocated for it. 0 means DefaultMaxBlockSize.
	MaxBlockSize int
	// MaxBatchSize bounds the data of a batch put together from fragments
	// (format version 2): fragments that go on past it are reported as
	// corrupt. The batch's buffer grows as its fragments arrive, never from
	// a declared length. 0 means DefaultMaxBatchSize.
	MaxBatchSize int
}

// Reader states: what comes next in the stream.
const (
	stateSection = iota // a block header or the trailer
	stateBody           // the stored bytes of the block whose header was read
	stateRecords        // batch records of the loaded block
	stateDone           // nothing: the trailer was read and checked
)

// What the Reader does with the fragments of a cut batch.
const (
	cutNone = iota // no batch is cut open: the next record starts one
	cutKeep        // the fragments are put together in Reader.cut
	cutDrop        // the fragments are passed over (SkipTo)
)

// Reader reads one segment, checking everything it reads. It holds at most
// one block in memory, with its compressed form, and the batch being put
// together from fragments. It is not safe for concurrent use.
type Reader struct {
	r        io.Reader
	limit    int // MaxBlockSize
	maxBatch int // MaxBatchSize
	h        Header
	t        Trailer // the trailer once read; before, the counts so far
	off      int64   // bytes read from r
	state    int
	err      error // the first error, returned from then on

	block    blockHeader
	blockOff int64  // offset of the block header
	bodyOff  int64  // offset of the stored bytes
	raw      []byte // the block's records, uncompressed
	stored   []byte // the block's stored bytes, when compressed
	pos      int    // offset in raw of the next record
	left     uint32 // records left in the block

	frags    [][]byte // the data of the fragments of the cut batch so far
	fragLen  int      // their total length
	cut      []byte   // the data of the cut batch, once whole
	cutBatch Batch    // Seq, Count and Time of the cut batch
	cutOff   int64    // offset of its first fragment
	cutting  int      // cutNone, cutKeep or cutDrop
	// skipped: the last block was passed over by its header, so the next
	// may begin with the rest of a batch that was never seen.
	skipped bool

	next                  uint64 // the sequence that the next batch must have
	firstTime, lastTime   int64  // archive times of the first and last batch read
	firstKnown, lastKnown bool   // whether those batches were read, not skipped
	scratch               [trailerSize]byte
}

// NewReader reads and checks the header of the segment that r holds. It
// fails with ErrCorrupt when r is not a segment or its header is damaged,
// and with ErrUnsupported when the header names a version, codec or flag
// that this package does not know.
func NewReader(r io.Reader, opts ReaderOptions) (*Reader, error) {
	limit := opts.MaxBlockSize
	if limit == 0 {
		limit = DefaultMaxBlockSize
	}
	if limit < minRecordSize2 || limit > maxMaxBlockSize {
		return nil, fmt.Errorf("segments: MaxBlockSize %d is outside [%d, %d]", limit, minRecordSize2, maxMaxBlockSize)
	}
	maxBatch := opts.MaxBatchSize
	if maxBatch == 0 {
		maxBatch = DefaultMaxBatchSize
	}
	if maxBatch < batchHeaderSize || maxBatch > DefaultMaxBatchSize {
		return nil, fmt.Errorf("segments: MaxBatchSize %d is outside [%d, %d]", maxBatch, batchHeaderSize, DefaultMaxBatchSize)
	}
	sr := &Reader{r: r, limit: limit, maxBatch: maxBatch}
	b := sr.scratch[:headerSize]
	if err := sr.readFull(b[:10], "the header"); err != nil {
		return nil, err
	}
	if err := parsePrefix(b); err != nil {
		return nil, err
	}
	if err := sr.readFull(b[10:], "the header"); err != nil {
		return nil, err
	}
	h, err := parseHeader(b)
	if err != nil {
		return nil, err
	}
	sr.h, sr.next, sr.t.NextSeq = h, h.FirstSeq, h.FirstSeq
	return sr, nil
}

// Header returns the segment's header.
func (r *Reader) Header() Header { return r.h }

// Trailer returns the segment's trailer once Next has returned io.EOF.
// Before, it returns the zero Trailer.
func (r *Reader) Trailer() Trailer {
	if r.state != stateDone {
		return Trailer{}
	}
	return r.t
}

// Next returns the next batch. Its Data points into the Reader's buffer and
// stays valid only until the next call of Next or SkipTo. After the last
// batch, Next reads and checks the trailer and that nothing follows it, and
// only then returns io.EOF. Any other error is returned by every later call:
// ErrCorrupt for a segment that breaks the format, as a *CorruptError, or
// the error of the underlying reader.
func (r *Reader) Next() (Batch, error) {
	for r.err == nil {
		switch r.state {
		case stateSection:
			r.err = r.readSection()
		case stateBody:
			r.err = r.loadBody()
		case stateRecords:
			rec, err := r.parseRecord()
			if err == nil {
				err = r.consume(&rec, cutKeep)
			}
			if err != nil {
				r.err = err
				return Batch{}, err
			}
			if b, ok := r.complete(rec); ok {
				return b, nil
			}
		case stateDone:
			return Batch{}, io.EOF
		}
	}
	return Batch{}, r.err
}

// complete returns the batch that rec, just consumed, completes: rec's own,
// or the cut batch put together whose last fragment rec is. A fragment that
// ends no batch, or ends one that was passed over, completes none.
func (r *Reader) complete(rec record) (Batch, bool) {
	switch {
	case rec.flags == 0:
		return rec.Batch, true
	case rec.flags == flagContinuation && rec.keep:
		b := r.cutBatch
		b.Data = r.cut
		return b, true
	}
	return Batch{}, false
}

// SkipTo moves the Reader past every batch that holds no operation at or
// after seq: the batches whose Seq+Count is at most seq. A block whose
// batches all end by seq is passed over by its header alone, without
// reading it into memory or checking its stored bytes. SkipTo past the end
// of the segment reads and checks the trailer; Next then returns io.EOF.
func (r *Reader) SkipTo(seq uint64) error {
	for r.err == nil {
		switch r.state {
		case stateSection:
			r.err = r.readSection()
		case stateBody:
			if r.block.nextSeq > seq {
				r.err = r.loadBody()
			} else {
				r.err = r.skipBody()
			}
		case stateRecords:
			rec, err := r.parseRecord()
			switch {
			case err != nil:
				r.err = err
			case rec.flags&flagContinuation == 0 && rec.Seq+uint64(rec.Count) > seq:
				return nil
			default:
				r.err = r.consume(&rec, cutDrop)
			}
		case stateDone:
			return nil
		}
	}
	return r.err
}

// readFull fills b from r; an early end is a truncated segment.
func (r *Reader) readFull(b []byte, what string) error {
	n, err := io.ReadFull(r.r, b)
	r.off += int64(n)
	return r.readErr(err, what)
}

func (r *Reader) readErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return corruptf(r.off, "truncated: the segment ends inside %s", what)
	}
	return fmt.Errorf("segments: read %s at byte %d: %w", what, r.off, err)
}

// readSection reads the next block header, or the trailer.
func (r *Reader) readSection() error {
	start := r.off
	tag := r.scratch[:4]
	if err := r.readFull(tag, "a block or trailer tag"); err != nil {
		if r.off == start && errors.Is(err, ErrCorrupt) {
			return corruptf(start, "truncated: the trailer is missing after %d blocks", r.t.BlockCount)
		}
		return err
	}
	switch [4]byte(tag) {
	case blockTag:
		return r.readBlockHeader(start)
	case trailerTag:
		return r.readTrailer(start)
	}
	return corruptf(start, "expected a block or the trailer, found tag %x", tag)
}

func (r *Reader) readBlockHeader(start int64) error {
	b := r.scratch[:blockHeaderSize]
	if err := r.readFull(b[4:], "a block header"); err != nil {
		return err
	}
	bh, err := parseBlockHeader(b, start)
	if err != nil {
		return err
	}
	if err := r.checkBlockHeader(bh, start); err != nil {
		return err
	}
	r.block, r.blockOff, r.bodyOff = bh, start, r.off
	r.state = stateBody
	return nil
}

func (r *Reader) checkBlockHeader(bh blockHeader, off int64) error {
	switch {
	case bh.index != r.t.BlockCount:
		return corruptf(off, "block %d where block %d belongs: a block is missing, repeated or moved", bh.index, r.t.BlockCount)
	case bh.firstSeq != r.next:
		return corruptf(off, "block %d starts at sequence %d, expected %d", bh.index, bh.firstSeq, r.next)
	case bh.nextSeq < bh.firstSeq:
		return corruptf(off, "block %d ends at sequence %d, before its start %d", bh.index, bh.nextSeq, bh.firstSeq)
	case bh.batches == 0 || uint64(bh.batches)*uint64(overhead(r.h.Version)+batchHeaderSize) > uint64(bh.rawLen):
		return corruptf(off, "block %d holds %d batches in %d bytes", bh.index, bh.batches, bh.rawLen)
	case int64(bh.rawLen) > int64(r.limit):
		return corruptf(off, "block %d declares %d uncompressed bytes, above MaxBlockSize %d", bh.index, bh.rawLen, r.limit)
	case uint64(bh.storedLen) > maxStoredLen(r.h.Codec, bh.rawLen), bh.storedLen == 0,
		r.h.Codec == CodecNone && bh.storedLen != bh.rawLen:
		return corruptf(off, "block %d stores %d bytes for %d uncompressed bytes", bh.index, bh.storedLen, bh.rawLen)
	}
	return nil
}

// loadBody reads the current block's stored bytes, checks them and
// decompresses them into r.raw.
func (r *Reader) loadBody() error {
	n := int(r.block.storedLen)
	dst := &r.raw
	if r.h.Codec == CodecZstd {
		dst = &r.stored
	}
	if err := r.readGrowing(dst, n, fmt.Sprintf("block %d", r.block.index)); err != nil {
		return err
	}
	if got := checksum(*dst); got != r.block.bodyCRC {
		return corruptf(r.bodyOff, "block %d checksum %#08x, header says %#08x", r.block.index, got, r.block.bodyCRC)
	}
	if r.h.Codec == CodecZstd {
		if err := r.decompress(); err != nil {
			return err
		}
	}
	r.pos, r.left = 0, r.block.batches
	r.t.BlockCount++
	r.t.RawBytes += uint64(r.block.rawLen)
	r.state = stateRecords
	return nil
}

// readGrowing reads n bytes into *buf. It grows the buffer as the bytes
// arrive, so a damaged length in a short segment costs no large allocation.
func (r *Reader) readGrowing(buf *[]byte, n int, what string) error {
	b := (*buf)[:0]
	for len(b) < n {
		step := n - len(b)
		if cap(b) < n {
			step = min(step, max(len(b), 64<<10))
			b = slices.Grow(b, step)
		}
		m, err := io.ReadFull(r.r, b[len(b):len(b)+step])
		b = b[:len(b)+m]
		r.off += int64(m)
		if err != nil {
			*buf = b
			return r.readErr(err, what)
		}
	}
	*buf = b
	return nil
}

func (r *Reader) decompress() error {
	want := int(r.block.rawLen)
	if cap(r.raw) < want {
		r.raw = make([]byte, 0, want)
	}
	out, err := decompress(r.raw[:0:want], r.stored)
	if err != nil {
		return corruptf(r.blockOff, "block %d: zstd: %v", r.block.index, err)
	}
	if len(out) != want {
		return corruptf(r.blockOff, "block %d decompressed to %d bytes, header says %d", r.block.index, len(out), want)
	}
	r.raw = r.raw[:want]
	if &out[0] != &r.raw[0] {
		copy(r.raw, out) // the decoder grew its own buffer
	}
	return nil
}

// skipBody passes over the current block's stored bytes, trusting its
// header for the batch count and sequences.
func (r *Reader) skipBody() error {
	n, err := io.CopyN(io.Discard, r.r, int64(r.block.storedLen))
	r.off += n
	if err := r.readErr(err, fmt.Sprintf("block %d", r.block.index)); err != nil {
		return err
	}
	r.t.BlockCount++
	r.t.RawBytes += uint64(r.block.rawLen)
	r.t.BatchCount += uint64(r.block.batches)
	r.next = r.block.nextSeq
	r.lastKnown = false
	r.cutting, r.skipped = cutNone, true // a cut batch open there is passed over
	r.state = stateSection
	return nil
}

// recordOffset returns the offset in the segment of the record at pos in
// r.raw, or the block's offset when the block is compressed.
func (r *Reader) recordOffset(pos int) int64 {
	if r.h.Codec == CodecNone {
		return r.bodyOff + int64(pos)
	}
	return r.blockOff
}

// record is a batch record as read: a whole batch, or a fragment of a cut
// one.
type record struct {
	Batch        // Seq, Count, Time and the record's data; Seq is the cut batch's for a continuation
	flags uint32 // flagContinued, flagContinuation
	size  int    // bytes of the record
	off   int64  // its offset, as recordOffset gives it
	keep  bool   // set by consume: its batch is put together
}

// parseRecord decodes and checks the record at r.pos, without moving past
// it.
func (r *Reader) parseRecord() (record, error) {
	b := r.raw[r.pos:]
	rec := record{off: r.recordOffset(r.pos)}
	over := overhead(r.h.Version)
	if len(b) < over+batchHeaderSize {
		return rec, corruptf(rec.off, "block %d ends %d bytes into a batch record", r.block.index, len(b))
	}
	n := le.Uint32(b)
	if n < batchHeaderSize || uint64(n) > uint64(len(b)-over) {
		return rec, corruptf(rec.off, "block %d: batch record declares %d data bytes, %d remain in the block", r.block.index, n, len(b)-over)
	}
	rec.size = over + int(n)
	if got, want := le.Uint32(b[rec.size-4:]), checksum(b[:rec.size-4]); got != want {
		return rec, corruptf(rec.off, "block %d: batch record checksum %#08x, computed %#08x (at %d in the block)", r.block.index, got, want, r.pos)
	}
	start := 12 // v1: the data follows the length and the time
	if r.h.Version != Version1 {
		if flags := le.Uint32(b[16:]); flags&^knownRecordFlags != 0 {
			return rec, fmt.Errorf("%w: unknown batch record flags %#x at byte %d (block %d)", ErrUnsupported, flags&^knownRecordFlags, rec.off, r.block.index)
		}
		start, rec.Count, rec.flags = 20, le.Uint32(b[12:]), le.Uint32(b[16:])
	}
	rec.Data = b[start : start+int(n)]
	rec.Time = decodeTime(int64(le.Uint64(b[4:])))
	if rec.flags&flagContinuation != 0 {
		return rec, r.checkContinuation(&rec)
	}
	if r.cutting != cutNone {
		return rec, corruptf(rec.off, "block %d: a batch record where the batch at sequence %d, cut at byte %d, goes on", r.block.index, r.cutBatch.Seq, r.cutOff)
	}
	rec.Seq = le.Uint64(rec.Data)
	if r.h.Version == Version1 {
		rec.Count = le.Uint32(rec.Data[8:])
	}
	if rec.Seq != r.next {
		return rec, corruptf(rec.off, "batch at sequence %d where %d belongs", rec.Seq, r.next)
	}
	if rec.Seq > math.MaxUint64-uint64(rec.Count) {
		return rec, corruptf(rec.off, "batch at sequence %d count %d overflows the sequence numbers", rec.Seq, rec.Count)
	}
	return rec, nil
}

// checkContinuation checks a record that goes on with a cut batch: one is
// open, and the record repeats its span and time. The first record of a
// block after one passed over by its header may go on with a batch that
// was never seen; it is passed over too.
func (r *Reader) checkContinuation(rec *record) error {
	switch {
	case r.cutting == cutNone && r.skipped && r.pos == 0:
		return nil
	case r.cutting == cutNone:
		return corruptf(rec.off, "block %d: a batch fragment that goes on with no cut batch", r.block.index)
	case rec.Count != r.cutBatch.Count || !rec.Time.Equal(r.cutBatch.Time):
		return corruptf(rec.off, "block %d: a fragment of the batch at sequence %d (cut at byte %d) says span %d time %d, the batch %d and %d",
			r.block.index, r.cutBatch.Seq, r.cutOff, rec.Count, encodeTime(rec.Time), r.cutBatch.Count, encodeTime(r.cutBatch.Time))
	}
	rec.Seq = r.cutBatch.Seq
	return nil
}

// consume moves past rec and checks the end of the block when rec was its
// last record. A batch cut into fragments takes its sequences at its first
// fragment; its fragments are then put together (mode cutKeep), up to
// MaxBatchSize bytes, or passed over (cutDrop).
func (r *Reader) consume(rec *record, mode int) error {
	r.pos += rec.size
	r.left--
	t := encodeTime(rec.Time)
	if r.t.BatchCount == 0 {
		r.firstTime, r.firstKnown = t, true
	}
	r.lastTime, r.lastKnown = t, true
	r.t.BatchCount++
	r.skipped = false
	if err := r.consumeCut(rec, mode); err != nil {
		return err
	}
	if r.left > 0 {
		return nil
	}
	r.state = stateSection
	if rest := len(r.raw) - r.pos; rest != 0 {
		return corruptf(r.recordOffset(r.pos), "block %d has %d bytes after its last batch", r.block.index, rest)
	}
	if r.next != r.block.nextSeq {
		return corruptf(r.blockOff, "block %d ends at sequence %d, its header says %d", r.block.index, r.next, r.block.nextSeq)
	}
	return nil
}

// consumeCut moves the sequence past a whole or first record, and puts a
// cut batch's fragments together.
func (r *Reader) consumeCut(rec *record, mode int) error {
	if rec.flags&flagContinuation == 0 {
		r.next = rec.Seq + uint64(rec.Count)
		if rec.flags&flagContinued == 0 {
			return nil
		}
		r.cutting, r.cutBatch, r.cutOff = mode, rec.Batch, rec.off
		r.cutBatch.Data = nil
		if mode == cutKeep {
			r.keepFragment(rec.Data)
		}
		return nil
	}
	switch r.cutting {
	case cutNone: // the rest of a batch passed over with its block
		r.cutting, r.cutBatch, r.cutOff = cutDrop, rec.Batch, rec.off
		r.cutBatch.Data = nil
	case cutKeep:
		if r.fragLen+len(rec.Data) > r.maxBatch {
			return corruptf(rec.off, "block %d: the fragments of the batch at sequence %d (cut at byte %d) pass %d bytes, the reader's MaxBatchSize",
				r.block.index, r.cutBatch.Seq, r.cutOff, r.maxBatch)
		}
		r.keepFragment(rec.Data)
		rec.keep = true
	}
	if rec.flags&flagContinued == 0 {
		if rec.keep {
			r.joinFragments()
		}
		r.cutting = cutNone
	}
	return nil
}

// keepFragment copies the data of a fragment, which lives in the block's
// buffer, into a buffer of its own: the fragments are copied once more
// into one of the batch's exact size when the last one has come, rather
// than into a buffer grown again and again.
func (r *Reader) keepFragment(data []byte) {
	if len(r.frags) == 0 {
		r.fragLen = 0
	}
	r.frags = append(r.frags, bytes.Clone(data))
	r.fragLen += len(data)
}

// joinFragments puts the fragments kept together in r.cut and lets them go.
func (r *Reader) joinFragments() {
	if cap(r.cut) < r.fragLen {
		r.cut = nil // not kept alive while the new one is filled
		r.cut = make([]byte, 0, r.fragLen)
	}
	r.cut = r.cut[:0]
	for i, f := range r.frags {
		r.cut = append(r.cut, f...)
		r.frags[i] = nil
	}
	r.frags = r.frags[:0]
}
