package rocks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The WAL file format (RocksDB db/log_format.h), as far as this package
// reads it: 32 KiB blocks of records; a record has a header (masked crc32c
// of the type byte, the recyclable log number if any, and the payload;
// payload length, 2 bytes little-endian; type, 1 byte) then its payload. A
// batch larger than a block is split into First, Middle and Last records.
const (
	walBlockSize            = 32 << 10
	walHeaderSize           = 7
	walRecyclableHeaderSize = 11
	walZeroType             = 0 // preallocated space, nothing written yet
	walFullType             = 1
	walFirstType            = 2
	walRecyclableFullType   = 5
	walRecyclableFirstType  = 6
	walCRCMaskDelta         = 0xa282ead8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// walFirstSequence returns the sequence of the first batch of a WAL file,
// read from its first record. ok is false when the file holds no complete,
// intact first record (empty, or being written).
func walFirstSequence(path string) (seq uint64, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false, fmt.Errorf("rocks: read wal: %w", err)
	}
	defer f.Close()
	buf := make([]byte, walBlockSize)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, false, fmt.Errorf("rocks: read wal: %w", err)
	}
	payload, err := firstRecord(buf[:n])
	if err != nil || payload == nil {
		return 0, false, wrapPath(err, path)
	}
	if len(payload) < headerSize {
		return 0, false, fmt.Errorf("rocks: read wal %s: %w: first batch of %d bytes", path, ErrCorrupt, len(payload))
	}
	return binary.LittleEndian.Uint64(payload), true, nil
}

// firstRecord returns the payload of the first record of a WAL's first
// block; nil when it is not (yet) complete and intact.
func firstRecord(block []byte) ([]byte, error) {
	if len(block) < walHeaderSize {
		return nil, nil
	}
	hdr := walHeaderSize
	switch typ := block[6]; typ {
	case walFullType, walFirstType:
	case walRecyclableFullType, walRecyclableFirstType:
		hdr = walRecyclableHeaderSize
	case walZeroType:
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: first wal record of type %d (wal compression?)", ErrUnsupported, typ)
	}
	end := hdr + int(binary.LittleEndian.Uint16(block[4:6]))
	if len(block) < end {
		return nil, nil
	}
	if crc32.Checksum(block[6:end], castagnoli) != unmaskCRC(binary.LittleEndian.Uint32(block)) {
		return nil, nil
	}
	return block[hdr:end], nil
}

func unmaskCRC(masked uint32) uint32 {
	rot := masked - walCRCMaskDelta
	return rot>>17 | rot<<15
}

func wrapPath(err error, path string) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("rocks: read wal %s: %w", path, err)
}

// walFiles returns the WAL files (<number>.log) of dir, by number.
func walFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rocks: list wal files: %w", err)
	}
	type wal struct {
		n    uint64
		name string
	}
	var wals []wal
	for _, e := range entries {
		num, ok := strings.CutSuffix(e.Name(), ".log")
		if n, err := strconv.ParseUint(num, 10, 64); ok && err == nil && e.Type().IsRegular() {
			wals = append(wals, wal{n, e.Name()})
		}
	}
	sort.Slice(wals, func(i, j int) bool { return wals[i].n < wals[j].n })
	paths := make([]string, len(wals))
	for i, w := range wals {
		paths[i] = filepath.Join(dir, w.name)
	}
	return paths, nil
}

// oldestWALSequence returns the first sequence of the oldest WAL file of
// dir that holds a batch; ok is false when none does.
func oldestWALSequence(dir string) (seq uint64, ok bool, err error) {
	paths, err := walFiles(dir)
	if err != nil {
		return 0, false, err
	}
	for _, p := range paths {
		if seq, ok, err = walFirstSequence(p); err != nil || ok {
			return seq, ok, err
		}
	}
	return 0, false, nil
}
