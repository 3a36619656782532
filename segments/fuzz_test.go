package segments

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzOptions keeps each fuzz input's memory small.
var fuzzOptions = ReaderOptions{MaxBlockSize: 1 << 20}

// FuzzReader feeds arbitrary bytes to the Reader. It must never panic; it
// must reject what it cannot read with ErrCorrupt or ErrUnsupported; and
// what it reads must be a consistent segment that writes and reads back the
// same.
func FuzzReader(f *testing.F) {
	var golden []string
	for _, dir := range goldenDirs {
		found, err := filepath.Glob(filepath.Join(dir, "*.seg"))
		if err != nil || len(found) == 0 {
			f.Fatalf("no golden segments in %s: %v", dir, err)
		}
		golden = append(golden, found...)
	}
	for _, path := range golden {
		seg, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seg)
	}
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		seg, _ := smallSegment(f, codec)
		f.Add(seg)
		f.Add(seg[:len(seg)/2])
		flipped := bytes.Clone(seg)
		flipped[len(seg)/3] ^= 0x10
		f.Add(flipped)
	}
	// A cut batch (the golden cut-none.seg): cut short inside its fragments, a byte of a
	// fragment flipped, a middle fragment's flags cleared (the checksums
	// fixed by the fuzz function), and fragments that never end.
	cut, err := os.ReadFile(filepath.Join(goldenDirs[Version], "cut-none.seg"))
	if err != nil {
		f.Fatal(err)
	}
	blocks, _ := blockOffsets(f, cut)
	f.Add(cut[:blocks[3]+100])
	flipped := bytes.Clone(cut)
	flipped[blocks[2]+blockHeaderSize+50] ^= 0x20
	f.Add(flipped)
	cleared := bytes.Clone(cut)
	le.PutUint32(cleared[blocks[3]+blockHeaderSize+16:], 0)
	f.Add(cleared)
	endless := make([]byte, 3000)
	if _, err := io.ReadFull(&endlessCut{size: 100}, endless); err != nil {
		f.Fatal(err)
	}
	f.Add(endless)
	f.Add([]byte{})
	f.Add(append(bytes.Clone(magic[:]), 1, 0))
	f.Fuzz(func(t *testing.T, seg []byte) {
		checkInput(t, seg)
		checkInput(t, fixChecksums(seg))
	})
}

// checkInput reads seg and checks the outcome.
func checkInput(t *testing.T, seg []byte) {
	t.Helper()
	h, batches, tr, err := readAll(seg, fuzzOptions)
	if _, _, terr := ReadTrailer(bytes.NewReader(seg), int64(len(seg))); err == nil && terr != nil {
		t.Fatalf("segment reads, but ReadTrailer fails: %v", terr)
	}
	if err != nil {
		checkFuzzError(t, err, len(seg))
		return
	}
	checkConsistent(t, seg, h, batches, tr)
	checkRewrite(t, h, batches, tr)
	if len(batches) > 0 {
		mid := batches[len(batches)/2].Seq
		if err := checkSkip(seg, mid, batches); err != nil {
			t.Fatalf("SkipTo(%d): %v", mid, err)
		}
	}
}

// fixChecksums returns a copy of seg with every checksum that it can find
// recomputed, so that the fuzzer's changes also reach the checks behind the
// checksums. It fixes the records of uncompressed blocks only.
func fixChecksums(seg []byte) []byte {
	seg = bytes.Clone(seg)
	if len(seg) < headerSize {
		return seg
	}
	le.PutUint32(seg[40:], checksum(seg[:40]))
	codec := Codec(le.Uint16(seg[10:]))
	off := headerSize
	for off+blockHeaderSize <= len(seg) && [4]byte(seg[off:]) == blockTag {
		body := off + blockHeaderSize
		stored := int(le.Uint32(seg[off+16:]))
		if stored > len(seg)-body {
			break
		}
		if codec == CodecNone {
			fixRecords(seg[body:body+stored], le.Uint16(seg[8:]))
		}
		le.PutUint32(seg[off+20:], checksum(seg[body:body+stored]))
		le.PutUint32(seg[off+40:], checksum(seg[off:off+40]))
		off = body + stored
	}
	if off+trailerSize <= len(seg) && [4]byte(seg[off:]) == trailerTag {
		le.PutUint32(seg[off+88:], checksum(seg[off:off+88]))
	}
	return seg
}

// fixRecords recomputes the checksums of the batch records in b, of
// format version v.
func fixRecords(b []byte, v uint16) {
	over := overhead(v)
	for len(b) >= over+batchHeaderSize {
		n := le.Uint32(b)
		if uint64(n) > uint64(len(b)-over) {
			return
		}
		size := over + int(n)
		le.PutUint32(b[size-4:], checksum(b[:size-4]))
		b = b[size:]
	}
}

func checkFuzzError(t *testing.T, err error, size int) {
	t.Helper()
	var ce *CorruptError
	switch {
	case errors.As(err, &ce):
		if ce.Offset < 0 || ce.Offset > int64(size) {
			t.Fatalf("corrupt at offset %d of a %d-byte input: %v", ce.Offset, size, err)
		}
	case errors.Is(err, ErrUnsupported):
	default:
		t.Fatalf("err = %v, want ErrCorrupt or ErrUnsupported", err)
	}
}

// checkConsistent checks what a segment that read without error says.
func checkConsistent(t *testing.T, seg []byte, h Header, batches []Batch, tr Trailer) {
	t.Helper()
	next := h.FirstSeq
	for i, b := range batches {
		if b.Seq != next || len(b.Data) < batchHeaderSize || le.Uint64(b.Data) != b.Seq || h.Version == Version1 && le.Uint32(b.Data[8:]) != b.Count {
			t.Fatalf("batch %d (seq %d count %d, %d bytes) breaks continuity at %d", i, b.Seq, b.Count, len(b.Data), next)
		}
		next = b.Seq + uint64(b.Count)
	}
	if tr.NextSeq != next || tr.BatchCount < uint64(len(batches)) || tr.Size != int64(len(seg)) {
		t.Fatalf("trailer %+v disagrees with %d batches ending at %d in %d bytes", tr, len(batches), next, len(seg))
	}
	if n := len(batches); n > 0 && (!tr.FirstTime.Equal(batches[0].Time) || !tr.LastTime.Equal(batches[n-1].Time)) {
		t.Fatalf("trailer times %v to %v, batches %v to %v", tr.FirstTime, tr.LastTime, batches[0].Time, batches[n-1].Time)
	}
}

// checkRewrite writes the batches read into a new segment and reads it.
func checkRewrite(t *testing.T, h Header, batches []Batch, tr Trailer) {
	t.Helper()
	again := writeSegment(t, h, WriterOptions{BlockSize: 4096, MaxBlockSize: fuzzOptions.MaxBlockSize}, batches)
	h2, batches2, tr2, err := readAll(again, fuzzOptions)
	if err != nil {
		t.Fatalf("read of the rewritten segment: %v", err)
	}
	if !equalHeader(h2, h) {
		t.Fatalf("rewritten header %+v, want %+v", h2, h)
	}
	if err := sameBatches(batches2, batches); err != nil {
		t.Fatalf("rewritten segment: %v", err)
	}
	// A batch cut into fragments counts once per fragment, and the rewrite
	// may cut it otherwise.
	if tr2.NextSeq != tr.NextSeq || tr.BatchCount == uint64(len(batches)) && tr2.BatchCount != tr.BatchCount {
		t.Fatalf("rewritten trailer %+v, want NextSeq and BatchCount of %+v", tr2, tr)
	}
}
