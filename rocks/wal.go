package rocks

import (
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// The WAL file format (RocksDB 7.8 db/log_format.h, db/log_writer.cc,
// db/log_reader.cc): 32 KiB blocks of physical records; a block's tail
// too short for a header is zero padding. A record has a header (masked
// crc32c of the type byte, the log number if recyclable, and the payload,
// 4 bytes little-endian; payload length, 2 bytes little-endian; type, 1
// byte; for the recyclable types the low 32 bits of the file's number, 4
// bytes little-endian) then its payload. A batch larger than what is left
// of a block is split into First, Middle and Last records.
const (
	walBlockSize            = 32 << 10
	walHeaderSize           = 7
	walRecyclableHeaderSize = 11
	walZeroType             = 0 // preallocated space, nothing written yet
	walFullType             = 1
	walFirstType            = 2
	walMiddleType           = 3
	walLastType             = 4
	walRecyclableFullType   = 5 // the recyclable types: a log file that RocksDB reuses
	walRecyclableFirstType  = 6
	walRecyclableMiddleType = 7
	walRecyclableLastType   = 8
	walSetCompressionType   = 9 // WAL compression: the records after it are compressed
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
	num, _ := walNumber(filepath.Base(path))
	return readFirstSequence(f, path, num)
}

func unmaskCRC(masked uint32) uint32 {
	rot := masked - walCRCMaskDelta
	return rot>>17 | rot<<15
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
