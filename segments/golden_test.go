package segments

import (
	"bytes"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden segments in testdata/segments/v1 and v2")

// updating reports whether the golden files are to be rewritten: by -update
// or by ROCKSTREAM_UPDATE_GOLDEN=1.
func updating() bool {
	return *update || os.Getenv("ROCKSTREAM_UPDATE_GOLDEN") == "1"
}

// goldenDirs hold segments of each format version written by this
// package; a reader of any later version must still read them.
var goldenDirs = map[uint16]string{Version1: "../testdata/segments/v1", Version: "../testdata/segments/v2"}

type goldenCase struct {
	name    string
	h       Header
	opts    WriterOptions
	batches []Batch
}

// goldenCases makes the inputs of the golden segments of a format
// version. It depends on nothing but constants, so every run makes the
// same.
func goldenCases(v uint16) []goldenCase {
	created := time.Unix(0, 1_700_000_000_123_456_789).UTC()
	cases := []goldenCase{
		{"none", Header{Version: v, Codec: CodecNone, Timeline: 1, FirstSeq: 1000, Created: created},
			WriterOptions{}, goldenBatches(1, 1000, 12)},
		{"zstd", Header{Version: v, Codec: CodecZstd, Timeline: 1, FirstSeq: 1000, Created: created},
			WriterOptions{}, goldenBatches(2, 1000, 20)},
		{"end", Header{Version: v, Codec: CodecNone, Flags: FlagEnd, Timeline: 3, FirstSeq: 5000, Created: created},
			WriterOptions{}, nil},
		{"multiblock-none", Header{Version: v, Codec: CodecNone, Timeline: 2, FirstSeq: 1 << 40, Created: created},
			WriterOptions{BlockSize: 1200}, goldenBatches(3, 1<<40, 20)},
		{"multiblock-zstd", Header{Version: v, Codec: CodecZstd, Timeline: 2, FirstSeq: 77, Created: created},
			WriterOptions{BlockSize: 2048}, goldenBatches(4, 77, 30)},
	}
	if v != Version1 {
		cases = append(cases, goldenCase{"txn", Header{Version: v, Codec: CodecNone, Timeline: 1, FirstSeq: 500, Created: created},
			WriterOptions{BlockSize: 300}, txnBatches(500)})
		cut := []int{256, 512 - recordOverhead2, 512 - recordOverhead2 + 1, 1290}
		cases = append(cases,
			goldenCase{"cut-none", Header{Version: v, Codec: CodecNone, Timeline: 5, FirstSeq: 300, Created: created},
				WriterOptions{BlockSize: 256, MaxBlockSize: 512}, cutBatches(14, 300, cut)},
			goldenCase{"cut-zstd", Header{Version: v, Codec: CodecZstd, Timeline: 5, FirstSeq: 300, Created: created},
				WriterOptions{BlockSize: 256, MaxBlockSize: 512}, cutBatches(15, 300, cut)})
	}
	return cases
}

// txnBatches makes batches of two-phase-commit transactions, whose spans
// are not their header counts: a prepare of 2 records (span 0), a plain
// batch, a rollback (span 0), the commit (header count 0, span 2).
func txnBatches(seq uint64) []Batch {
	at := func(ns int64) time.Time { return time.Unix(0, 1_700_000_000_000_000_000+ns) }
	batch := func(seq uint64, count, span uint32, records ...byte) Batch {
		data := binary.LittleEndian.AppendUint64(nil, seq)
		data = binary.LittleEndian.AppendUint32(data, count)
		return Batch{Seq: seq, Count: span, Time: at(int64(seq)), Data: append(data, records...)}
	}
	prepare := []byte{0x09, opPut, 1, 'a', 1, '1', opPut, 1, 'b', 1, '2', 0x0A, 2, 'x', '1'}
	put := []byte{opPut, 1, 'c', 1, '3'}
	return []Batch{
		batch(seq, 2, 0, prepare...),
		batch(seq, 1, 1, put...),
		batch(seq+1, 0, 0, 0x0C, 2, 'x', '0'),
		batch(seq+1, 0, 2, 0x0B, 2, 'x', '1'),
		batch(seq+3, 1, 1, put...),
	}
}

// goldenBatches makes n small batches from firstSeq, with an empty batch
// (the write batch header alone, no operation) as the third.
func goldenBatches(seed, firstSeq uint64, n int) []Batch {
	g := newWorkload(seed, firstSeq)
	var out []Batch
	for i := range n {
		if i == 2 {
			out = append(out, newBatchBuilder(g.seq).batch(time.Unix(0, g.now)))
			continue
		}
		out = append(out, g.batch(3))
	}
	return out
}

func TestGolden(t *testing.T) {
	for _, v := range []uint16{Version1, Version} {
		for _, c := range goldenCases(v) {
			t.Run(fmt.Sprintf("v%d/%s", v, c.name), func(t *testing.T) { testGolden(t, goldenDirs[v], c) })
		}
	}
}

func testGolden(t *testing.T, goldenDir string, c goldenCase) {
	path := filepath.Join(goldenDir, c.name+".seg")
	today := writeSegment(t, c.h, c.opts, c.batches)
	if updating() {
		if err := os.MkdirAll(goldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, today, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write the golden files)", err)
	}
	checkGoldenDecodes(t, c, golden)
	checkGoldenBytes(t, c, golden, today)
}

// checkGoldenDecodes reads a golden segment and compares it with its input.
func checkGoldenDecodes(t *testing.T, c goldenCase, golden []byte) {
	t.Helper()
	h, got, tr, err := readAll(golden, ReaderOptions{})
	if err != nil {
		t.Fatalf("read golden: %v", err)
	}
	want := c.h
	if !equalHeader(h, want) {
		t.Errorf("header = %+v, want %+v", h, want)
	}
	if err := sameBatches(got, c.batches); err != nil {
		t.Error(err)
	}
	next := c.h.FirstSeq
	if n := len(c.batches); n > 0 {
		next = c.batches[n-1].Seq + uint64(c.batches[n-1].Count)
	}
	if recs := records(c.h, c.opts, c.batches); tr.NextSeq != next || tr.BatchCount != uint64(recs) || tr.Size != int64(len(golden)) {
		t.Errorf("trailer = %+v, want NextSeq %d, BatchCount %d, Size %d", tr, next, recs, len(golden))
	}
	if strings.HasPrefix(c.name, "cut") && tr.BatchCount <= uint64(len(c.batches)) {
		t.Errorf("%d records for %d batches: no batch is cut", tr.BatchCount, len(c.batches))
	}
	h2, tr2, err := ReadTrailer(bytes.NewReader(golden), int64(len(golden)))
	if err != nil || !equalHeader(h2, h) || !equalTrailer(tr2, tr) {
		t.Errorf("ReadTrailer = %+v, %+v, %v; want %+v, %+v", h2, tr2, err, h, tr)
	}
}

// checkGoldenBytes pins what the writer writes. Uncompressed segments must
// come out byte for byte as the golden file. zstd segments are pinned by
// their decoded content only: the klauspost/compress encoder is
// deterministic for one version and one set of options, but its releases
// are free to change the compressed bytes, and any valid zstd frame is
// valid in a segment. For them the test checks that the writer is
// deterministic today and that today's bytes decode to the same batches.
func checkGoldenBytes(t *testing.T, c goldenCase, golden, today []byte) {
	t.Helper()
	if c.h.Codec == CodecNone {
		if !bytes.Equal(today, golden) {
			t.Errorf("writer output (%d bytes) differs from the golden file (%d bytes) at byte %d", len(today), len(golden), firstDiff(today, golden))
		}
		return
	}
	again := writeSegment(t, c.h, c.opts, c.batches)
	if !bytes.Equal(again, today) {
		t.Errorf("two writes of the same input differ at byte %d", firstDiff(again, today))
	}
	_, got, _, err := readAll(today, ReaderOptions{})
	if err != nil {
		t.Fatalf("read today's segment: %v", err)
	}
	if err := sameBatches(got, c.batches); err != nil {
		t.Errorf("today's segment: %v", err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func equalHeader(a, b Header) bool {
	return a.Version == b.Version && a.Codec == b.Codec && a.Flags == b.Flags &&
		a.Timeline == b.Timeline && a.FirstSeq == b.FirstSeq && a.Created.Equal(b.Created)
}

func equalTrailer(a, b Trailer) bool {
	return a.BlockCount == b.BlockCount && a.BatchCount == b.BatchCount && a.NextSeq == b.NextSeq &&
		a.RawBytes == b.RawBytes && a.FirstTime.Equal(b.FirstTime) && a.LastTime.Equal(b.LastTime) &&
		a.Size == b.Size
}
