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

// records returns the number of batch records that a Writer with opts
// writes for batches: one per batch, but one per fragment for a batch whose
// record does not fit in a block. It follows the format's rule, not the
// Writer's code: fragments of BlockSize (at most MaxBlockSize, at least
// 48) bytes, the last one holding 12 bytes or more.
func records(h Header, opts WriterOptions, batches []Batch) int {
	opts, _ = opts.withDefaults()
	over := overhead(h.Version)
	if h.Version == 0 {
		over = recordOverhead2
	}
	room := min(max(opts.BlockSize, 48), opts.MaxBlockSize) - recordOverhead2
	n := 0
	for _, b := range batches {
		if over+len(b.Data) <= opts.MaxBlockSize {
			n++
			continue
		}
		for rest := len(b.Data); ; n++ {
			if rest <= room {
				n++
				break
			}
			rest -= min(room, rest-batchHeaderSize)
		}
	}
	return n
}

// cutMax is the MaxBlockSize of the segments with cut batches of these
// tests; cutSizes are the data sizes of their large batches, around it.
const cutMax = 4096

var cutSizes = []int{cutMax / 2, cutMax - recordOverhead2, cutMax - recordOverhead2 + 1, cutMax, cutMax + 1, cutMax*5/2 + 7, 7 * cutMax}

// cutBatches makes small batches with a batch of each of sizes among them.
func cutBatches(seed, firstSeq uint64, sizes []int) []Batch {
	g := newWorkload(seed, firstSeq)
	var out []Batch
	for i, size := range sizes {
		for range 1 + i%3 {
			out = append(out, g.batch(4))
		}
		b := newBatchBuilder(g.seq)
		for len(b.buf)+4 < size {
			b.put(fmt.Appendf(nil, "k%05d", g.rng.intn(100000)), g.value(i, i))
		}
		big := b.batch(time.Unix(0, g.now+int64(i)))
		big.Data = big.Data[:size] // the last record cut short: the segment does not parse records
		g.seq += uint64(big.Count)
		out = append(out, big)
	}
	return append(out, g.batch(3))
}

func TestCutRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		for _, conc := range []int{0, 3} {
			for _, blockSize := range []int{1000, cutMax} {
				t.Run(fmt.Sprintf("%v/conc%d/block%d", codec, conc, blockSize), func(t *testing.T) {
					h := Header{Codec: codec, Timeline: 3, FirstSeq: 700}
					opts := WriterOptions{BlockSize: blockSize, MaxBlockSize: cutMax, Concurrency: conc}
					batches := cutBatches(11, h.FirstSeq, cutSizes)
					checkRoundTrip(t, h, opts, batches)
					seg := writeSegment(t, h, opts, batches)
					checkBlocksWithin(t, seg, cutMax)
					if n := records(h, opts, batches); n <= len(batches)+6 {
						t.Fatalf("%d records for %d batches: the large ones were not cut", n, len(batches))
					}
				})
			}
		}
	}
}

// checkBlocksWithin checks that every block of seg holds at most max raw
// bytes.
func checkBlocksWithin(t *testing.T, seg []byte, max int) {
	t.Helper()
	blocks, _ := blockOffsets(t, seg)
	for i, off := range blocks {
		if raw := le.Uint32(seg[off+12:]); raw > uint32(max) {
			t.Errorf("block %d holds %d raw bytes, above %d", i, raw, max)
		}
	}
}

// TestCutFitsUntouched: a batch whose record fits in MaxBlockSize is one
// record, as before the fragments, and a segment without cut batches is the
// same bytes as before.
func TestCutFitsUntouched(t *testing.T) {
	h := Header{FirstSeq: 700}
	opts := WriterOptions{BlockSize: 1000, MaxBlockSize: cutMax}
	batches := cutBatches(11, h.FirstSeq, []int{cutMax / 2, cutMax - recordOverhead2})
	seg := writeSegment(t, h, opts, batches)
	if _, _, tr, err := readAll(seg, ReaderOptions{MaxBlockSize: cutMax}); err != nil || tr.BatchCount != uint64(len(batches)) {
		t.Fatalf("read: %v; %d records for %d batches", err, tr.BatchCount, len(batches))
	}
	blocks, _ := blockOffsets(t, seg)
	for _, off := range blocks {
		checkFlags(t, seg, off, 0)
	}
}

// checkFlags checks that every record of the uncompressed v2 block at off
// has flags want.
func checkFlags(t *testing.T, seg []byte, off int, want uint32) {
	t.Helper()
	body := seg[off+blockHeaderSize : off+blockHeaderSize+int(le.Uint32(seg[off+16:]))]
	for len(body) > 0 {
		n := int(le.Uint32(body))
		if f := le.Uint32(body[16:]); f != want {
			t.Errorf("record flags %#x, want %#x", f, want)
		}
		body = body[recordOverhead2+n:]
	}
}

func TestCutSkipTo(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		t.Run(codec.String(), func(t *testing.T) {
			h := Header{Codec: codec, Timeline: 3, FirstSeq: 700}
			batches := cutBatches(12, h.FirstSeq, cutSizes)
			seg := writeSegment(t, h, WriterOptions{BlockSize: 1000, MaxBlockSize: cutMax}, batches)
			for _, target := range skipTargets(h, batches) {
				if err := checkSkip(seg, target, batches); err != nil {
					t.Errorf("SkipTo(%d): %v", target, err)
				}
			}
		})
	}
}

// cutSegment writes small batches around one batch of 7 blocks, without
// compression, and returns it with the offsets of its blocks.
func cutSegment(t testing.TB) (seg []byte, batches []Batch, blocks []int) {
	t.Helper()
	h := Header{Timeline: 1, FirstSeq: 50}
	batches = cutBatches(13, h.FirstSeq, []int{7 * cutMax})
	seg = writeSegment(t, h, WriterOptions{BlockSize: cutMax, MaxBlockSize: cutMax}, batches)
	blocks, _ = blockOffsets(t, seg)
	return seg, batches, blocks
}

func TestCutTruncated(t *testing.T) {
	seg, _, blocks := cutSegment(t)
	from, to := blocks[1], blocks[len(blocks)-2]
	for cut := from; cut < to; cut += 97 {
		_, _, _, err := readAll(seg[:cut], ReaderOptions{MaxBlockSize: cutMax})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset > int64(cut) || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("segment cut at %d, inside the fragments: %v, want ErrCorrupt (truncated) at or before it", cut, err)
		}
	}
}

// TestCutFlippedByte flips a byte inside the data of a fragment: the record
// checksum finds it, named by the record's offset. The block checksum is
// fixed so that the record's is the one that tells.
func TestCutFlippedByte(t *testing.T) {
	seg, _, blocks := cutSegment(t)
	for i := 1; i < len(blocks)-1; i++ {
		bad := bytes.Clone(seg)
		rec := blocks[i] + blockHeaderSize
		bad[rec+recordOverhead2+100] ^= 0x04
		refreshBlock(bad, blocks[i])
		_, _, _, err := readAll(bad, ReaderOptions{MaxBlockSize: cutMax})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != int64(rec) || !strings.Contains(err.Error(), "checksum") {
			t.Errorf("flipped byte in the fragment at %d (block %d): %v, want a record checksum error at %d", rec, i, err, rec)
		}
	}
}

// setFlags rewrites the flags of the first record of the uncompressed block
// at off, fixing every checksum.
func setFlags(seg []byte, off int, flags uint32) {
	le.PutUint32(seg[off+blockHeaderSize+16:], flags)
	fixRecord(seg, off+blockHeaderSize)
	refreshBlock(seg, off)
}

func TestCutBrokenChains(t *testing.T) {
	seg, _, blocks := cutSegment(t)
	first, last := blocks[1], blocks[len(blocks)-1]
	tests := []struct {
		name  string
		off   int
		flags uint32
		want  string
	}{
		{"middle fragment ends the batch", blocks[3], flagContinuation, "goes on with no cut batch"},
		{"middle fragment starts a batch", blocks[3], flagContinued, "a batch record where the batch at sequence"},
		{"first fragment continues nothing", first, flagContinued | flagContinuation, "goes on with no cut batch"},
		{"last fragment goes on to the trailer", last, flagContinued | flagContinuation, "ends inside the batch at sequence"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := bytes.Clone(seg)
			if tt.off == last {
				// the last fragment shares its block with the batch after it:
				// make it the block's only record
				bad = lastFragmentAlone(t, bad, last)
			}
			setFlags(bad, tt.off, tt.flags)
			_, _, _, err := readAll(bad, ReaderOptions{MaxBlockSize: cutMax})
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrCorrupt with %q", err, tt.want)
			}
		})
	}
}

// lastFragmentAlone drops the records that follow the first in the last
// block, and the trailer's count of them, so that the segment ends with the
// first record of the block at off.
func lastFragmentAlone(t *testing.T, seg []byte, off int) []byte {
	t.Helper()
	body := off + blockHeaderSize
	n := int(le.Uint32(seg[body:]))
	end := body + recordOverhead2 + n
	dropped := int(le.Uint32(seg[off+8:])) - 1
	_, trailerOff := blockOffsets(t, seg)
	out := append(bytes.Clone(seg[:end]), seg[trailerOff:]...)
	le.PutUint32(out[off+8:], 1)
	le.PutUint32(out[off+12:], uint32(recordOverhead2+n))
	le.PutUint32(out[off+16:], uint32(recordOverhead2+n))
	tr := out[end:]
	le.PutUint64(tr[8:], le.Uint64(tr[8:])-uint64(dropped))
	le.PutUint64(tr[24:], le.Uint64(tr[24:])-uint64(trailerOff-end))
	le.PutUint64(tr[48:], uint64(len(out)))
	// the batches dropped used sequences: the block and the trailer end
	// where the cut batch does
	le.PutUint64(tr[16:], le.Uint64(out[off+24:]))
	le.PutUint64(out[off+32:], le.Uint64(out[off+24:]))
	le.PutUint32(tr[88:], checksum(tr[:88]))
	refreshBlock(out, off)
	return out
}

// endlessCut is a segment that cuts a batch into fragments that never end:
// a header, then block after block, each of one fragment of size bytes.
type endlessCut struct {
	size  int
	block uint32
	pend  []byte
	read  int64
}

func (e *endlessCut) Read(p []byte) (int, error) {
	if e.read > 64<<20 {
		return 0, io.EOF // a reader that does not stop: the test fails, not hangs
	}
	if len(e.pend) == 0 {
		e.pend = e.next()
	}
	n := copy(p, e.pend)
	e.pend = e.pend[n:]
	e.read += int64(n)
	return n, nil
}

func (e *endlessCut) next() []byte {
	const seq = 10
	if e.block == 0 && e.read == 0 {
		return appendHeader(nil, Header{Version: Version, FirstSeq: seq})
	}
	data := make([]byte, e.size)
	flags := flagContinued | flagContinuation
	if e.block == 0 {
		le.PutUint64(data, seq)
		le.PutUint32(data[8:], 1)
		flags = flagContinued
	}
	rec := le.AppendUint32(nil, uint32(len(data)))
	rec = le.AppendUint64(rec, 0)
	rec = le.AppendUint32(rec, 1)
	rec = le.AppendUint32(rec, flags)
	rec = append(rec, data...)
	rec = le.AppendUint32(rec, checksum(rec))
	b := make([]byte, blockHeaderSize, blockHeaderSize+len(rec))
	b = append(b, rec...)
	putBlockHeader(b, blockHeader{index: e.block, batches: 1, rawLen: uint32(len(rec)), storedLen: uint32(len(rec)),
		bodyCRC: checksum(rec), firstSeq: seq + min(uint64(e.block), 1), nextSeq: seq + 1})
	e.block++
	return b
}

// TestCutEndless: fragments that never end are refused once they pass
// MaxBatchSize, naming the fragment's offset, after reading about that many
// bytes, and grow no buffer much beyond it.
func TestCutEndless(t *testing.T) {
	for _, limit := range []int{1 << 20, 3<<20 + 5} {
		src := &endlessCut{size: 64 << 10}
		r, err := NewReader(src, ReaderOptions{MaxBatchSize: limit})
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Next()
		var ce *CorruptError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "MaxBatchSize") {
			t.Fatalf("endless fragments: %v, want ErrCorrupt naming MaxBatchSize", err)
		}
		if ce.Offset < int64(limit) || ce.Offset > src.read || src.read > int64(limit)+2*(64<<10+100) {
			t.Errorf("refused at byte %d after reading %d bytes, limit %d", ce.Offset, src.read, limit)
		}
		if r.fragLen > limit || cap(r.cut) > 0 {
			t.Errorf("the reader kept %d bytes of fragments (and a batch buffer of %d) for a limit of %d", r.fragLen, cap(r.cut), limit)
		}
	}
}

// TestCutLargeBatchLimit: a segment that holds a batch above the reader's
// MaxBatchSize is refused, and one within it reads.
func TestCutLargeBatchLimit(t *testing.T) {
	seg, batches, _ := cutSegment(t)
	var big int
	for _, b := range batches {
		big = max(big, len(b.Data))
	}
	if _, _, _, err := readAll(seg, ReaderOptions{MaxBlockSize: cutMax, MaxBatchSize: big}); err != nil {
		t.Fatalf("MaxBatchSize %d, the largest batch: %v", big, err)
	}
	_, _, _, err := readAll(seg, ReaderOptions{MaxBlockSize: cutMax, MaxBatchSize: big - 1})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "MaxBatchSize") {
		t.Fatalf("MaxBatchSize %d, one below the largest batch: %v", big-1, err)
	}
}

// TestCutSkipPastIsLazy: SkipTo past a cut batch passes its blocks by their
// headers: damaged stored bytes there go unnoticed, as for any block.
func TestCutSkipPastIsLazy(t *testing.T) {
	seg, batches, blocks := cutSegment(t)
	bad := bytes.Clone(seg)
	for _, off := range blocks[1 : len(blocks)-1] {
		bad[off+blockHeaderSize+200] ^= 0xff
	}
	var cutEnd uint64
	for _, b := range batches {
		if len(b.Data) > cutMax {
			cutEnd = b.Seq + uint64(b.Count)
		}
	}
	r, err := NewReader(bytes.NewReader(bad), ReaderOptions{MaxBlockSize: cutMax})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SkipTo(cutEnd); err != nil {
		t.Fatalf("SkipTo(%d) past the cut batch: %v", cutEnd, err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Next after SkipTo: %v", err)
		}
		n++
	}
	if want := len(afterSkip(batches, cutEnd)); n != want {
		t.Errorf("read %d batches after SkipTo, want %d", n, want)
	}
}
