package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/klauspost/compress/zstd"
)

// smallSegment returns a segment of a few KiB in several blocks.
func smallSegment(t testing.TB, codec Codec) ([]byte, []Batch) {
	t.Helper()
	g := newWorkload(9, 500)
	var batches []Batch
	for range 10 {
		batches = append(batches, g.batch(3))
	}
	batches = append(batches, newBatchBuilder(g.seq).batch(time.Unix(0, g.now)))
	h := Header{Codec: codec, Timeline: 4, FirstSeq: 500, Created: time.Unix(1_700_000_000, 0)}
	seg := writeSegment(t, h, WriterOptions{BlockSize: 768}, batches)
	if n := len(seg); n < 2048 || n > 8192 {
		t.Fatalf("small segment is %d bytes, want 2-8 KiB", n)
	}
	return seg, batches
}

// checkRejected fails unless err is ErrCorrupt or ErrUnsupported, with a
// CorruptError offset inside the segment.
func checkRejected(t *testing.T, err error, size int, what string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: read without error", what)
	}
	var ce *CorruptError
	if errors.As(err, &ce) {
		if ce.Offset < 0 || ce.Offset > int64(size) {
			t.Fatalf("%s: offset %d outside the %d-byte segment: %v", what, ce.Offset, size, err)
		}
		return
	}
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("%s: err = %v, want ErrCorrupt or ErrUnsupported", what, err)
	}
}

func TestEveryByteFlipIsDetected(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			seg, _ := smallSegment(t, codec)
			_, trailerOff := blockOffsets(t, seg)
			for i := range seg {
				for _, mask := range []byte{0x01, 0x80, 0xff} {
					bad := bytes.Clone(seg)
					bad[i] ^= mask
					what := fmt.Sprintf("byte %d ^ %#02x", i, mask)
					_, _, _, err := readAll(bad, ReaderOptions{})
					checkRejected(t, err, len(bad), what)
					if i >= trailerOff {
						_, _, err := ReadTrailer(bytes.NewReader(bad), int64(len(bad)))
						checkRejected(t, err, len(bad), "ReadTrailer "+what)
					}
				}
			}
		})
	}
}

func TestEveryTruncationIsDetected(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			seg, _ := smallSegment(t, codec)
			for n := range len(seg) {
				cut := seg[:n]
				_, _, _, err := readAll(cut, ReaderOptions{})
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("cut to %d bytes: err = %v, want ErrCorrupt", n, err)
				}
				_, _, err = ReadTrailer(bytes.NewReader(cut), int64(n))
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("ReadTrailer of a cut to %d bytes: err = %v, want ErrCorrupt", n, err)
				}
			}
		})
	}
}

func TestCutAtBlockBoundary(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	blocks, trailer := blockOffsets(t, seg)
	for _, off := range append(blocks, trailer) {
		_, _, _, err := readAll(seg[:off], ReaderOptions{})
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "trailer is missing") {
			t.Errorf("cut at byte %d: err = %v, want ErrCorrupt saying the trailer is missing", off, err)
		}
	}
}

func TestBlockSurgeryIsDetected(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		seg, _ := smallSegment(t, codec)
		blocks, trailer := blockOffsets(t, seg)
		if len(blocks) < 3 {
			t.Fatalf("%v: %d blocks, want at least 3", codec, len(blocks))
		}
		bounds := append(blocks, trailer)
		block := func(k int) []byte { return seg[bounds[k]:bounds[k+1]] }
		join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
		for k := range blocks {
			cases := map[string][]byte{
				"removed":    join(seg[:bounds[k]], seg[bounds[k+1]:]),
				"duplicated": join(seg[:bounds[k+1]], block(k), seg[bounds[k+1]:]),
			}
			if k+1 < len(blocks) {
				cases["swapped with the next"] = join(seg[:bounds[k]], block(k+1), block(k), seg[bounds[k+2]:])
			}
			for name, bad := range cases {
				_, _, _, err := readAll(bad, ReaderOptions{})
				if !errors.Is(err, ErrCorrupt) {
					t.Errorf("%v: block %d %s: err = %v, want ErrCorrupt", codec, k, name, err)
				}
			}
		}
	}
}

func TestSpliceOfTwoSegmentsIsDetected(t *testing.T) {
	batches := goldenBatches(5, 100, 10)
	a := writeSegment(t, Header{Timeline: 1, FirstSeq: 100}, WriterOptions{}, batches)
	b := writeSegment(t, Header{Timeline: 2, FirstSeq: 100}, WriterOptions{}, batches)
	bad := append(bytes.Clone(a[:headerSize]), b[headerSize:]...)
	if _, _, _, err := readAll(bad, ReaderOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("header of timeline 1, rest of timeline 2: err = %v, want ErrCorrupt", err)
	}
}

func TestDataAfterTrailerIsDetected(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	for _, extra := range [][]byte{{0}, seg} {
		_, _, _, err := readAll(append(bytes.Clone(seg), extra...), ReaderOptions{})
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%d bytes after the trailer: err = %v, want ErrCorrupt", len(extra), err)
		}
	}
}

func TestForeignFilesAreCorrupt(t *testing.T) {
	rng := prng{42}
	random := make([]byte, 4096)
	for i := range random {
		random[i] = byte(rng.next())
	}
	files := map[string][]byte{
		"empty":            nil,
		"text":             []byte("# rockstream\n\nThis is a README, not a segment.\n"),
		"random":           random,
		"v1 magic, random": append(append(bytes.Clone(magic[:]), 1, 0), random...),
		"png":              []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"),
		"zstd frame":       mustCompress(t, []byte("hello, hello, hello")),
	}
	for name, file := range files {
		_, _, _, err := readAll(file, ReaderOptions{})
		var ce *CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("%s: err = %v, want a *CorruptError", name, err)
		}
		if _, _, err := ReadTrailer(bytes.NewReader(file), int64(len(file))); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ReadTrailer err = %v, want ErrCorrupt", name, err)
		}
	}
}

func mustCompress(t testing.TB, b []byte) []byte {
	t.Helper()
	out, err := compress(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rewriteHeader changes a header field and fixes the header's checksum.
func rewriteHeader(seg []byte, change func(b []byte)) []byte {
	bad := bytes.Clone(seg)
	change(bad[:headerSize])
	le.PutUint32(bad[40:], checksum(bad[:40]))
	return bad
}

func TestUnknownVersionCodecOrFlags(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	tests := []struct {
		name, want string
		change     func(b []byte)
	}{
		{"version 3", "format version 3", func(b []byte) { le.PutUint16(b[8:], 3) }},
		{"version 0", "format version 0", func(b []byte) { le.PutUint16(b[8:], 0) }},
		{"codec 7", "codec 7", func(b []byte) { le.PutUint16(b[10:], 7) }},
		{"flag bit 3", "unknown flags 0x8", func(b []byte) { le.PutUint32(b[12:], 1<<3|FlagEnd) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(rewriteHeader(seg, tt.change)), ReaderOptions{})
			if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrUnsupported naming %q", err, tt.want)
			}
		})
	}
	// A v3 segment may have any layout after its first 10 bytes.
	v3 := append(bytes.Clone(magic[:]), 3, 0, 'x')
	if _, err := NewReader(bytes.NewReader(v3), ReaderOptions{}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("short v3 segment: err = %v, want ErrUnsupported", err)
	}
}

func TestReadTrailerUnknownVersion(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	bad := bytes.Clone(seg)
	le.PutUint16(bad[len(bad)-10:], 3)
	_, _, err := ReadTrailer(bytes.NewReader(bad), int64(len(bad)))
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "format version 3") {
		t.Errorf("err = %v, want ErrUnsupported naming version 3", err)
	}
}

// refreshBlock recomputes the body and header checksums of the block at off
// after a change to its stored bytes, as a writer with a bug would.
func refreshBlock(seg []byte, off int) {
	stored := int(le.Uint32(seg[off+16:]))
	le.PutUint32(seg[off+20:], checksum(seg[off+blockHeaderSize:off+blockHeaderSize+stored]))
	le.PutUint32(seg[off+40:], checksum(seg[off:off+40]))
}

func TestReaderChecksEachRecord(t *testing.T) {
	seg, batches := smallSegment(t, CodecNone)
	blocks, _ := blockOffsets(t, seg)
	rec := blocks[0] + blockHeaderSize // the first record of the first block
	dataLen := int(le.Uint32(seg[rec:]))
	tests := []struct {
		name, want string
		change     func(b []byte)
	}{
		{"record checksum", "batch record checksum", func(b []byte) { b[rec+20] ^= 1 }},
		{"record length", "declares", func(b []byte) { le.PutUint32(b[rec:], 1<<30) }},
		{"short data", "declares 11 data bytes", func(b []byte) { le.PutUint32(b[rec:], 11) }},
		{"sequence", fmt.Sprintf("batch at sequence %d where %d belongs", batches[0].Seq+1, batches[0].Seq),
			func(b []byte) { le.PutUint64(b[rec+20:], batches[0].Seq+1); fixRecord(b, rec) }},
		{"span", "ends at sequence", func(b []byte) { le.PutUint32(b[rec+12:], batches[0].Count+1); fixRecord(b, rec) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(seg)
			tt.change(bad)
			refreshBlock(bad, blocks[0])
			_, _, _, err := readAll(bad, ReaderOptions{})
			var ce *CorruptError
			if !errors.As(err, &ce) || !strings.Contains(ce.Reason, tt.want) {
				t.Fatalf("err = %v, want a CorruptError saying %q", err, tt.want)
			}
			if ce.Offset < int64(blocks[0]) || ce.Offset > int64(rec+recordOverhead2+dataLen) {
				t.Errorf("offset %d, want within the first block up to its first record at %d", ce.Offset, rec)
			}
		})
	}
}

// fixRecord recomputes the checksum of the v2 record at off.
func fixRecord(seg []byte, off int) {
	n := int(le.Uint32(seg[off:]))
	le.PutUint32(seg[off+20+n:], checksum(seg[off:off+20+n]))
}

// TestRecordFlags: a v2 record with a flag bit that this package does not
// know is refused as unsupported, not read as something else.
func TestRecordFlags(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	blocks, _ := blockOffsets(t, seg)
	rec := blocks[0] + blockHeaderSize
	bad := bytes.Clone(seg)
	le.PutUint32(bad[rec+16:], 1<<4)
	fixRecord(bad, rec)
	refreshBlock(bad, blocks[0])
	_, _, _, err := readAll(bad, ReaderOptions{})
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "flags 0x10") {
		t.Fatalf("err = %v, want ErrUnsupported naming the flags", err)
	}
}

func TestReaderMaxBlockSize(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	_, _, _, err := readAll(seg, ReaderOptions{MaxBlockSize: 512})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "above MaxBlockSize 512") {
		t.Errorf("err = %v, want ErrCorrupt naming MaxBlockSize", err)
	}
	if _, err := NewReader(bytes.NewReader(seg), ReaderOptions{MaxBlockSize: -1}); err == nil {
		t.Errorf("NewReader accepted MaxBlockSize -1")
	}
}

// bombSegment returns a zstd segment whose one block declares rawLen
// uncompressed bytes and stores body.
func bombSegment(rawLen uint32, body []byte) []byte {
	seg := appendHeader(nil, Header{Version: Version, Codec: CodecZstd})
	block := make([]byte, blockHeaderSize)
	putBlockHeader(block, blockHeader{batches: 1, rawLen: rawLen, storedLen: uint32(len(body)), bodyCRC: checksum(body), nextSeq: 1})
	seg = append(append(seg, block...), body...)
	return appendTrailer(seg, Header{Version: Version, Codec: CodecZstd}, Trailer{BlockCount: 1, BatchCount: 1, NextSeq: 1, RawBytes: uint64(rawLen), Size: int64(len(seg) + trailerSize)})
}

// hugeBlockSegment returns an uncompressed segment whose block declares 60
// MiB and holds a few bytes.
func hugeBlockSegment() []byte {
	seg := appendHeader(nil, Header{Version: Version})
	block := make([]byte, blockHeaderSize)
	putBlockHeader(block, blockHeader{batches: 1, rawLen: 60 << 20, storedLen: 60 << 20, nextSeq: 1})
	return append(append(seg, block...), "a few bytes"...)
}

func TestDecompressionBombs(t *testing.T) {
	zeros := make([]byte, 64<<20)
	var stream bytes.Buffer // a frame that does not declare its size
	zw, err := zstd.NewWriter(&stream, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(zeros); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	bombs := map[string][]byte{
		"sized frame":   bombSegment(20000, mustCompress(t, zeros)),
		"unsized frame": bombSegment(20000, stream.Bytes()),
		"huge raw":      bombSegment(1<<31, mustCompress(t, zeros[:100])),
		"huge stored":   hugeBlockSegment(),
	}
	for name, seg := range bombs {
		t.Run(name, func(t *testing.T) {
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, _, err := readAll(seg, ReaderOptions{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) {
				t.Errorf("err = %v, want ErrCorrupt", err)
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
				t.Errorf("reading a %d-byte bomb allocated %d bytes", len(seg), grew)
			}
		})
	}
}

func TestReaderPassesOnReadErrors(t *testing.T) {
	seg, _ := smallSegment(t, CodecZstd)
	errNet := errors.New("connection reset")
	for _, n := range []int{5, headerSize + 2, len(seg) / 2, len(seg)} {
		r := io.MultiReader(bytes.NewReader(seg[:n]), iotest.ErrReader(errNet))
		sr, err := NewReader(r, ReaderOptions{})
		for err == nil {
			_, err = sr.Next()
		}
		if !errors.Is(err, errNet) || errors.Is(err, ErrCorrupt) {
			t.Errorf("read error after %d bytes: err = %v, want %v and not ErrCorrupt", n, err, errNet)
		}
	}
}

func TestReaderErrorSticks(t *testing.T) {
	seg, _ := smallSegment(t, CodecNone)
	bad := bytes.Clone(seg)
	bad[len(bad)/2] ^= 1
	r, err := NewReader(bytes.NewReader(bad), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var first error
	for first == nil {
		_, first = r.Next()
	}
	if _, err := r.Next(); err != first {
		t.Errorf("Next after %v = %v, want the same error", first, err)
	}
	if err := r.SkipTo(1 << 62); err != first {
		t.Errorf("SkipTo after %v = %v, want the same error", first, err)
	}
}

// TestTrailerMustMatch changes each trailer field and fixes the trailer's
// checksum, as a writer with a bug would: the reader must notice.
func TestTrailerMustMatch(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		seg, _ := smallSegment(t, codec)
		off := len(seg) - trailerSize
		fields := []struct {
			name     string
			at, size int
			add      uint64
		}{
			{"blockCount", 4, 4, 1}, {"batchCount", 8, 8, 1}, {"nextSeq", 16, 8, 1},
			{"rawBytes", 24, 8, 16}, {"firstTime", 32, 8, 1}, {"lastTime", 40, 8, 1},
			{"size", 48, 8, 1}, {"timeline", 56, 8, 1}, {"firstSeq", 64, 8, 1},
			{"created", 72, 8, 1}, {"flags", 80, 4, uint64(FlagEnd)}, {"codec", 84, 2, 1},
		}
		for _, f := range fields {
			bad := bytes.Clone(seg)
			p := bad[off+f.at:]
			switch f.size {
			case 2:
				le.PutUint16(p, le.Uint16(p)^uint16(f.add))
			case 4:
				le.PutUint32(p, le.Uint32(p)+uint32(f.add))
			case 8:
				le.PutUint64(p, le.Uint64(p)+f.add)
			}
			le.PutUint32(bad[off+88:], checksum(bad[off:off+88]))
			if _, _, _, err := readAll(bad, ReaderOptions{}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%v: trailer %s changed: err = %v, want ErrCorrupt", codec, f.name, err)
			}
		}
	}
}
