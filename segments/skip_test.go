package segments

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"
)

// skipTargets returns sequences around every batch boundary and past both
// ends of the segment.
func skipTargets(h Header, batches []Batch) []uint64 {
	targets := []uint64{0, h.FirstSeq - 1, h.FirstSeq}
	for _, b := range batches {
		targets = append(targets, b.Seq, b.Seq+1, b.Seq+uint64(b.Count))
	}
	last := batches[len(batches)-1]
	return append(targets, last.Seq+uint64(last.Count)+1, 1<<63)
}

// afterSkip returns the batches that SkipTo(seq) must leave: from the
// first that holds an operation at or after seq.
func afterSkip(batches []Batch, seq uint64) []Batch {
	for i, b := range batches {
		if b.Seq+uint64(b.Count) > seq {
			return batches[i:]
		}
	}
	return nil
}

func TestSkipTo(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		for _, blockSize := range []int{200, 2000} {
			h := Header{Codec: codec, Timeline: 1, FirstSeq: 1000}
			batches := roundTripBatches(3, h.FirstSeq, 60, 500)
			seg := writeSegment(t, h, WriterOptions{BlockSize: blockSize}, batches)
			t.Run(fmt.Sprintf("%v/block%d", codec, blockSize), func(t *testing.T) {
				for _, target := range skipTargets(h, batches) {
					if err := checkSkip(seg, target, batches); err != nil {
						t.Errorf("SkipTo(%d): %v", target, err)
					}
				}
			})
		}
	}
}

// checkSkip reads seg after SkipTo(target) and compares what is left.
func checkSkip(seg []byte, target uint64, batches []Batch) error {
	r, err := NewReader(bytes.NewReader(seg), ReaderOptions{})
	if err != nil {
		return err
	}
	_, full, err := ReadTrailer(bytes.NewReader(seg), int64(len(seg)))
	if err != nil {
		return err
	}
	if err := r.SkipTo(target); err != nil {
		return err
	}
	var got []Batch
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		b.Data = bytes.Clone(b.Data)
		got = append(got, b)
	}
	if tr := r.Trailer(); tr.BatchCount < uint64(len(batches)) || !equalTrailer(tr, full) {
		return fmt.Errorf("trailer after SkipTo %+v, ReadTrailer %+v, for %d batches", tr, full, len(batches))
	}
	return sameBatches(got, afterSkip(batches, target))
}

func TestSkipToTwiceAndBackwards(t *testing.T) {
	h := Header{FirstSeq: 1}
	batches := roundTripBatches(5, 1, 40, 100)
	seg := writeSegment(t, h, WriterOptions{BlockSize: 256}, batches)
	r, err := NewReader(bytes.NewReader(seg), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mid := batches[20].Seq
	for _, target := range []uint64{batches[10].Seq, mid, 0, mid} {
		if err := r.SkipTo(target); err != nil {
			t.Fatalf("SkipTo(%d): %v", target, err)
		}
	}
	b, err := r.Next()
	if err != nil || b.Seq != mid {
		t.Errorf("Next after SkipTo(%d) = seq %d, %v; want seq %d", mid, b.Seq, err, mid)
	}
}

// TestSkipToPassesBlocksUnread damages the stored bytes of the first blocks:
// SkipTo past them must not notice, and a plain read must.
func TestSkipToPassesBlocksUnread(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		h := Header{Codec: codec, FirstSeq: 1}
		batches := roundTripBatches(6, 1, 60, 100)
		seg := writeSegment(t, h, WriterOptions{BlockSize: 512}, batches)
		blocks, _ := blockOffsets(t, seg)
		for _, off := range blocks[:2] {
			seg[off+blockHeaderSize+5] ^= 0xff
		}
		if _, _, _, err := readAll(seg, ReaderOptions{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%v: plain read of damaged blocks: err = %v, want ErrCorrupt", codec, err)
		}
		target := le.Uint64(seg[blocks[2]+24:]) // the first sequence of block 2
		if err := checkSkip(seg, target, batches); err != nil {
			t.Errorf("%v: SkipTo(%d) past damaged blocks: %v", codec, target, err)
		}
	}
}

func TestSkipToOnEmptySegment(t *testing.T) {
	seg := writeSegment(t, Header{Flags: FlagEnd, FirstSeq: 50}, WriterOptions{}, nil)
	r, err := NewReader(bytes.NewReader(seg), ReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SkipTo(60); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Errorf("Next = %v, want io.EOF", err)
	}
	if got := r.Trailer().NextSeq; got != 50 {
		t.Errorf("NextSeq = %d, want 50", got)
	}
}

func TestReadTrailer(t *testing.T) {
	created := time.Unix(1_700_000_000, 42)
	g := newWorkload(8, 300)
	batches := []Batch{g.batch(4), g.batch(4), g.batch(4)}
	for _, tt := range []struct {
		name    string
		h       Header
		batches []Batch
	}{
		{"batches", Header{Codec: CodecZstd, Timeline: 9, FirstSeq: 300, Created: created}, batches},
		{"end", Header{Flags: FlagEnd, Timeline: 9, FirstSeq: 300, Created: created}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, tt.h, WriterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range tt.batches {
				if err := w.Append(b); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			h, tr, err := ReadTrailer(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if !equalHeader(h, w.Header()) || !equalTrailer(tr, w.Trailer()) {
				t.Errorf("ReadTrailer = %+v, %+v; want %+v, %+v", h, tr, w.Header(), w.Trailer())
			}
			checkTrailerFields(t, tt.h, WriterOptions{}, tt.batches, tr, buf.Len())
			if h.Flags&FlagEnd != tt.h.Flags&FlagEnd {
				t.Errorf("FlagEnd = %v, want %v", h.Flags&FlagEnd != 0, tt.h.Flags&FlagEnd != 0)
			}
			if _, _, err := ReadTrailer(bytes.NewReader(buf.Bytes()), int64(buf.Len())-1); !errors.Is(err, ErrCorrupt) {
				t.Errorf("ReadTrailer with the size one short: err = %v, want ErrCorrupt", err)
			}
		})
	}
}
