package segments

import (
	"errors"
	"fmt"
	"io"
)

// readTrailer reads the trailer whose tag was read at start, checks it
// against what the Reader counted, and checks that nothing follows it.
func (r *Reader) readTrailer(start int64) error {
	b := r.scratch[:trailerSize]
	if err := r.readFull(b[4:], "the trailer"); err != nil {
		return err
	}
	if r.cutting != cutNone {
		return corruptf(start, "the segment ends inside the batch at sequence %d, cut at byte %d", r.cutBatch.Seq, r.cutOff)
	}
	h, t, err := parseTrailer(b, start)
	if err != nil {
		return err
	}
	if !sameHeader(h, r.h) {
		return corruptf(start, "trailer repeats header %+v, the segment has %+v", h, r.h)
	}
	if err := r.checkCounts(t, start); err != nil {
		return err
	}
	if err := r.checkTimes(t, start); err != nil {
		return err
	}
	if err := r.checkEOF(); err != nil {
		return err
	}
	r.t, r.state = t, stateDone
	return nil
}

// checkCounts compares the trailer with the blocks and batches read.
func (r *Reader) checkCounts(t Trailer, off int64) error {
	switch {
	case t.BlockCount != r.t.BlockCount:
		return corruptf(off, "trailer counts %d blocks, the segment has %d", t.BlockCount, r.t.BlockCount)
	case t.BatchCount != r.t.BatchCount:
		return corruptf(off, "trailer counts %d batches, the segment has %d", t.BatchCount, r.t.BatchCount)
	case t.NextSeq != r.next:
		return corruptf(off, "trailer says the next sequence is %d, the batches end at %d", t.NextSeq, r.next)
	case t.RawBytes != r.t.RawBytes:
		return corruptf(off, "trailer counts %d raw bytes, the blocks hold %d", t.RawBytes, r.t.RawBytes)
	}
	return nil
}

// checkTimes compares the trailer's times with the first and last batch,
// when they were read rather than skipped.
func (r *Reader) checkTimes(t Trailer, off int64) error {
	if r.firstKnown && encodeTime(t.FirstTime) != r.firstTime {
		return corruptf(off, "trailer says the first batch was archived at %d, it says %d", encodeTime(t.FirstTime), r.firstTime)
	}
	if r.lastKnown && encodeTime(t.LastTime) != r.lastTime {
		return corruptf(off, "trailer says the last batch was archived at %d, it says %d", encodeTime(t.LastTime), r.lastTime)
	}
	return nil
}

// checkEOF checks that the segment ends with its trailer.
func (r *Reader) checkEOF() error {
	var one [1]byte
	for range 100 {
		n, err := r.r.Read(one[:])
		if n > 0 {
			return corruptf(r.off, "data after the trailer")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("segments: read after the trailer at byte %d: %w", r.off, err)
		}
	}
	return fmt.Errorf("segments: read after the trailer at byte %d: %w", r.off, io.ErrNoProgress)
}

// ReadTrailer reads the header copy and the trailer at the end of a
// segment of size bytes, with one read of its last bytes: enough to learn a
// segment's sequence range without reading it. It checks the trailer on its
// own, not the blocks before it; a segment truncated anywhere fails with
// ErrCorrupt, since its last bytes are then no trailer.
func ReadTrailer(r io.ReaderAt, size int64) (Header, Trailer, error) {
	if size < headerSize+trailerSize {
		return Header{}, Trailer{}, corruptf(0, "truncated: %d bytes is shorter than the smallest segment (%d)", size, headerSize+trailerSize)
	}
	off := size - trailerSize
	b := make([]byte, trailerSize)
	n, err := r.ReadAt(b, off)
	if n < trailerSize {
		if err == nil || errors.Is(err, io.EOF) {
			return Header{}, Trailer{}, corruptf(off+int64(n), "truncated: the segment ends inside the trailer")
		}
		return Header{}, Trailer{}, fmt.Errorf("segments: read trailer at byte %d: %w", off, err)
	}
	return parseTrailer(b, off)
}
