package stream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"strings"
	"testing"
	"time"
)

// encode writes frames (exactly one of Batch and Heartbeat set in each) as
// a stream.
func encode(t testing.TB, frames ...Frame) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		if err := writeFrame(w, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFrame(w *Writer, f Frame) error {
	switch {
	case f.Batch != nil && f.Heartbeat == nil:
		return w.WriteBatch(*f.Batch)
	case f.Heartbeat != nil && f.Batch == nil:
		return w.WriteHeartbeat(*f.Heartbeat)
	}
	return fmt.Errorf("a frame with batch %v and heartbeat %v", f.Batch != nil, f.Heartbeat != nil)
}

// decode reads a stream to its end: the frames read (their data copied)
// and the error that ended it (io.EOF at a clean end).
func decode(data []byte) ([]Frame, error) {
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []Frame
	for {
		f, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, copyFrame(f))
	}
}

// copyFrame copies a frame's batch data, valid until the next Next.
func copyFrame(f Frame) Frame {
	if f.Batch != nil {
		b := *f.Batch
		b.Data = bytes.Clone(b.Data)
		f.Batch = &b
	}
	if f.Heartbeat != nil {
		h := *f.Heartbeat
		f.Heartbeat = &h
	}
	return f
}

func batchFrame(b Batch) Frame         { return Frame{Batch: &b} }
func heartbeatFrame(h Heartbeat) Frame { return Frame{Heartbeat: &h} }

// sameFrame compares the frames' content (times by instant, nil and empty
// data alike, Conn ignored).
func sameFrame(a, b Frame) bool {
	switch {
	case a.Batch != nil && b.Batch != nil && a.Heartbeat == nil && b.Heartbeat == nil:
		x, y := a.Batch, b.Batch
		return x.Timeline == y.Timeline && x.Epoch == y.Epoch && x.Seq == y.Seq && x.Count == y.Count &&
			x.Time.Equal(y.Time) && bytes.Equal(x.Data, y.Data)
	case a.Heartbeat != nil && b.Heartbeat != nil && a.Batch == nil && b.Batch == nil:
		x, y := a.Heartbeat, b.Heartbeat
		return x.Timeline == y.Timeline && x.Epoch == y.Epoch && x.Next == y.Next && x.Archived == y.Archived &&
			x.Head == y.Head && x.Time.Equal(y.Time)
	}
	return false
}

func showFrame(f Frame) string {
	switch {
	case f.Batch != nil:
		b := f.Batch
		return fmt.Sprintf("batch{tl %d epoch %d seq %d count %d time %d data %d bytes}", b.Timeline, b.Epoch, b.Seq, b.Count, unixNano(b.Time), len(b.Data))
	case f.Heartbeat != nil:
		h := f.Heartbeat
		return fmt.Sprintf("heartbeat{tl %d epoch %d next %d archived %d head %d time %d}", h.Timeline, h.Epoch, h.Next, h.Archived, h.Head, unixNano(h.Time))
	}
	return "empty frame"
}

func sameFrames(t testing.TB, got, want []Frame) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d frames, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if !sameFrame(got[i], want[i]) {
			t.Errorf("frame %d = %s, want %s", i, showFrame(got[i]), showFrame(want[i]))
		}
	}
}

// pattern is len bytes that depend on seed and their index.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7+i>>8)
	}
	return b
}

// sampleFrames are frames of every shape.
func sampleFrames() []Frame {
	t0 := time.Unix(0, 1_700_000_000_123_456_789)
	return []Frame{
		batchFrame(Batch{Timeline: 1, Epoch: 3, Seq: 100, Count: 2, Time: t0, Data: pattern(1, 40)}),
		batchFrame(Batch{Timeline: 1, Epoch: 3, Seq: 102, Count: 0, Time: t0.Add(time.Millisecond), Data: pattern(2, 13)}), // a prepare
		heartbeatFrame(Heartbeat{Timeline: 1, Epoch: 3, Next: 102, Archived: 90, Head: 150, Time: t0.Add(2 * time.Millisecond)}),
		batchFrame(Batch{Timeline: 1, Epoch: 3, Seq: 102, Count: 5, Time: t0.Add(3 * time.Millisecond)}), // no data
		batchFrame(Batch{Timeline: 1, Epoch: 3, Seq: 107, Count: 1, Data: pattern(3, 5)}),                // zero time
		heartbeatFrame(Heartbeat{}),
		batchFrame(Batch{Timeline: math.MaxUint32, Epoch: math.MaxUint64, Seq: math.MaxUint64 - 10, Count: math.MaxUint32, Time: time.Unix(-5, 7), Data: []byte{}}),
		heartbeatFrame(Heartbeat{Timeline: math.MaxUint32, Epoch: math.MaxUint64, Next: math.MaxUint64, Archived: math.MaxUint64 - 1, Head: math.MaxUint64, Time: time.Unix(1<<33, 999_999_999).UTC()}),
	}
}

func TestRoundTrip(t *testing.T) {
	frames := sampleFrames()
	frames = append(frames, batchFrame(Batch{Timeline: 2, Epoch: 4, Seq: 1 << 40, Count: 1000, Time: time.Unix(1_800_000_000, 1), Data: pattern(9, 1<<20)}))
	frames = append(frames, heartbeatFrame(Heartbeat{Timeline: 2, Epoch: 4, Next: 1<<40 + 1000, Time: time.Unix(1_800_000_000, 2)}))
	data := encode(t, frames...)
	got, err := decode(data)
	if err != io.EOF {
		t.Fatalf("the stream ends with %v, want io.EOF", err)
	}
	sameFrames(t, got, frames)
	for i, f := range got {
		if f.Batch != nil && f.Heartbeat != nil || f.Batch == nil && f.Heartbeat == nil {
			t.Errorf("frame %d has batch %v and heartbeat %v", i, f.Batch != nil, f.Heartbeat != nil)
		}
		var tm time.Time
		if f.Batch != nil {
			tm = f.Batch.Time
		} else {
			tm = f.Heartbeat.Time
		}
		var want time.Time
		if frames[i].Batch != nil {
			want = frames[i].Batch.Time
		} else {
			want = frames[i].Heartbeat.Time
		}
		if tm.IsZero() != want.IsZero() {
			t.Errorf("frame %d: time %v, want %v", i, tm, want)
		}
	}
	// The size is the format's: a 16-byte header, 12 bytes a frame, 36
	// bytes and the data a batch, 44 bytes a heartbeat.
	size := headerSize
	for _, f := range frames {
		size += frameOverhead
		if f.Batch != nil {
			size += batchFixed + len(f.Batch.Data)
		} else {
			size += heartbeatSize
		}
	}
	if len(data) != size {
		t.Errorf("%d bytes, want %d", len(data), size)
	}
	if got := encode(t); len(got) != headerSize {
		t.Errorf("an empty stream is %d bytes, want %d", len(got), headerSize)
	}
	if got, err := decode(encode(t)); len(got) != 0 || err != io.EOF {
		t.Errorf("an empty stream reads %d frames and %v, want none and io.EOF", len(got), err)
	}
}

// TestDataValidUntilNext checks that a batch's data is the frame's even
// when a larger or a smaller batch follows.
func TestDataValidUntilNext(t *testing.T) {
	a := Batch{Seq: 1, Count: 1, Data: pattern(1, 100)}
	b := Batch{Seq: 2, Count: 1, Data: pattern(2, 10)}
	c := Batch{Seq: 3, Count: 1, Data: pattern(3, 5000)}
	r, err := NewReader(bytes.NewReader(encode(t, batchFrame(a), batchFrame(b), batchFrame(c))))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []Batch{a, b, c} {
		f, err := r.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Batch.Data, want.Data) {
			t.Errorf("batch %d: data differs", want.Seq)
		}
	}
}

// rawHeader and rawFrame build streams by hand, after doc.go, with right
// CRCs: each test breaks one thing only.
func rawHeader(version, reserved uint16) []byte {
	h := []byte(magic)
	h = binary.LittleEndian.AppendUint16(h, version)
	h = binary.LittleEndian.AppendUint16(h, reserved)
	return binary.LittleEndian.AppendUint32(h, crc32.Checksum(h, crc32.MakeTable(crc32.Castagnoli)))
}

func rawFrame(kind byte, reserved [3]byte, length uint32, payload []byte) []byte {
	f := []byte{kind, reserved[0], reserved[1], reserved[2]}
	f = binary.LittleEndian.AppendUint32(f, length)
	f = append(f, payload...)
	return binary.LittleEndian.AppendUint32(f, crc32.Checksum(f, crc32.MakeTable(crc32.Castagnoli)))
}

func rawBatch(tl uint32, epoch, seq uint64, count uint32, ns int64, dataLen uint32, data []byte) []byte {
	p := binary.LittleEndian.AppendUint32(nil, tl)
	p = binary.LittleEndian.AppendUint64(p, epoch)
	p = binary.LittleEndian.AppendUint64(p, seq)
	p = binary.LittleEndian.AppendUint32(p, count)
	p = binary.LittleEndian.AppendUint64(p, uint64(ns))
	p = binary.LittleEndian.AppendUint32(p, dataLen)
	return append(p, data...)
}

func rawHeartbeat(tl uint32, epoch, next, archived, head uint64, ns int64) []byte {
	p := binary.LittleEndian.AppendUint32(nil, tl)
	p = binary.LittleEndian.AppendUint64(p, epoch)
	p = binary.LittleEndian.AppendUint64(p, next)
	p = binary.LittleEndian.AppendUint64(p, archived)
	p = binary.LittleEndian.AppendUint64(p, head)
	return binary.LittleEndian.AppendUint64(p, uint64(ns))
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestLayout checks the Writer against the layout of doc.go, written out
// here byte by byte.
func TestLayout(t *testing.T) {
	wantHeader := []byte{0x89, 'R', 'K', 'S', 'T', 'R', '\r', '\n', 1, 0, 0, 0}
	wantHeader = binary.LittleEndian.AppendUint32(wantHeader, crc32.Checksum(wantHeader, crc32.MakeTable(crc32.Castagnoli)))
	if !bytes.Equal(rawHeader(1, 0), wantHeader) {
		t.Fatalf("rawHeader differs from doc.go")
	}
	data := []byte("a write batch")
	want := concat(wantHeader,
		rawFrame(1, [3]byte{}, 36+uint32(len(data)), rawBatch(7, 0x0102030405060708, 0x1112131415161718, 3, 1_700_000_000_000_000_042, uint32(len(data)), data)),
		rawFrame(2, [3]byte{}, 44, rawHeartbeat(7, 9, 10, 11, 12, -1)),
		rawFrame(1, [3]byte{}, 36, rawBatch(7, 9, 10, 0, 0, 0, nil)))
	got := encode(t,
		batchFrame(Batch{Timeline: 7, Epoch: 0x0102030405060708, Seq: 0x1112131415161718, Count: 3, Time: time.Unix(0, 1_700_000_000_000_000_042), Data: data}),
		heartbeatFrame(Heartbeat{Timeline: 7, Epoch: 9, Next: 10, Archived: 11, Head: 12, Time: time.Unix(0, -1)}),
		batchFrame(Batch{Timeline: 7, Epoch: 9, Seq: 10}))
	if !bytes.Equal(got, want) {
		t.Errorf("the Writer writes\n%x\nwant (doc.go)\n%x", got, want)
	}
}

func TestHeaderErrors(t *testing.T) {
	good := rawHeader(Version, 0)
	v2 := rawHeader(2, 0)
	badMagic := bytes.Clone(good)
	badMagic[1] = 'X'
	badMagic = rawHeaderCRC(badMagic)
	badCRC := bytes.Clone(good)
	badCRC[13] ^= 0x40
	reserved := rawHeader(Version, 1)
	frame := rawFrame(2, [3]byte{}, 44, rawHeartbeat(1, 1, 1, 1, 1, 1))
	for _, c := range []struct {
		name    string
		data    []byte
		want    error
		message string
	}{
		{"bad magic", concat(badMagic, frame), ErrUnsupported, "not a rockstream stream"},
		{"not a stream", []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), ErrUnsupported, ""},
		{"version 2", concat(v2, frame), ErrUnsupported, "upgrade"},
		{"version 0", concat(rawHeader(0, 0), frame), ErrUnsupported, ""},
		{"version 1 with reserved bytes", concat(reserved, frame), ErrUnsupported, ""},
		{"header CRC", concat(badCRC, frame), ErrCorrupt, ""},
		{"empty", nil, io.ErrUnexpectedEOF, ""},
		{"cut header", good[:headerSize-1], io.ErrUnexpectedEOF, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewReader(bytes.NewReader(c.data))
			if r != nil || !errors.Is(err, c.want) {
				t.Fatalf("NewReader = %v, %v; want nil, %v", r, err, c.want)
			}
			if !strings.Contains(err.Error(), c.message) {
				t.Errorf("error %q does not say %q", err, c.message)
			}
		})
	}
	if _, err := NewReader(bytes.NewReader(good)); err != nil {
		t.Errorf("a good header: %v", err)
	}
	// A version 2 header with a wrong CRC is corrupt, not another version.
	v2[12] ^= 1
	if _, err := NewReader(bytes.NewReader(v2)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("version 2 with a bad CRC: %v, want ErrCorrupt", err)
	}
}

// rawHeaderCRC sets the CRC of a header.
func rawHeaderCRC(h []byte) []byte {
	binary.LittleEndian.PutUint32(h[12:], crc32.Checksum(h[:12], crc32.MakeTable(crc32.Castagnoli)))
	return h
}

func TestFrameErrors(t *testing.T) {
	good := rawFrame(2, [3]byte{}, 44, rawHeartbeat(1, 2, 3, 4, 5, 6))
	data := pattern(5, 20)
	for _, c := range []struct {
		name  string
		frame []byte
	}{
		{"unknown kind 0", rawFrame(0, [3]byte{}, 44, rawHeartbeat(1, 2, 3, 4, 5, 6))},
		{"unknown kind 3", rawFrame(3, [3]byte{}, 44, rawHeartbeat(1, 2, 3, 4, 5, 6))},
		{"unknown kind 255", rawFrame(255, [3]byte{}, 0, nil)},
		{"reserved byte 1", rawFrame(2, [3]byte{1, 0, 0}, 44, rawHeartbeat(1, 2, 3, 4, 5, 6))},
		{"reserved byte 2", rawFrame(1, [3]byte{0, 0x80, 0}, 36+20, rawBatch(1, 2, 3, 4, 5, 20, data))},
		{"reserved byte 3", rawFrame(1, [3]byte{0, 0, 1}, 36+20, rawBatch(1, 2, 3, 4, 5, 20, data))},
		{"dataLen short", rawFrame(1, [3]byte{}, 36+20, rawBatch(1, 2, 3, 4, 5, 19, data))},
		{"dataLen long", rawFrame(1, [3]byte{}, 36+20, rawBatch(1, 2, 3, 4, 5, 21, data))},
		{"dataLen huge", rawFrame(1, [3]byte{}, 36+20, rawBatch(1, 2, 3, 4, 5, math.MaxUint32, data))},
		{"batch shorter than its fixed part", rawFrame(1, [3]byte{}, 35, rawBatch(1, 2, 3, 4, 5, 0, nil)[:35])},
		{"empty batch payload", rawFrame(1, [3]byte{}, 0, nil)},
		{"batch over MaxPayload", rawFrame(1, [3]byte{}, MaxPayload+1, rawBatch(1, 2, 3, 4, 5, MaxBatchData+1, nil))},
		{"batch length 2^32-1", rawFrame(1, [3]byte{}, math.MaxUint32, nil)},
		{"heartbeat short", rawFrame(2, [3]byte{}, 43, rawHeartbeat(1, 2, 3, 4, 5, 6)[:43])},
		{"heartbeat long", rawFrame(2, [3]byte{}, 45, append(rawHeartbeat(1, 2, 3, 4, 5, 6), 0))},
		{"heartbeat as a batch", rawFrame(1, [3]byte{}, 44, rawHeartbeat(1, 2, 3, 4, 5, 6))},
		{"length disagrees with the payload", rawFrame(2, [3]byte{}, 44, append(rawHeartbeat(1, 2, 3, 4, 5, 6), pattern(1, 8)...))},
	} {
		t.Run(c.name, func(t *testing.T) {
			// The bad frame after a good one: the good one reads, the bad
			// one is ErrCorrupt, however many bytes follow.
			for _, tail := range [][]byte{nil, good, bytes.Repeat(good, 3)} {
				got, err := decode(concat(rawHeader(1, 0), good, c.frame, tail))
				if len(got) != 1 || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("read %d frames then %v; want 1 then ErrCorrupt", len(got), err)
				}
			}
		})
	}
	// The builders make what the Writer makes.
	if got, err := decode(concat(rawHeader(1, 0), good, rawFrame(1, [3]byte{}, 36+20, rawBatch(1, 2, 3, 4, 5, 20, data)))); err != io.EOF || len(got) != 2 {
		t.Fatalf("good frames: %d frames, %v", len(got), err)
	}
}

// streamFrames are the frames of the corruption tests: batches and
// heartbeats of several sizes.
func streamFrames() []Frame {
	t0 := time.Unix(0, 1_650_000_000_000_000_000)
	return []Frame{
		batchFrame(Batch{Timeline: 1, Epoch: 2, Seq: 10, Count: 3, Time: t0, Data: pattern(1, 30)}),
		heartbeatFrame(Heartbeat{Timeline: 1, Epoch: 2, Next: 13, Archived: 5, Head: 20, Time: t0.Add(time.Second)}),
		batchFrame(Batch{Timeline: 1, Epoch: 2, Seq: 13, Count: 0, Time: t0.Add(2 * time.Second)}),
		batchFrame(Batch{Timeline: 1, Epoch: 2, Seq: 13, Count: 7, Time: t0.Add(3 * time.Second), Data: pattern(2, 300)}),
		heartbeatFrame(Heartbeat{Timeline: 1, Epoch: 2, Next: 20, Archived: 13, Head: 20, Time: t0.Add(4 * time.Second)}),
	}
}

// frameOffsets are where each frame of a stream starts, and its end.
func frameOffsets(frames []Frame) []int {
	off := []int{headerSize}
	for _, f := range frames {
		n := frameOverhead + heartbeatSize
		if f.Batch != nil {
			n = frameOverhead + batchFixed + len(f.Batch.Data)
		}
		off = append(off, off[len(off)-1]+n)
	}
	return off
}

// TestFlips flips each byte of each frame in turn, in several ways: the
// frames before it read as written, and the flipped frame is ErrCorrupt
// (or io.ErrUnexpectedEOF when its length grew past the stream's end),
// never accepted as another frame.
func TestFlips(t *testing.T) {
	frames := streamFrames()
	stream := encode(t, frames...)
	off := frameOffsets(frames)
	if off[len(frames)] != len(stream) {
		t.Fatalf("frames end at %d, the stream at %d", off[len(frames)], len(stream))
	}
	checked := 0
	for k := range frames {
		for i := off[k]; i < off[k+1]; i++ {
			for _, mask := range []byte{0x01, 0x02, 0x10, 0x80, 0xff} {
				bad := bytes.Clone(stream)
				bad[i] ^= mask
				got, err := decode(bad)
				if len(got) > k {
					t.Fatalf("byte %d of frame %d ^ %#x: frame %d reads as %s (written %s)", i-off[k], k, mask, k, showFrame(got[k]), showFrame(frames[k]))
				}
				if len(got) != k {
					t.Fatalf("byte %d of frame %d ^ %#x: %d frames read, want the %d before it", i-off[k], k, mask, len(got), k)
				}
				sameFrames(t, got, frames[:k])
				switch lengthByte := i-off[k] >= 4 && i-off[k] < 8; {
				case errors.Is(err, ErrCorrupt):
				case lengthByte && errors.Is(err, io.ErrUnexpectedEOF):
				default:
					t.Fatalf("byte %d of frame %d ^ %#x: %v, want ErrCorrupt", i-off[k], k, mask, err)
				}
				checked++
			}
		}
	}
	t.Logf("%d flips", checked)
}

// TestCuts cuts the stream at each offset: between frames it ends with
// io.EOF, inside one with io.ErrUnexpectedEOF, after the frames before.
func TestCuts(t *testing.T) {
	frames := streamFrames()
	stream := encode(t, frames...)
	off := frameOffsets(frames)
	for k := 0; k <= len(frames); k++ {
		got, err := decode(stream[:off[k]])
		if err != io.EOF {
			t.Errorf("cut after %d frames: %v, want io.EOF", k, err)
		}
		sameFrames(t, got, frames[:k])
	}
	last := len(frames) - 1
	for k := range frames {
		if k != last && k != 0 && k != 3 {
			continue // the last frame at each offset, and the larger ones
		}
		for end := off[k] + 1; end < off[k+1]; end++ {
			got, err := decode(stream[:end])
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("cut at %d, inside frame %d: %v, want io.ErrUnexpectedEOF", end, k, err)
			}
			sameFrames(t, got, frames[:k])
		}
	}
	// A stream whose connection breaks returns the connection's error.
	broken := errors.New("connection reset")
	r, err := NewReader(io.MultiReader(bytes.NewReader(stream[:off[1]]), &errReader{broken}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, broken) {
		t.Errorf("a broken connection: %v, want %v", err, broken)
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func TestWriteBatchLimit(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	big := make([]byte, MaxBatchData+1)
	if err := w.WriteBatch(Batch{Seq: 1, Count: 1, Data: big}); err == nil {
		t.Fatal("WriteBatch took a batch over MaxBatchData")
	}
	// The refused batch wrote nothing: the stream goes on.
	ok := Batch{Seq: 1, Count: 1, Data: []byte("ok")}
	if err := w.WriteBatch(ok); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := decode(buf.Bytes())
	if err != io.EOF {
		t.Fatal(err)
	}
	sameFrames(t, got, []Frame{batchFrame(ok)})
}

// TestMaxBatch round-trips a batch of MaxBatchData bytes, the largest.
func TestMaxBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	b := Batch{Timeline: 1, Seq: 1, Count: 1, Data: pattern(4, MaxBatchData)}
	got, err := decode(encode(t, batchFrame(b)))
	if err != io.EOF {
		t.Fatal(err)
	}
	if len(got) != 1 || !sameFrame(got[0], batchFrame(b)) {
		t.Fatal("the largest batch does not read back")
	}
}

// TestWriterErrors: a Writer returns its io.Writer's error.
func TestWriterErrors(t *testing.T) {
	broken := errors.New("broken pipe")
	if _, err := NewWriter(&failWriter{err: broken}); err != nil {
		t.Fatalf("NewWriter buffers the header: %v", err)
	}
	w, _ := NewWriter(&failWriter{err: broken})
	if err := w.WriteBatch(Batch{Data: make([]byte, 1<<20)}); !errors.Is(err, broken) {
		t.Errorf("WriteBatch past the buffer: %v, want %v", err, broken)
	}
	w, _ = NewWriter(&failWriter{err: broken})
	if err := w.WriteHeartbeat(Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Errorf("Flush: %v, want %v", err, broken)
	}
}

type failWriter struct{ err error }

func (w *failWriter) Write([]byte) (int, error) { return 0, w.err }
