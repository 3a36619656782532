package rocks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/klauspost/compress/zstd"
)

// testWAL lays out a WAL file as RocksDB's log writer does, for tests: the
// test's own encoder of the format that WALTail reads.
type testWAL struct {
	data       []byte
	num        uint64
	recyclable bool
	offsets    []int // where each logical record starts
	ends       []int // where each logical record ends
}

func (w *testWAL) headerSize() int {
	if w.recyclable {
		return walRecyclableHeaderSize
	}
	return walHeaderSize
}

// add appends a logical record, in fragments where it does not fit in what
// is left of the block; a block tail too short for a header is padded with
// zeroes.
func (w *testWAL) add(payload []byte) *testWAL {
	kinds := [4]byte{walFullType, walFirstType, walMiddleType, walLastType}
	if w.recyclable {
		kinds = [4]byte{walRecyclableFullType, walRecyclableFirstType, walRecyclableMiddleType, walRecyclableLastType}
	}
	for first := true; ; first = false {
		left := walBlockSize - len(w.data)%walBlockSize
		if left < w.headerSize() {
			w.data = append(w.data, make([]byte, left)...)
			left = walBlockSize
		}
		if first {
			w.offsets = append(w.offsets, len(w.data))
		}
		n := min(len(payload), left-w.headerSize())
		last := n == len(payload)
		kind := kinds[0]
		switch {
		case first && !last:
			kind = kinds[1]
		case !first && !last:
			kind = kinds[2]
		case !first && last:
			kind = kinds[3]
		}
		w.physical(kind, payload[:n], w.headerSize())
		payload = payload[n:]
		if last {
			w.ends = append(w.ends, len(w.data))
			return w
		}
	}
}

// physical appends one physical record with a header of hdr bytes.
func (w *testWAL) physical(kind byte, payload []byte, hdr int) {
	h := make([]byte, hdr)
	binary.LittleEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = kind
	if hdr == walRecyclableHeaderSize {
		binary.LittleEndian.PutUint32(h[7:], uint32(w.num))
	}
	crc := crc32.Update(crc32.Checksum(h[6:], castagnoli), castagnoli, payload)
	binary.LittleEndian.PutUint32(h, maskCRC(crc))
	w.data = append(append(w.data, h...), payload...)
}

// maskCRC is RocksDB's crc32c::Mask.
func maskCRC(crc uint32) uint32 { return (crc>>15 | crc<<17) + walCRCMaskDelta }

// testBatch returns a write batch of size bytes (more when size cannot
// hold count records) with the given sequence and count: count Puts whose
// last value is filler, and a Noop to make up the size when a varint
// length cannot.
func testBatch(rng *rand.Rand, seq uint64, count uint32, size int) []byte {
	body := max(size-headerSize, 4*int(count))
	b := make([]byte, headerSize, headerSize+body)
	binary.LittleEndian.PutUint64(b, seq)
	binary.LittleEndian.PutUint32(b[8:], count)
	for range int(count) - 1 {
		b = append(b, tagValue, 1, 'k', 0)
	}
	if count == 0 {
		for len(b) < headerSize+body {
			b = append(b, tagNoop)
		}
		return b
	}
	rem := headerSize + body - len(b) // for the last Put: tag, 1, 'k', varint, value
	vlen := rem - 4
	for binary.PutUvarint(make([]byte, 10), uint64(vlen))+vlen+3 > rem {
		vlen--
	}
	b = append(b, tagValue, 1, 'k')
	b = binary.AppendUvarint(b, uint64(vlen))
	for range vlen {
		b = append(b, byte(rng.Uint32()))
	}
	for len(b) < headerSize+body {
		b = append(b, tagNoop)
	}
	return b
}

// nextSeq is the sequence after the last of batches.
func nextSeq(batches [][]byte) uint64 {
	seq, count, _ := batchHeader(batches[len(batches)-1])
	return seq + uint64(count)
}

// testBatches returns n batches from seq on, of varied sizes: small ones,
// some that span blocks, one of sizes that leave a block's tail too short
// for a header.
func testBatches(rng *rand.Rand, seq uint64, n int) [][]byte {
	var out [][]byte
	for i := range n {
		size := 12 + rng.IntN(300)
		switch {
		case i%7 == 3:
			size = 40_000 + rng.IntN(90_000) // spans blocks
		case i%11 == 5:
			size = walBlockSize - walHeaderSize - 3 - rng.IntN(4) // leaves padding
		}
		count := uint32(1 + rng.IntN(4))
		out = append(out, testBatch(rng, seq, count, size))
		seq += uint64(count)
	}
	return out
}

func encodeWAL(num uint64, recyclable bool, batches [][]byte) *testWAL {
	w := &testWAL{num: num, recyclable: recyclable}
	for _, b := range batches {
		w.add(b)
	}
	return w
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// appendFile appends to a file in place (same inode: the tail keeps it
// open).
func appendFile(t testing.TB, path string, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func newTail(t testing.TB, dir string, seq uint64) *WALTail {
	t.Helper()
	tail, err := NewWALTail(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tail.Close() })
	tail.now = jumpingClock(walFinishedEvery) // every wait lists, as the tests expect
	if err := tail.Seek(seq); err != nil {
		t.Fatal(err)
	}
	return tail
}

// tailBatch is a batch and where the tail read it.
type tailBatch struct {
	Batch
	path string
	off  int64
}

// drainTail reads until Next says ok=false, failing the test on an error.
func drainTail(t testing.TB, tail *WALTail, got []tailBatch) []tailBatch {
	t.Helper()
	got, err := drainTailErr(tail, got)
	if err != nil {
		t.Fatalf("next after %d batches: %v", len(got), err)
	}
	return got
}

func drainTailErr(tail *WALTail, got []tailBatch) ([]tailBatch, error) {
	for {
		b, ok, err := tail.Next()
		if err != nil || !ok {
			return got, err
		}
		if n := len(got); n > 0 && b.Seq != got[n-1].Next() {
			return got, fmt.Errorf("batch %d starts at seq %d, want %d", n, b.Seq, got[n-1].Next())
		}
		got = append(got, tailBatch{b, tail.lastPath, tail.lastOff})
	}
}

// sameData checks the batches read against the representations expected.
func sameData(t testing.TB, got []tailBatch, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("read %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i].Data, want[i]) {
			t.Fatalf("batch %d (seq %d, %d bytes) differs from the one written (%d bytes)", i, got[i].Seq, len(got[i].Data), len(want[i]))
		}
		if seq, count, _ := batchHeader(want[i]); got[i].Seq != seq || got[i].Count != count {
			t.Fatalf("batch %d: seq %d count %d, want %d %d", i, got[i].Seq, got[i].Count, seq, count)
		}
	}
}

// TestWALTailHandMade reads files of the test's own encoder, legacy and
// recyclable: fragments, padding, a finished file then the next.
func TestWALTailHandMade(t *testing.T) {
	for _, recyclable := range []bool{false, true} {
		t.Run(fmt.Sprintf("recyclable=%v", recyclable), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, 1))
			dir := t.TempDir()
			first := testBatches(rng, 1, 40)
			second := testBatches(rng, nextSeq(first), 30)
			writeFile(t, filepath.Join(dir, "000010.log"), encodeWAL(10, recyclable, first).data)
			tail := newTail(t, dir, 1)
			got := drainTail(t, tail, nil)
			sameData(t, got, first) // the live file, read to its end
			if _, ok, err := tail.Next(); ok || err != nil {
				t.Fatalf("at the end of the live file: %v %v", ok, err)
			}
			writeFile(t, filepath.Join(dir, "000012.log"), encodeWAL(12, recyclable, second).data)
			got = drainTail(t, tail, got)
			sameData(t, got, append(first, second...))
			if tail.opened != 2 {
				t.Fatalf("%d files opened, want 2", tail.opened)
			}
		})
	}
}

// inBuffer says whether b lies in buf's array (to its capacity).
func inBuffer(b, buf []byte) bool {
	if len(b) == 0 || cap(buf) == 0 {
		return false
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p < lo+uintptr(cap(buf))
}

// TestWALTailNextShared reads with NextShared, as the archiver does,
// copying each batch before the next call: the batches are those written,
// most of them straight from the read buffer (no copy), and Next still
// gives batches of their own (drainTail keeps them all, then compares).
func TestWALTailNextShared(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	dir := t.TempDir()
	batches := testBatches(rng, 1, 60)
	writeFile(t, filepath.Join(dir, "000010.log"), encodeWAL(10, false, batches).data)
	tail := newTail(t, dir, 1)
	var got []tailBatch
	shared := 0
	for {
		b, ok, err := tail.NextShared()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		if inBuffer(b.Data, tail.buf) {
			shared++
		}
		b.Data = bytes.Clone(b.Data) // before the next call, as the contract says
		got = append(got, tailBatch{Batch: b})
	}
	sameData(t, got, batches)
	if shared == 0 {
		t.Fatal("every batch was copied: NextShared saves nothing")
	}
	// Next on the same file: each batch keeps its own bytes.
	again := drainTail(t, newTail(t, dir, 1), nil)
	sameData(t, again, batches)
}

// TestWALTailPartialRecord grows a WAL file piece by piece, cut anywhere
// (in a header, in a payload, between fragments, in padding): an
// incomplete record is ok=false, and comes out whole once it is complete.
func TestWALTailPartialRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	batches := testBatches(rng, 1, 60)
	w := encodeWAL(7, false, batches)
	cuts := []int{1, walHeaderSize - 1, walHeaderSize, walHeaderSize + 5}
	for _, off := range w.offsets[1:] { // at, right after and inside a header
		cuts = append(cuts, off, off+3, off+walHeaderSize, off+walHeaderSize+1)
	}
	for b := walBlockSize; b < len(w.data); b += walBlockSize { // around block boundaries
		cuts = append(cuts, b-3, b, b+2, b+walHeaderSize+100)
	}
	for i := range 50 {
		cuts = append(cuts, rng.IntN(len(w.data)), i*997)
	}
	for _, cut := range cuts {
		if cut <= 0 || cut >= len(w.data) {
			continue
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "000007.log")
		writeFile(t, path, w.data[:cut])
		tail := newTail(t, dir, 1)
		got := drainTail(t, tail, nil)
		complete := 0
		for _, end := range w.ends {
			if end <= cut {
				complete++
			}
		}
		if len(got) != complete {
			t.Fatalf("cut at %d: read %d batches, want the %d complete ones", cut, len(got), complete)
		}
		appendFile(t, path, w.data[cut:])
		got = drainTail(t, tail, got)
		sameData(t, got, batches)
	}

	// Grown in random pieces, with reads in between.
	dir := t.TempDir()
	path := filepath.Join(dir, "000007.log")
	writeFile(t, path, nil)
	tail := newTail(t, dir, 1)
	var got []tailBatch
	waits := 0
	for done := 0; done < len(w.data); {
		n := min(len(w.data)-done, 1+rng.IntN(9000))
		appendFile(t, path, w.data[done:done+n])
		done += n
		before := len(got)
		if got = drainTail(t, tail, got); len(got) == before {
			waits++
		}
	}
	sameData(t, got, batches)
	t.Logf("%d cuts; grown in pieces: %d reads found no complete batch", len(cuts), waits)
}

// TestWALTailCorrupt: a damaged record in the middle of a finished file is
// ErrCorrupt with the file and the offset; while the file is live it is
// only waited on.
func TestWALTailCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	batches := testBatches(rng, 1, 20)
	for _, victim := range []int{3, 6} { // a fragmented record, a small one
		w := encodeWAL(20, false, batches)
		bad := w.offsets[victim] + walHeaderSize + 5
		w.data[bad] ^= 0x40
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "000020.log"), w.data)
		tail := newTail(t, dir, 1)
		got := drainTail(t, tail, nil)
		if len(got) != victim {
			t.Fatalf("live file damaged in batch %d: read %d batches before waiting", victim, len(got))
		}
		writeFile(t, filepath.Join(dir, "000021.log"), encodeWAL(21, false, [][]byte{testBatch(rng, nextSeq(batches), 1, 50)}).data)
		_, err := drainTailErr(tail, got)
		wantAt := fmt.Sprintf("000020.log at offset %d:", w.offsets[victim])
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), wantAt) {
			t.Fatalf("finished file damaged in batch %d: %v, want ErrCorrupt %q", victim, err, wantAt)
		}
		t.Log(err)
		if _, _, again := tail.Next(); !errors.Is(again, ErrCorrupt) {
			t.Fatalf("error not final: %v", again)
		}
	}
}

// TestWALTailTornTail: a finished file whose tail is torn (a record cut
// short, damaged at the very end, or zeroes) ends there; the next file
// continues. What a torn tail loses the next file has to start with, as
// after RocksDB's recovery, else it is a gap.
func TestWALTailTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	batches := testBatches(rng, 1, 12)
	keep := batches[:8]
	next := batches[8:]
	whole := encodeWAL(30, false, batches)
	cut := whole.offsets[8]
	tails := map[string][]byte{
		"cut in a header":   whole.data[:cut+4],
		"cut in a payload":  whole.data[:cut+walHeaderSize+9],
		"cut in a fragment": whole.data[:whole.offsets[10]+walBlockSize/2],
		"zeroes":            append(bytes.Clone(whole.data[:cut]), make([]byte, 3*walBlockSize)...),
	}
	damaged := bytes.Clone(whole.data[:whole.offsets[9]])
	damaged[len(damaged)-5] ^= 1 // the last record of the file
	tails["damaged last record"] = damaged
	for name, data := range tails {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "000030.log"), data)
			rest := next
			if name == "cut in a fragment" {
				rest = batches[10:]
			}
			writeFile(t, filepath.Join(dir, "000031.log"), encodeWAL(31, false, rest).data)
			got := drainTail(t, newTail(t, dir, 1), nil)
			switch name {
			case "cut in a fragment":
				sameData(t, got, batches)
			default:
				sameData(t, got, append(append([][]byte(nil), keep...), next...))
			}
		})
	}
	// A tail that loses batches that the next file does not have is a gap.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "000030.log"), whole.data[:cut+20])
	writeFile(t, filepath.Join(dir, "000031.log"), encodeWAL(31, false, batches[9:]).data)
	got, err := drainTailErr(newTail(t, dir, 1), nil)
	var gap *GapError
	want, _, _ := batchHeader(batches[8])
	if !errors.As(err, &gap) || gap.Expected != want || len(got) != 8 {
		t.Fatalf("torn tail, next file without its batch: %d batches, %v; want a gap at %d", len(got), err, want)
	}
	t.Log(err)
}

// TestWALTailRecycled: a recycled log file holds records of its previous
// life after what was written into it: they end it (live: wait; finished:
// its end).
func TestWALTailRecycled(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	old := encodeWAL(3, true, testBatches(rng, 1000, 30)) // the file's previous life
	fresh := encodeWAL(9, true, testBatches(rng, 1, 10))
	data := bytes.Clone(old.data)
	copy(data, fresh.data[:fresh.ends[4]]) // the writer is at its 5th batch
	dir := t.TempDir()
	path := filepath.Join(dir, "000009.log")
	writeFile(t, path, data)
	tail := newTail(t, dir, 1)
	got := drainTail(t, tail, nil)
	if len(got) != 5 {
		t.Fatalf("read %d batches from the recycled file, want the 5 new ones", len(got))
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(fresh.data[fresh.ends[4]:], int64(fresh.ends[4])); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if got = drainTail(t, tail, got); len(got) != 10 {
		t.Fatalf("read %d batches from the recycled file, want the 10 new ones", len(got))
	}
	writeFile(t, filepath.Join(dir, "000011.log"), encodeWAL(11, true, [][]byte{testBatch(rng, got[9].Next(), 1, 30)}).data)
	if got = drainTail(t, tail, got); len(got) != 11 {
		t.Fatalf("read %d batches, want 11", len(got))
	}
}

// TestWALTailUnsupported: WAL compression other than zstd and unknown
// record types are ErrUnsupported, not corruption and not a silent skip; a
// zstd WAL whose record does not decompress is ErrCorrupt.
func TestWALTailUnsupported(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	lz4 := &testWAL{num: 4}
	lz4.physical(walSetCompressionType, []byte{4, 0, 0, 0}, walHeaderSize) // kLZ4Compression
	lz4.add(testBatch(rng, 1, 1, 40))
	unknown := encodeWAL(4, false, [][]byte{testBatch(rng, 1, 1, 40)})
	unknown.physical(10, []byte("a record of a newer RocksDB"), walHeaderSize)
	for name, w := range map[string]*testWAL{"compressed with lz4": lz4, "unknown type": unknown} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "000004.log"), w.data)
		_, err := drainTailErr(newTail(t, dir, 1), nil)
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("%s: %v, want ErrUnsupported", name, err)
		}
		t.Logf("%s: %v", name, err)
	}
	bad := &testWAL{num: 4}
	bad.physical(walSetCompressionType, []byte{7, 0, 0, 0}, walHeaderSize)
	bad.add(testBatch(rng, 1, 1, 40)) // not compressed
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "000004.log"), bad.data)
	writeFile(t, filepath.Join(dir, "000005.log"), nil)
	writeFile(t, filepath.Join(dir, "000006.log"), nil)
	if _, err := drainTailErr(newTail(t, dir, 1), nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "decompress") {
		t.Fatalf("zstd WAL with a record that is not zstd: %v, want ErrCorrupt", err)
	}
}

// TestWALTailSeekHandMade: Seek to the first batch, into the middle of a
// file, to a later file, inside a multi-operation batch (an error, not a
// gap), before the oldest batch (a gap) and beyond the end (waits).
func TestWALTailSeekHandMade(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	batches := testBatches(rng, 100, 60)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "000005.log"), encodeWAL(5, false, batches[:20]).data)
	if err := os.Mkdir(filepath.Join(dir, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "archive", "000008.log"), encodeWAL(8, false, batches[20:45]).data)
	writeFile(t, filepath.Join(dir, "000013.log"), encodeWAL(13, false, batches[45:]).data)
	seqOf := func(i int) uint64 { s, _, _ := batchHeader(batches[i]); return s }
	for _, i := range []int{0, 1, 19, 20, 33, 45, 59} {
		got := drainTail(t, newTail(t, dir, seqOf(i)), nil)
		sameData(t, got, batches[i:])
	}
	end := nextSeq(batches)

	// Inside a batch of several operations.
	inside := -1
	for i, b := range batches {
		if binary.LittleEndian.Uint32(b[8:]) > 1 && i > 0 {
			inside = i
			break
		}
	}
	_, err := drainTailErr(newTail(t, dir, seqOf(inside)+1), nil)
	if err == nil || errors.Is(err, ErrGap) || !strings.Contains(err.Error(), "not at a batch boundary") {
		t.Fatalf("seek inside a batch: %v, want a boundary error that is not a gap", err)
	}

	// Before the oldest batch: gone.
	_, err = drainTailErr(newTail(t, dir, 50), nil)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Expected != 50 || gap.Got != 100 {
		t.Fatalf("seek before the oldest batch: %v, want a gap from 50 to 100", err)
	}

	// Beyond the end: nothing yet, then the batch once written.
	tail := newTail(t, dir, end)
	if got := drainTail(t, tail, nil); len(got) != 0 {
		t.Fatalf("seek to the end: %d batches", len(got))
	}
	more := testBatch(rng, end, 2, 100)
	old := encodeWAL(13, false, batches[45:]).data
	grown := encodeWAL(13, false, append(append([][]byte(nil), batches[45:]...), more)).data
	appendFile(t, filepath.Join(dir, "000013.log"), grown[len(old):])
	got := drainTail(t, tail, nil)
	sameData(t, got, [][]byte{more})

	// Far beyond the end: batches before it are passed over; one that
	// starts after it is a gap.
	tail = newTail(t, dir, end+100)
	if got := drainTail(t, tail, nil); len(got) != 0 {
		t.Fatalf("seek beyond the end: %d batches", len(got))
	}
	writeFile(t, filepath.Join(dir, "000014.log"), encodeWAL(14, false, [][]byte{testBatch(rng, end+2, 1, 30), testBatch(rng, end+150, 1, 30)}).data)
	_, err = drainTailErr(tail, nil)
	if !errors.As(err, &gap) || gap.Expected != end+100 || gap.Got != end+150 {
		t.Fatalf("seek beyond the end, then batches before and after it: %v, want a gap from %d to %d", err, end+100, end+150)
	}
}

// TestWALTailFinishedRule: a file is finished only once the writer writes
// into a newer one (or two newer ones exist): RocksDB may still write the
// last buffered records of a file (manual_wal_flush) right after it created
// the next one.
func TestWALTailFinishedRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	batches := testBatches(rng, 1, 30)
	w := encodeWAL(40, false, batches)
	dir := t.TempDir()
	path := filepath.Join(dir, "000040.log")
	half := w.ends[14]
	writeFile(t, path, w.data[:half-3]) // the 15th batch not complete yet
	tail := newTail(t, dir, 1)
	got := drainTail(t, tail, nil)
	writeFile(t, filepath.Join(dir, "000041.log"), nil) // created, empty
	if got = drainTail(t, tail, got); len(got) != 14 {
		t.Fatalf("read %d batches, want 14", len(got))
	}
	appendFile(t, path, w.data[half-3:])
	got = drainTail(t, tail, got)
	sameData(t, got, batches) // the older file was not given up on
	next := testBatch(rng, nextSeq(batches), 1, 60)
	appendFile(t, filepath.Join(dir, "000041.log"), encodeWAL(41, false, [][]byte{next}).data)
	got = drainTail(t, tail, got)
	sameData(t, got, append(append([][]byte(nil), batches...), next))

	// Two newer files, even empty ones: the writer has moved on.
	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, "000040.log"), w.data[:half-3])
	tail = newTail(t, dir, 1)
	writeFile(t, filepath.Join(dir, "000041.log"), nil)
	writeFile(t, filepath.Join(dir, "000042.log"), encodeWAL(42, false, [][]byte{testBatch(rng, nextSeq(batches[:14]), 1, 40)}).data[:5])
	got = drainTail(t, tail, nil)
	if len(got) != 14 || tail.cur == nil || tail.cur.num != 42 {
		t.Fatalf("read %d batches, now in file %v; want 14 and the newest file", len(got), tail.cur)
	}
}

// jumpingClock is a clock that moves by step at each look.
func jumpingClock(step time.Duration) func() time.Time {
	now := time.Unix(1e9, 0)
	return func() time.Time {
		now = now.Add(step)
		return now
	}
}

// TestWALTailListsAtMostEvery: waiting at the end of the newest WAL file,
// Next lists the folder at most once per walFinishedEvery, not at every
// poll, and still sees the writer move to a new file.
func TestWALTailListsAtMostEvery(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	batches := testBatches(rng, 1, 5)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "000040.log"), encodeWAL(40, false, batches).data)
	tail := newTail(t, dir, 1)
	tail.now = jumpingClock(walFinishedEvery / 10) // a poll every 10 ms
	got := drainTail(t, tail, nil)
	for range 99 {
		got = drainTail(t, tail, got)
	}
	if len(got) != len(batches) {
		t.Fatalf("read %d batches, want %d", len(got), len(batches))
	}
	if tail.listings != 10 {
		t.Fatalf("%d listings in 100 polls 10 ms apart, want 10 (one per %v)", tail.listings, walFinishedEvery)
	}
	next := testBatch(rng, nextSeq(batches), 1, 60)
	writeFile(t, filepath.Join(dir, "000041.log"), encodeWAL(41, false, [][]byte{next}).data)
	polls := 0
	for ; len(got) == len(batches) && polls < 20; polls++ {
		got = drainTail(t, tail, got)
	}
	sameData(t, got, append(append([][]byte(nil), batches...), next))
	if polls > 10 {
		t.Fatalf("the new WAL file was read after %d polls, want at most 10", polls)
	}
}

// encodeZstdWAL is encodeWAL as RocksDB writes it with wal_compression=zstd:
// a SetCompressionType record, then each batch as one zstd frame.
func encodeZstdWAL(t testing.TB, num uint64, batches [][]byte) *testWAL {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	w := &testWAL{num: num}
	w.physical(walSetCompressionType, []byte{walCompressionZSTD, 0, 0, 0}, walHeaderSize)
	for _, b := range batches {
		w.add(enc.EncodeAll(b, nil))
	}
	return w
}

// TestWALTailZstdHandMade reads a zstd WAL of the test's own encoder, then
// the next file: batches as written, the fragmented one too.
func TestWALTailZstdHandMade(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	batches := testBatches(rng, 1, 40)
	batches = append(batches, testBatch(rng, nextSeq(batches), 3, 100_000)) // random bytes: a frame over a block
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "000007.log"), encodeZstdWAL(t, 7, batches).data)
	tail := newTail(t, dir, 1)
	got := drainTail(t, tail, nil)
	sameData(t, got, batches)
	next := testBatch(rng, nextSeq(batches), 1, 60)
	writeFile(t, filepath.Join(dir, "000008.log"), encodeZstdWAL(t, 8, [][]byte{next}).data)
	sameData(t, drainTail(t, tail, got), append(batches, next))
	sameData(t, drainTail(t, newTail(t, dir, nextSeq(batches)), nil), [][]byte{next}) // Seek reads a compressed first batch
}

// FuzzWALTail reads arbitrary bytes as a WAL file, first live, then
// finished by a newer file: no panic, only the package's errors, batches
// that are contiguous and made of the file's bytes (memory bounded by the
// input).
func FuzzWALTail(f *testing.F) {
	rng := rand.New(rand.NewPCG(9, 9))
	small := func(seq uint64, sizes ...int) [][]byte { // small seeds: minimizing is quick
		var out [][]byte
		for _, size := range sizes {
			out = append(out, testBatch(rng, seq, 2, size))
			seq += 2
		}
		return out
	}
	legacy := encodeWAL(5, false, small(1, 20, 300, walBlockSize-walHeaderSize-300-2*walHeaderSize-3, 40, 5000)).data
	f.Add(legacy, uint64(1))
	f.Add(legacy[:len(legacy)-2000], uint64(1))
	f.Add(encodeWAL(5, true, small(1, 30, 40_000, 50)).data, uint64(3))
	damaged := bytes.Clone(legacy)
	damaged[100] ^= 1
	f.Add(damaged, uint64(1))
	f.Add(append(bytes.Clone(legacy[:330]), make([]byte, walBlockSize)...), uint64(5))
	f.Add(encodeZstdWAL(f, 5, small(1, 20, 300, 40_000, 50)).data, uint64(1))
	root, n := f.TempDir(), 0
	f.Fuzz(func(t *testing.T, data []byte, seek uint64) {
		n++
		dir := filepath.Join(root, strconv.Itoa(n))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		writeFile(t, filepath.Join(dir, "000005.log"), data)
		tail := newTail(t, dir, seek)
		var got []tailBatch
		check := func(err error) {
			t.Helper()
			if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrGap) &&
				!strings.Contains(err.Error(), "not at a batch boundary") {
				t.Fatalf("unexpected error: %v", err)
			}
			total := 0
			var txns Txns
			for i, b := range got {
				seq, _, herr := batchHeader(b.Data)
				span, serr := txns.Span(b.Data)
				if herr != nil || serr != nil || seq != b.Seq || span != b.Count {
					t.Fatalf("batch %d: seq %d count %d, its data says %d %d (%v, %v)", i, b.Seq, b.Count, seq, span, herr, serr)
				}
				if i == 0 && b.Seq != max(seek, 1) || i > 0 && b.Seq != got[i-1].Next() {
					t.Fatalf("batch %d at seq %d breaks the sequence", i, b.Seq)
				}
				total += len(b.Data)
			}
			compressed := len(data) > walHeaderSize && data[6] == walSetCompressionType // zstd may expand
			if total > len(data)+walBlockSize && !compressed {
				t.Fatalf("%d bytes of batches from a file of %d", total, len(data))
			}
		}
		got, err := drainTailErr(tail, got)
		check(err)
		if err != nil {
			return
		}
		next := testBatch(rng, 1, 1, 20)
		if len(got) > 0 {
			next = testBatch(rng, got[len(got)-1].Next(), 1, 20)
		}
		writeFile(t, filepath.Join(dir, "000006.log"), encodeWAL(6, false, [][]byte{next}).data)
		got, err = drainTailErr(tail, got)
		check(err)
	})
}

// TestWALHeadInReadersFile: the head in the file that the reader is in is
// found by reading from where the reader is, not the file again from its
// start, and the scan is not begun again while the reader waits at the
// file's end (following a writer, the reader waits and reads by turns).
func TestWALHeadInReadersFile(t *testing.T) {
	for _, enc := range []string{"legacy", "recyclable", "zstd"} {
		t.Run(enc, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(5, 5))
			var batches [][]byte
			for seq := uint64(1); len(batches) < 400; seq += 2 {
				batches = append(batches, testBatch(rng, seq, 2, 8000)) // 3.2 MB: many read chunks
			}
			var w *testWAL
			switch enc {
			case "zstd":
				w = encodeZstdWAL(t, 10, batches) // the scan goes on with the reader's zstd flag
			default:
				w = encodeWAL(10, enc == "recyclable", batches)
			}
			testWALHeadInReadersFile(t, batches, w)
		})
	}
}

func testWALHeadInReadersFile(t *testing.T, batches [][]byte, w *testWAL) {
	dir := t.TempDir()
	path := filepath.Join(dir, "000010.log")
	writeFile(t, path, w.data[:w.ends[389]])
	lastSeq := func(i int) uint64 { return nextSeq(batches[:i+1]) - 1 }
	tail := newTail(t, dir, 1)
	for range 380 {
		if _, ok, err := tail.NextShared(); !ok || err != nil {
			t.Fatalf("read: %v %v", ok, err)
		}
	}
	h, _, err := tail.Head()
	if err != nil || h.Sequence != lastSeq(389) {
		t.Fatalf("head %d, %v; want %d", h.Sequence, err, lastSeq(389))
	}
	left := int64(w.ends[389]) - tail.cur.off
	if got := tail.head.w.readBytes; got > left+walReadChunk {
		t.Fatalf("the head scan read %d bytes for the %d bytes ahead of the reader", got, left)
	}
	// Follow: the reader reaches the end and waits, the writer appends,
	// the reader reads, by turns; each look goes on from where the last
	// one stopped.
	drainTail(t, tail, nil)
	for i := 390; i < 400; i++ {
		if _, _, err := tail.Head(); err != nil { // waiting at the end
			t.Fatal(err)
		}
		appendFile(t, path, w.data[w.ends[i-1]:w.ends[i]])
		if i%2 == 0 {
			if _, ok, err := tail.NextShared(); !ok || err != nil {
				t.Fatalf("read: %v %v", ok, err)
			}
		}
		var before int64
		if tail.head != nil {
			before = tail.head.w.readBytes
		}
		h, _, err := tail.Head()
		if err != nil || h.Sequence < lastSeq(i-1) {
			t.Fatalf("head %d, %v; want at least %d", h.Sequence, err, lastSeq(i-1))
		}
		if tail.head != nil {
			if got := tail.head.w.readBytes - before; got > 2*walReadChunk {
				t.Fatalf("a look at the head read %d bytes of a file of %d", got, w.ends[i])
			}
		}
	}
}
