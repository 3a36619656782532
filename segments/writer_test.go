package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// roundTripBatches makes n batches of every shape: multi-operation ones,
// empty ones (the write batch header alone), and one larger than
// bigSize, from firstSeq.
func roundTripBatches(seed, firstSeq uint64, n, bigSize int) []Batch {
	g := newWorkload(seed, firstSeq)
	var out []Batch
	for i := range n {
		switch {
		case i%17 == 3:
			out = append(out, newBatchBuilder(g.seq).batch(time.Unix(0, g.now)))
		case i == n/2:
			b := newBatchBuilder(g.seq)
			b.put([]byte("big"), bytes.Repeat([]byte("0123456789abcdef"), bigSize/16+1))
			big := b.batch(time.Unix(0, g.now))
			g.seq += uint64(big.Count)
			out = append(out, big)
		default:
			out = append(out, g.batch(20))
		}
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		for _, blockSize := range []int{1, 300, 4096, DefaultBlockSize} {
			t.Run(fmt.Sprintf("%v/block%d", codec, blockSize), func(t *testing.T) {
				h := Header{Codec: codec, Timeline: 7, FirstSeq: 12345, Created: time.Unix(1_700_000_000, 5)}
				batches := roundTripBatches(uint64(blockSize), h.FirstSeq, 300, 2*blockSize+1000)
				checkRoundTrip(t, h, WriterOptions{BlockSize: blockSize}, batches)
			})
		}
	}
}

func TestRoundTripZeroBatches(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		for _, flags := range []uint32{0, FlagEnd} {
			t.Run(fmt.Sprintf("%v/flags%d", codec, flags), func(t *testing.T) {
				h := Header{Codec: codec, Flags: flags, Timeline: 2, FirstSeq: 99}
				checkRoundTrip(t, h, WriterOptions{}, nil)
			})
		}
	}
}

// checkRoundTrip writes batches, reads them back, and compares everything.
func checkRoundTrip(t *testing.T, h Header, opts WriterOptions, batches []Batch) {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Append(b); err != nil {
			t.Fatalf("Append(seq %d): %v", b.Seq, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	seg := buf.Bytes()
	gotH, got, tr, err := readAll(seg, ReaderOptions{})
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if !equalHeader(gotH, w.Header()) {
		t.Errorf("header = %+v, want %+v", gotH, w.Header())
	}
	if err := sameBatches(got, batches); err != nil {
		t.Error(err)
	}
	if !equalTrailer(tr, w.Trailer()) {
		t.Errorf("reader's trailer = %+v, writer's %+v", tr, w.Trailer())
	}
	checkTrailerFields(t, h, opts, batches, tr, len(seg))
	_, tr2, err := ReadTrailer(bytes.NewReader(seg), int64(len(seg)))
	if err != nil || !equalTrailer(tr2, tr) {
		t.Errorf("ReadTrailer = %+v, %v; want %+v", tr2, err, tr)
	}
}

func checkTrailerFields(t *testing.T, h Header, opts WriterOptions, batches []Batch, tr Trailer, size int) {
	t.Helper()
	next, first, last := h.FirstSeq, time.Time{}, time.Time{}
	if n := len(batches); n > 0 {
		next = batches[n-1].Seq + uint64(batches[n-1].Count)
		first, last = batches[0].Time, batches[n-1].Time
	}
	if tr.NextSeq != next || tr.BatchCount != uint64(records(h, opts, batches)) || tr.Size != int64(size) ||
		!tr.FirstTime.Equal(first) || !tr.LastTime.Equal(last) {
		t.Errorf("trailer = %+v, want NextSeq %d, %d batches, Size %d, times %v to %v", tr, next, len(batches), size, first, last)
	}
	if (tr.BlockCount == 0) != (len(batches) == 0) {
		t.Errorf("trailer has %d blocks for %d batches", tr.BlockCount, len(batches))
	}
}

func TestWriterBigBatchGetsItsOwnBlock(t *testing.T) {
	g := newWorkload(1, 10)
	small1, small2 := g.batch(2), g.batch(2)
	b := newBatchBuilder(g.seq)
	b.put([]byte("k"), make([]byte, 5000))
	big := b.batch(time.Time{})
	g.seq += uint64(big.Count)
	small3 := g.batch(2)
	seg := writeSegment(t, Header{FirstSeq: 10}, WriterOptions{BlockSize: 1000}, []Batch{small1, small2, big, small3})
	blocks, _ := blockOffsets(t, seg)
	var counts []uint32
	for _, off := range blocks {
		counts = append(counts, le.Uint32(seg[off+8:]))
	}
	if got, want := fmt.Sprint(counts), "[2 1 1]"; got != want {
		t.Errorf("batches per block = %s, want %s", got, want)
	}
}

func TestWriterContinuity(t *testing.T) {
	g := newWorkload(1, 100)
	b1, b2 := g.batch(3), g.batch(3)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{FirstSeq: 100}, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(b2); !errors.Is(err, ErrGap) || !strings.Contains(err.Error(), fmt.Sprintf("expected sequence 100, got %d", b2.Seq)) {
		t.Errorf("first batch at the wrong sequence: err = %v, want ErrGap naming 100 and %d", err, b2.Seq)
	}
	if err := w.Append(b1); err != nil {
		t.Fatalf("Append after a refused batch: %v", err)
	}
	if err := w.Append(b1); !errors.Is(err, ErrGap) {
		t.Errorf("repeated batch: err = %v, want ErrGap", err)
	}
	if got, want := w.NextSeq(), b2.Seq; got != want {
		t.Errorf("NextSeq = %d, want %d", got, want)
	}
	if err := w.Append(b2); err != nil {
		t.Errorf("Append(b2): %v", err)
	}
}

func TestWriterRefusesBadBatches(t *testing.T) {
	data := func(seq uint64, count uint32, n int) []byte {
		d := make([]byte, n)
		le.PutUint64(d, seq)
		le.PutUint32(d[8:], count)
		return d
	}
	tests := []struct {
		name  string
		b     Batch
		check func(error) bool
	}{
		{"short data", Batch{Seq: 5, Count: 0, Data: make([]byte, 11)}, isPlainError},
		{"nil data", Batch{Seq: 5}, isPlainError},
		{"data seq differs", Batch{Seq: 5, Count: 1, Data: data(6, 1, 20)}, isPlainError},
		{"data count differs", Batch{Seq: 5, Count: 1, Data: data(5, 2, 20)}, isPlainError},
		{"overflow", Batch{Seq: 5, Count: 1 << 31, Data: data(5, 1<<31, 20)}, isPlainError},
		{"too large v1", Batch{Seq: 5, Count: 1, Data: data(5, 1, 200)}, func(err error) bool { return errors.Is(err, ErrTooLarge) }},
		{"time out of range", Batch{Seq: 5, Count: 1, Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), Data: data(5, 1, 20)}, isPlainError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := Header{FirstSeq: 5}
			if tt.name == "data count differs" || tt.name == "too large v1" {
				h.Version = Version1 // v2 stores the span: it may differ
			}
			if tt.name == "overflow" {
				h.FirstSeq = 1<<64 - 10
				tt.b.Seq = h.FirstSeq
				le.PutUint64(tt.b.Data, h.FirstSeq)
			}
			w, err := NewWriter(io.Discard, h, WriterOptions{BlockSize: 100, MaxBlockSize: 100})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Append(tt.b); err == nil || !tt.check(err) {
				t.Errorf("Append = %v, want a refusal of the right kind", err)
			}
			if w.Buffered() != 0 || w.NextSeq() != h.FirstSeq {
				t.Errorf("refused batch changed the writer: Buffered %d, NextSeq %d", w.Buffered(), w.NextSeq())
			}
		})
	}
}

// isPlainError reports an error that is none of the sentinels.
func isPlainError(err error) bool {
	return !errors.Is(err, ErrGap) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrCorrupt)
}

func TestNewWriterRefusesBadHeaderOrOptions(t *testing.T) {
	tests := []struct {
		name string
		h    Header
		opts WriterOptions
	}{
		{"version 3", Header{Version: 3}, WriterOptions{}},
		{"codec 9", Header{Codec: 9}, WriterOptions{}},
		{"unknown flag", Header{Flags: 1 << 5}, WriterOptions{}},
		{"created out of range", Header{Created: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}, WriterOptions{}},
		{"block above max", Header{}, WriterOptions{BlockSize: 2 << 20, MaxBlockSize: 1 << 20}},
		{"negative block", Header{}, WriterOptions{BlockSize: -1}},
		{"max too large", Header{}, WriterOptions{MaxBlockSize: 2 << 30}},
		{"max too small", Header{}, WriterOptions{MaxBlockSize: 10}},
		{"negative concurrency", Header{}, WriterOptions{Concurrency: -1}},
		{"concurrency too large", Header{}, WriterOptions{Concurrency: 65}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if _, err := NewWriter(&buf, tt.h, tt.opts); err == nil {
				t.Errorf("NewWriter succeeded")
			}
			if buf.Len() != 0 {
				t.Errorf("NewWriter wrote %d bytes before refusing", buf.Len())
			}
		})
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

var errDisk = errors.New("disk full")

func (f *failingWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errDisk
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriterWriteErrorSticks(t *testing.T) {
	g := newWorkload(1, 0)
	w, err := NewWriter(&failingWriter{n: headerSize + 10}, Header{}, WriterOptions{BlockSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(g.batch(3)); !errors.Is(err, errDisk) {
		t.Fatalf("Append = %v, want %v", err, errDisk)
	}
	if err := w.Append(g.batch(3)); !errors.Is(err, errDisk) {
		t.Errorf("second Append = %v, want %v", err, errDisk)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close = %v, want %v", err, errDisk)
	}
}

func TestWriterClosed(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{}, WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.Close(); err != nil || buf.Len() != n {
		t.Errorf("second Close = %v and wrote %d bytes, want nil and none", err, buf.Len()-n)
	}
	if err := w.Append(newBatchBuilder(0).batch(time.Time{})); err == nil {
		t.Errorf("Append after Close succeeded")
	}
}

func TestWriterSizeAndBuffered(t *testing.T) {
	const blockSize = 4096
	g := newWorkload(1, 0)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{}, WriterOptions{BlockSize: blockSize})
	if err != nil {
		t.Fatal(err)
	}
	// The rule: a block is written before a batch that would take it past
	// the block size, and as soon as it reaches the block size.
	want := 0
	for range 200 {
		b := g.batch(5)
		size := recordOverhead2 + len(b.Data)
		if want > 0 && want+size > blockSize {
			want = 0
		}
		if want += size; want >= blockSize {
			want = 0
		}
		if err := w.Append(b); err != nil {
			t.Fatal(err)
		}
		if w.Buffered() != want {
			t.Fatalf("Buffered = %d, want %d", w.Buffered(), want)
		}
		if w.Size() != int64(buf.Len()) {
			t.Fatalf("Size = %d, wrote %d", w.Size(), buf.Len())
		}
	}
	if buf.Len() <= headerSize {
		t.Errorf("no block written after 200 batches")
	}
}
