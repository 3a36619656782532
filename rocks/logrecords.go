package rocks

import (
	"fmt"
	"io"
)

// logReader reads the logical records of a file in RocksDB's log format
// (the WAL and the MANIFEST share it; see wal.go) that is complete up to
// some point: it stops, without an error, at the first record that is not
// complete and intact (the end of the file, a torn tail, zeroes), and End is
// then the offset right after the last complete logical record. It never
// waits for a writer, unlike WALTail. Memory: one block, and the record
// being assembled (bounded by the bytes the file really holds, and by
// maxRecord).
type logReader struct {
	r         io.ReaderAt
	path      string
	num       uint64 // the file's number, which recyclable records repeat
	maxRecord int
	off       int64 // the offset of the next physical record
	end       int64 // the end of the last complete logical record
	recOff    int64 // the offset of the record last returned
	block     []byte
	blockOff  int64 // the offset of block's bytes; -1: none
	stopped   bool
	zstd      bool // a SetCompressionType record said zstd: records are zstd frames (walzstd.go)
}

func newLogReader(r io.ReaderAt, path string, num uint64, maxRecord int) *logReader {
	return &logReader{r: r, path: path, num: num, maxRecord: maxRecord, blockOff: -1}
}

// seek makes the reader continue at off, a record boundary that an earlier
// reader of the same file reached (its End).
func (l *logReader) seek(off int64) {
	l.off, l.end, l.stopped, l.blockOff = off, off, false, -1
}

// record is a complete logical record as the file's reader sees it:
// decompressed in a compressed WAL.
func (l *logReader) record(rec []byte) ([]byte, bool, error) {
	if !l.zstd {
		return rec, true, nil
	}
	out, err := decompress(l.path, l.recOff, rec)
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// End is the offset right after the last complete logical record read.
func (l *logReader) End() int64 { return l.end }

// next returns the next complete logical record; ok is false at the end of
// what is complete. The record is valid until the next call.
func (l *logReader) next() (rec []byte, ok bool, err error) {
	var frag []byte
	inFrag := false
	for !l.stopped {
		off := l.off
		left := walBlockSize - int(off%walBlockSize)
		if left < walHeaderSize {
			l.off += int64(left)
			continue
		}
		b, err := l.bytesAt(off, left)
		if err != nil {
			return nil, false, err
		}
		p, st, why := parsePhysical(b, left, l.num)
		switch st {
		case physPadding:
			l.off += int64(left)
			continue
		case physShort, physZero, physOld:
			l.stopped = true
			return nil, false, nil
		case physBad:
			if l.tailFrom(off + int64(max(p.size, walHeaderSize))) {
				l.stopped = true // a torn last record
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("%s at offset %d: %w: %s", l.path, off, ErrCorrupt, why)
		}
		l.off = off + int64(p.size)
		switch p.typ {
		case walFullType, walRecyclableFullType:
			l.recOff, l.end = off, l.off
			return l.record(p.payload)
		case walFirstType, walRecyclableFirstType:
			frag, inFrag = append(frag[:0], p.payload...), true
			l.recOff = off
		case walMiddleType, walRecyclableMiddleType, walLastType, walRecyclableLastType:
			if !inFrag {
				return nil, false, fmt.Errorf("%s at offset %d: %w: a fragment without a first one", l.path, off, ErrCorrupt)
			}
			if len(frag)+len(p.payload) > l.maxRecord {
				return nil, false, fmt.Errorf("%s at offset %d: %w: a record of more than %d bytes", l.path, l.recOff, ErrUnsupported, l.maxRecord)
			}
			frag = append(frag, p.payload...)
			if p.typ == walLastType || p.typ == walRecyclableLastType {
				l.end = l.off
				return l.record(frag)
			}
		case walSetCompressionType:
			if err := compressionType(l.path, off, p.payload); err != nil {
				return nil, false, err
			}
			l.zstd, l.end = true, l.off
		default:
			return nil, false, fmt.Errorf("%s at offset %d: %w: record type %d", l.path, off, ErrUnsupported, p.typ)
		}
	}
	return nil, false, nil
}

// bytesAt returns the file's bytes from off to the end of its block (left
// bytes on), fewer at the end of the file.
func (l *logReader) bytesAt(off int64, left int) ([]byte, error) {
	start := off - off%walBlockSize
	if l.blockOff != start {
		if l.block == nil {
			l.block = make([]byte, walBlockSize)
		}
		n, err := l.r.ReadAt(l.block[:walBlockSize], start)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("%s at offset %d: %w", l.path, start, err)
		}
		l.block, l.blockOff = l.block[:n], start
	}
	lo, hi := min(int(off-start), len(l.block)), min(int(off-start)+left, len(l.block))
	return l.block[lo:hi], nil
}

// tailFrom says whether the file holds nothing but zeroes from off on: a
// damaged record there is the torn end of a file being written.
func (l *logReader) tailFrom(off int64) bool {
	var chunk [4096]byte
	for {
		n, err := l.r.ReadAt(chunk[:], off)
		for _, c := range chunk[:n] {
			if c != 0 {
				return false
			}
		}
		if n == 0 || err != nil {
			return err == io.EOF || n == 0
		}
		off += int64(n)
	}
}
