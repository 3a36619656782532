package rocks

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
)

// WALWriter writes write batches as a RocksDB log file, in the legacy
// record format that RocksDB 7.8 writes when it does not recycle log files
// (db/log_writer.cc Writer::AddRecord, db/log_format.h): 32 KiB blocks; a
// batch that does not fit in what is left of a block is split into a
// First, Middle... and Last record; a block tail shorter than a header
// (7 bytes) is filled with zeroes. Each record's header holds the masked
// crc32c of its type byte and payload, the payload's length and the type.
//
// RocksDB's recovery reads such a file as one of its own WAL files:
// restore and the standby write the archived batches with it and let the
// database replay them (Replay). A WALWriter is used by one goroutine.
type WALWriter struct {
	w     *bufio.Writer
	c     io.Closer
	off   int64 // bytes written, the offset in the file
	crcOf [walLastType + 1]uint32
}

// CreateWAL creates the log file <dir>/<number>.log (RocksDB's name for
// log number num: file/filename.cc LogFileName) and returns its writer. It
// refuses to replace a file.
func CreateWAL(dir string, num uint64) (*WALWriter, error) {
	path := WALPath(dir, num)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("rocks: create wal: %w", err)
	}
	w := NewWALWriter(f)
	w.c = f
	return w, nil
}

// WALPath is the path of log number num in dir.
func WALPath(dir string, num uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%06d.log", num))
}

// NewWALWriter returns a writer of a log file that starts at w's current
// position, which must be the start of the file.
func NewWALWriter(w io.Writer) *WALWriter {
	ww := &WALWriter{w: bufio.NewWriterSize(w, 4*walBlockSize)}
	for t := walFullType; t <= walLastType; t++ {
		ww.crcOf[t] = crc32.Checksum([]byte{byte(t)}, castagnoli)
	}
	return ww
}

// Size is the number of bytes written so far (buffered ones too).
func (w *WALWriter) Size() int64 { return w.off }

// Add writes one batch (a WriteBatch representation) as one logical
// record. An empty batch writes one empty record, as RocksDB does.
func (w *WALWriter) Add(batch []byte) error {
	first := true
	for {
		left := walBlockSize - int(w.off%walBlockSize)
		if left < walHeaderSize {
			if err := w.write(make([]byte, left)); err != nil {
				return err
			}
			left = walBlockSize
		}
		n := min(len(batch), left-walHeaderSize)
		last := n == len(batch)
		if err := w.record(recordType(first, last), batch[:n]); err != nil {
			return err
		}
		batch, first = batch[n:], false
		if last {
			return nil
		}
	}
}

// recordType is the type of a fragment (db/log_writer.cc AddRecord).
func recordType(first, last bool) byte {
	switch {
	case first && last:
		return walFullType
	case first:
		return walFirstType
	case last:
		return walLastType
	}
	return walMiddleType
}

// record writes one physical record.
func (w *WALWriter) record(typ byte, payload []byte) error {
	var hdr [walHeaderSize]byte
	crc := crc32.Update(w.crcOf[typ], castagnoli, payload)
	binary.LittleEndian.PutUint32(hdr[:], maskWALCRC(crc))
	binary.LittleEndian.PutUint16(hdr[4:], uint16(len(payload)))
	hdr[6] = typ
	if err := w.write(hdr[:]); err != nil {
		return err
	}
	return w.write(payload)
}

func (w *WALWriter) write(b []byte) error {
	n, err := w.w.Write(b)
	w.off += int64(n)
	if err != nil {
		return fmt.Errorf("rocks: write wal: %w", err)
	}
	return nil
}

// Close writes what is buffered and closes a file made by CreateWAL. It
// does not sync it: a Replayer's file is deleted once recovered (RocksDB
// reads it from the page cache), and restore syncs every file it keeps
// before its rename.
func (w *WALWriter) Close() error {
	err := w.w.Flush()
	if w.c != nil {
		if cerr := w.c.Close(); err == nil {
			err = cerr
		}
		w.c = nil
	}
	if err != nil {
		return fmt.Errorf("rocks: close wal: %w", err)
	}
	return nil
}

// maskWALCRC is RocksDB's crc32c mask (util/crc32c.h Mask).
func maskWALCRC(crc uint32) uint32 {
	return (crc>>15 | crc<<17) + walCRCMaskDelta
}
