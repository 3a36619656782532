package segments

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestConcurrencySameBytes is the promise of WriterOptions.Concurrency:
// blocks compressed in flight make the very segment that the Writer makes
// without, for every shape of input.
func TestConcurrencySameBytes(t *testing.T) {
	for _, codec := range []Codec{CodecZstd, CodecNone} {
		for _, blockSize := range []int{1, 300, 4096, 64 << 10, DefaultBlockSize} {
			h := Header{Codec: codec, Timeline: 3, FirstSeq: 500, Created: time.Unix(1_700_000_000, 9)}
			batches := roundTripBatches(uint64(blockSize)+7, h.FirstSeq, 400, 2*blockSize+1000)
			if blockSize == DefaultBlockSize { // enough for a few full blocks
				batches = append(batches, moreBatches(batches, 6<<20)...)
			}
			want := writeSegment(t, h, WriterOptions{BlockSize: blockSize}, batches)
			for _, n := range []int{1, 2, 3, 8} {
				t.Run(fmt.Sprintf("%v/block%d/concurrency%d", codec, blockSize, n), func(t *testing.T) {
					got := writeSegment(t, h, WriterOptions{BlockSize: blockSize, Concurrency: n}, batches)
					if !bytes.Equal(got, want) {
						t.Fatalf("segment of %d bytes differs from the sequential writer's (%d bytes) at byte %d", len(got), len(want), firstDiff(got, want))
					}
				})
			}
		}
	}
}

// moreBatches continues the workload of batches with about n bytes more.
func moreBatches(batches []Batch, n int) []Batch {
	last := batches[len(batches)-1]
	g := newWorkload(99, last.Seq+uint64(last.Count))
	var out []Batch
	for size := 0; size < n; {
		b := g.batch(20)
		size += len(b.Data)
		out = append(out, b)
	}
	return out
}

// TestConcurrencyGolden writes the golden cases with blocks in flight: the
// uncompressed ones must come out as the golden files, the zstd ones as
// the sequential writer writes them today.
func TestConcurrencyGolden(t *testing.T) {
	for _, c := range goldenCases(Version) {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			opts.Concurrency = 2
			got := writeSegment(t, c.h, opts, c.batches)
			want := writeSegment(t, c.h, c.opts, c.batches)
			if c.h.Codec == CodecNone {
				golden, err := os.ReadFile(filepath.Join(goldenDirs[Version], c.name+".seg"))
				if err != nil {
					t.Fatal(err)
				}
				want = golden
			}
			if !bytes.Equal(got, want) {
				t.Errorf("segment differs at byte %d", firstDiff(got, want))
			}
		})
	}
}

// TestConcurrencySizeAndBuffered checks Size and Buffered while blocks are
// in flight: Size is what reached the underlying writer, and Buffered the
// records not yet written, the open block's and those in flight.
func TestConcurrencySizeAndBuffered(t *testing.T) {
	g := newWorkload(5, 0)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, Header{Codec: CodecZstd}, WriterOptions{BlockSize: 4096, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	var appended int
	for range 300 {
		b := g.batch(5)
		if err := w.Append(b); err != nil {
			t.Fatal(err)
		}
		appended += recordOverhead2 + len(b.Data)
		if got, want := w.Buffered(), appended-int(w.Trailer().RawBytes); got != want {
			t.Fatalf("Buffered = %d, want %d (appended %d, written %d)", got, want, appended, w.Trailer().RawBytes)
		}
		if w.Size() != int64(buf.Len()) {
			t.Fatalf("Size = %d, wrote %d", w.Size(), buf.Len())
		}
		if w.Buffered() > 3*(4096+recordOverhead2+len(b.Data)) {
			t.Fatalf("Buffered = %d: more than the open block and 2 in flight", w.Buffered())
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Buffered() != 0 || w.Trailer().RawBytes != uint64(appended) {
		t.Errorf("after Close: Buffered %d, RawBytes %d, want 0 and %d", w.Buffered(), w.Trailer().RawBytes, appended)
	}
}

// TestConcurrencyCompressorErrorSticks fails the compression of one block
// in flight: the error comes out of a later call and every call after, and
// nothing of that block or after it reaches the underlying writer.
func TestConcurrencyCompressorErrorSticks(t *testing.T) {
	errCompress := errors.New("compressor failed")
	const bad = 3
	waitJobs(t, 0) // those of other tests
	testHookEncode = func(index uint32) error {
		if index == bad {
			return errCompress
		}
		return nil
	}
	defer func() { testHookEncode = nil }()
	h := Header{Codec: CodecZstd, FirstSeq: 1}
	batches := roundTripBatches(3, 1, 300, 1000)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h, WriterOptions{BlockSize: 2048, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	failed := -1
	for i, b := range batches {
		if err := w.Append(b); err != nil {
			if !errors.Is(err, errCompress) {
				t.Fatalf("Append(batch %d) = %v, want %v", i, err, errCompress)
			}
			failed = i
			break
		}
	}
	if failed < 0 {
		t.Fatalf("no Append failed")
	}
	if err := w.Append(batches[failed+1]); !errors.Is(err, errCompress) {
		t.Errorf("Append after the failure = %v, want %v", err, errCompress)
	}
	if err := w.Close(); !errors.Is(err, errCompress) {
		t.Errorf("Close = %v, want %v", err, errCompress)
	}
	testHookEncode = nil
	whole := writeSegment(t, h, WriterOptions{BlockSize: 2048}, batches)
	blocks, _ := blockOffsets(t, whole)
	if got := buf.Bytes(); len(got) > blocks[bad] || !bytes.Equal(got, whole[:len(got)]) {
		t.Errorf("wrote %d bytes, want a prefix of the segment that ends before block %d (byte %d)", len(got), bad, blocks[bad])
	}
}

// TestConcurrencyWriteErrorSticks fails the underlying writer while blocks
// are in flight.
func TestConcurrencyWriteErrorSticks(t *testing.T) {
	g := newWorkload(1, 0)
	w, err := NewWriter(&failingWriter{n: headerSize + 10}, Header{Codec: CodecZstd}, WriterOptions{BlockSize: 1, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	var first error
	for i := 0; i < 10 && first == nil; i++ {
		first = w.Append(g.batch(3))
	}
	if !errors.Is(first, errDisk) {
		t.Fatalf("Append = %v, want %v", first, errDisk)
	}
	if err := w.Append(g.batch(3)); !errors.Is(err, errDisk) {
		t.Errorf("Append after = %v, want %v", err, errDisk)
	}
	if err := w.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close = %v, want %v", err, errDisk)
	}
}

// TestConcurrencyDroppedWriter leaves a Writer with blocks in flight
// unclosed: its goroutines end with their blocks.
func TestConcurrencyDroppedWriter(t *testing.T) {
	waitJobs(t, 0) // those of other tests
	release := make(chan struct{})
	var hooked sync.WaitGroup
	hooked.Add(4)
	testHookEncode = func(uint32) error { <-release; hooked.Done(); return nil }
	defer func() { testHookEncode = nil }()
	w, err := NewWriter(&bytes.Buffer{}, Header{Codec: CodecZstd}, WriterOptions{BlockSize: 1, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	g := newWorkload(4, 0)
	for range 4 {
		if err := w.Append(g.batch(3)); err != nil {
			t.Fatal(err)
		}
	}
	waitJobs(t, 4)
	w = nil
	close(release)
	hooked.Wait()
	waitJobs(t, 0)
}

// waitJobs waits until n goroutines compress blocks in flight.
func waitJobs(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := jobGoroutines()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines compress blocks after 10s, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func jobGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return bytes.Count(buf, []byte("segments.(*job).run("))
}
