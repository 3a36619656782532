// Package stream carries write batches from an archiver to standbys as the
// archiver reads them, before they are sealed into segments: the live path
// beside the bucket (docs/DESIGN.md, "Live stream"). The bucket stays the
// truth: a batch that reached a standby by stream and never reached the
// bucket is not in the archive.
//
// A Hub, fed by the archiver, keeps the batches it read last in a ring of
// bounded bytes and serves them over HTTP (GET /stream) from any sequence
// the ring still holds; a Client, on the standby, reads them. The archiver
// never waits for a client: a client that falls behind the ring loses its
// stream (410 Gone when it asks again) and reads the bucket until it is
// caught up. This package knows nothing of RocksDB or of storage.
//
// # Wire format, version 1
//
// The format is a contract between an archiver and the standbys of other
// versions; the constants marked "part of the format" may not change within
// a version, and testdata/stream/v1 at the top of the repository holds a
// golden stream. All integers are little-endian; CRC32C is the Castagnoli
// CRC of hash/crc32; times are int64 nanoseconds since the Unix epoch.
//
// A stream is a header, then frames until the connection ends:
//
//	header, 16 bytes:
//	offset size field
//	     0    8 magic    89 52 4B 53 54 52 0D 0A ("\x89RKSTR\r\n")
//	     8    2 version  uint16, 1
//	    10    2 reserved 0
//	    12    4 crc      CRC32C of bytes 0..12
//
//	frame, 12+n bytes:
//	     0    1 kind     1 batch, 2 heartbeat; others are refused
//	     1    3 reserved 0
//	     4    4 length   uint32 n: the payload's bytes, at most MaxPayload
//	     8    n payload
//	   8+n    4 crc      CRC32C of bytes 0..8+n (kind, length and payload)
//
//	batch payload, 36+d bytes:
//	     0    4 timeline uint32
//	     4    8 epoch    uint64: the writer's epoch (manifest.Writer)
//	    12    8 seq      uint64: the sequence of its first operation
//	    20    4 count    uint32: the sequences it uses (0 for a prepare)
//	    24    8 time     int64: when the archiver read it
//	    32    4 dataLen  uint32 d
//	    36    d data     the batch as RocksDB encodes it
//
//	heartbeat payload, 44 bytes:
//	     0    4 timeline uint32
//	     4    8 epoch    uint64
//	    12    8 next     uint64: the sequence the archiver reads next
//	    20    8 archived uint64: the last sequence the bucket holds
//	    28    8 head     uint64: the database's last sequence, as last seen
//	    36    8 time     int64: when it was sent
//
// A frame whose CRC, kind, length or payload layout is wrong is
// ErrCorrupt; a stream cut inside a frame is io.ErrUnexpectedEOF; a header
// of another version is ErrUnsupported, never misread.
package stream
