package stream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Part of the format.
const (
	magic          = "\x89RKSTR\r\n"
	Version        = 1
	headerSize     = 16
	frameOverhead  = 12 // kind, reserved, length, crc
	batchFixed     = 36
	heartbeatSize  = 44
	kindBatch      = 1
	kindHeartbeat  = 2
	MaxBatchData   = 64 << 20 // a larger batch is not streamed (Hub.Publish)
	MaxPayload     = batchFixed + MaxBatchData
	reservedHeader = 0
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors of a stream.
var (
	// ErrCorrupt: a frame that fails its CRC or its layout.
	ErrCorrupt = errors.New("stream: corrupt")
	// ErrUnsupported: a stream of another format version or not a stream.
	ErrUnsupported = errors.New("stream: unsupported format")
)

// Batch is a write batch as the archiver read it.
type Batch struct {
	Timeline uint32
	Epoch    uint64
	Seq      uint64
	Count    uint32
	Time     time.Time
	Data     []byte
}

// Next is the sequence of the batch after it.
func (b Batch) Next() uint64 { return b.Seq + uint64(b.Count) }

// Heartbeat says where the archiver is, sent when no batch was for a while.
type Heartbeat struct {
	Timeline uint32
	Epoch    uint64
	// Next is the sequence the archiver reads next; Archived the last
	// sequence the bucket holds (uploaded); Head the database's last
	// sequence as the archiver last saw it.
	Next, Archived, Head uint64
	Time                 time.Time
}

// Frame is one frame read: exactly one of Batch and Heartbeat is set.
type Frame struct {
	Batch     *Batch
	Heartbeat *Heartbeat
	// Conn numbers the connection it came on (Client; not on the wire):
	// after Reconnect, the frames of earlier connections still queued
	// are stale.
	Conn int64
}

// Writer writes a stream.
type Writer struct {
	w   *bufio.Writer
	buf []byte
}

// NewWriter writes the stream header to w.
func NewWriter(w io.Writer) (*Writer, error) {
	sw := &Writer{w: bufio.NewWriterSize(w, 64<<10)}
	h := make([]byte, headerSize)
	copy(h, magic)
	binary.LittleEndian.PutUint16(h[8:], Version)
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], castagnoli))
	_, err := sw.w.Write(h)
	return sw, err
}

// WriteBatch writes b as a frame (buffered: Flush sends it).
func (w *Writer) WriteBatch(b Batch) error {
	if len(b.Data) > MaxBatchData {
		return fmt.Errorf("stream: a batch of %d bytes, more than %d", len(b.Data), MaxBatchData)
	}
	p := w.payload(batchFixed)
	binary.LittleEndian.PutUint32(p[0:], b.Timeline)
	binary.LittleEndian.PutUint64(p[4:], b.Epoch)
	binary.LittleEndian.PutUint64(p[12:], b.Seq)
	binary.LittleEndian.PutUint32(p[20:], b.Count)
	binary.LittleEndian.PutUint64(p[24:], uint64(unixNano(b.Time)))
	binary.LittleEndian.PutUint32(p[32:], uint32(len(b.Data)))
	return w.frame(kindBatch, p, b.Data)
}

// WriteHeartbeat writes h as a frame (buffered: Flush sends it).
func (w *Writer) WriteHeartbeat(h Heartbeat) error {
	p := w.payload(heartbeatSize)
	binary.LittleEndian.PutUint32(p[0:], h.Timeline)
	binary.LittleEndian.PutUint64(p[4:], h.Epoch)
	binary.LittleEndian.PutUint64(p[12:], h.Next)
	binary.LittleEndian.PutUint64(p[20:], h.Archived)
	binary.LittleEndian.PutUint64(p[28:], h.Head)
	binary.LittleEndian.PutUint64(p[36:], uint64(unixNano(h.Time)))
	return w.frame(kindHeartbeat, p, nil)
}

// Flush sends what is buffered.
func (w *Writer) Flush() error { return w.w.Flush() }

func (w *Writer) payload(n int) []byte {
	if cap(w.buf) < 8+n {
		w.buf = make([]byte, 8+n)
	}
	w.buf = w.buf[:8+n]
	clear(w.buf)
	return w.buf[8:]
}

// frame writes kind, the fixed payload in w.buf and data, then the CRC.
func (w *Writer) frame(kind byte, fixed, data []byte) error {
	head := w.buf[:8]
	head[0] = kind
	binary.LittleEndian.PutUint32(head[4:], uint32(len(fixed)+len(data)))
	crc := crc32.Update(crc32.Checksum(w.buf, castagnoli), castagnoli, data)
	if _, err := w.w.Write(w.buf); err != nil {
		return err
	}
	if _, err := w.w.Write(data); err != nil {
		return err
	}
	var c [4]byte
	binary.LittleEndian.PutUint32(c[:], crc)
	_, err := w.w.Write(c[:])
	return err
}

// Reader reads a stream.
type Reader struct {
	r   *bufio.Reader
	buf []byte
}

// NewReader reads and checks the stream header of r.
func NewReader(r io.Reader) (*Reader, error) {
	sr := &Reader{r: bufio.NewReaderSize(r, 64<<10)}
	h := make([]byte, headerSize)
	if _, err := io.ReadFull(sr.r, h); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("stream: read the header: %w", err)
	}
	if string(h[:8]) != magic {
		return nil, fmt.Errorf("%w: not a rockstream stream (magic %x)", ErrUnsupported, h[:8])
	}
	if crc32.Checksum(h[:12], castagnoli) != binary.LittleEndian.Uint32(h[12:]) {
		return nil, fmt.Errorf("%w: the stream header fails its CRC", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint16(h[8:]); v != Version || binary.LittleEndian.Uint16(h[10:]) != reservedHeader {
		return nil, fmt.Errorf("%w: stream format version %d (this build reads %d): upgrade the standby", ErrUnsupported, v, Version)
	}
	return sr, nil
}

// Next reads the next frame. A Batch's Data is valid until the next call.
// At the end of the stream it returns io.EOF between frames and
// io.ErrUnexpectedEOF inside one.
func (r *Reader) Next() (Frame, error) {
	var head [8]byte
	if _, err := io.ReadFull(r.r, head[:]); err != nil {
		return Frame{}, err // io.EOF between frames
	}
	kind, n := head[0], binary.LittleEndian.Uint32(head[4:])
	if head[1] != 0 || head[2] != 0 || head[3] != 0 {
		return Frame{}, fmt.Errorf("%w: reserved bytes of a frame are set", ErrCorrupt)
	}
	switch {
	case kind == kindBatch && (n < batchFixed || n > MaxPayload),
		kind == kindHeartbeat && n != heartbeatSize:
		return Frame{}, fmt.Errorf("%w: a frame of kind %d with %d bytes", ErrCorrupt, kind, n)
	case kind != kindBatch && kind != kindHeartbeat:
		return Frame{}, fmt.Errorf("%w: a frame of unknown kind %d", ErrCorrupt, kind)
	}
	if cap(r.buf) < int(n)+4 {
		r.buf = make([]byte, int(n)+4)
	}
	body := r.buf[:int(n)+4]
	if _, err := io.ReadFull(r.r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	p := body[:n]
	crc := crc32.Update(crc32.Checksum(head[:], castagnoli), castagnoli, p)
	if crc != binary.LittleEndian.Uint32(body[n:]) {
		return Frame{}, fmt.Errorf("%w: a frame fails its CRC", ErrCorrupt)
	}
	if kind == kindHeartbeat {
		return Frame{Heartbeat: &Heartbeat{
			Timeline: binary.LittleEndian.Uint32(p[0:]), Epoch: binary.LittleEndian.Uint64(p[4:]),
			Next: binary.LittleEndian.Uint64(p[12:]), Archived: binary.LittleEndian.Uint64(p[20:]),
			Head: binary.LittleEndian.Uint64(p[28:]), Time: fromUnixNano(int64(binary.LittleEndian.Uint64(p[36:]))),
		}}, nil
	}
	d := binary.LittleEndian.Uint32(p[32:])
	if int(d) != len(p)-batchFixed {
		return Frame{}, fmt.Errorf("%w: a batch frame of %d bytes says its data has %d", ErrCorrupt, n, d)
	}
	return Frame{Batch: &Batch{
		Timeline: binary.LittleEndian.Uint32(p[0:]), Epoch: binary.LittleEndian.Uint64(p[4:]),
		Seq: binary.LittleEndian.Uint64(p[12:]), Count: binary.LittleEndian.Uint32(p[20:]),
		Time: fromUnixNano(int64(binary.LittleEndian.Uint64(p[24:]))), Data: p[batchFixed:],
	}}, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}
