package rocks

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// WAL compression (wal_compression, RocksDB 7.8): a compressed WAL file
// starts with a SetCompressionType record (legacy header, in recyclable
// files too; db/log_writer.cc:160 AddCompressionTypeRecord) whose payload
// is the compression type, 4 bytes little-endian
// (util/compression.h:1618 CompressionTypeRecord::EncodeTo). Every record
// after it holds one batch compressed as one zstd frame
// (util/compression.cc:43 ZSTDStreamingCompress::Compress ends each
// record's stream with ZSTD_e_end, and db/log_writer.cc:81 resets it per
// record), cut into fragments of at most a block like any record
// (db/log_writer.cc:108-148): the fragments' payloads put together are the
// frame. RocksDB 7.8 streams zstd only (StreamingCompressionTypeSupported).
const walCompressionZSTD = 7 // kZSTD, include/rocksdb/compression_type.h

// walZstd is the decoder of compressed records, shared by every WAL file
// (DecodeAll may run concurrently), made at the first compressed file.
var walZstd = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(walMaxRecord))
})

// compressionType checks the payload of a SetCompressionType record: nil
// for zstd, ErrUnsupported for a type that rockstream does not read,
// ErrCorrupt for a payload too short.
func compressionType(path string, off int64, payload []byte) error {
	if len(payload) < 4 {
		return fmt.Errorf("rocks: read wal %s at offset %d: %w: a SetCompressionType record of %d bytes, want 4",
			path, off, ErrCorrupt, len(payload))
	}
	if typ := binary.LittleEndian.Uint32(payload); typ != walCompressionZSTD {
		return fmt.Errorf("rocks: read wal %s at offset %d: %w: the WAL is compressed with compression type %d; rockstream reads uncompressed WAL and wal_compression=zstd (type %d) only",
			path, off, ErrUnsupported, typ, walCompressionZSTD)
	}
	return nil
}

// decompress returns the batch held by the compressed record rec, read at
// off of the WAL file path.
func decompress(path string, off int64, rec []byte) ([]byte, error) {
	d, err := walZstd()
	if err != nil {
		return nil, fmt.Errorf("rocks: read wal %s: zstd decoder: %w", path, err)
	}
	out, err := d.DecodeAll(rec, nil)
	if err != nil {
		return nil, fmt.Errorf("rocks: read wal %s at offset %d: %w: a compressed record of %d bytes does not decompress: %v",
			path, off, ErrCorrupt, len(rec), err)
	}
	return out, nil
}
