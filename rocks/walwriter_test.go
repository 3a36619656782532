package rocks

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// TestWALWriterSameBytesAsRocksDB writes a real database's batches (one
// WAL file, never flushed) with a WALWriter: the file is byte for byte the
// one RocksDB wrote, ldb dump_wal reads the same, and WALTail gives back the
// same batches.
func TestWALWriterSameBytesAsRocksDB(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	w := newWriter(t, src, 0, "one", "two")
	rng := rand.New(rand.NewPCG(7, 8))
	w.writeRandom(rng, 300)
	for i := range 20 { // batches that span blocks
		w.write(func(wb *grocksdb.WriteBatch) {
			wb.PutCF(w.cfs["one"], []byte{byte(i)}, bytes.Repeat([]byte{byte(i)}, 20_000+rng.IntN(80_000)))
		})
	}
	w.close()
	logs, err := walFiles(src)
	if err != nil || len(logs) != 1 {
		t.Fatalf("want one WAL file in %s, got %v (%v)", src, logs, err)
	}
	want, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	got := drainTail(t, newTail(t, src, 1), nil)
	dst := t.TempDir()
	ww, err := CreateWAL(dst, 9)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range got {
		if err := ww.Add(b.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	mine, err := os.ReadFile(WALPath(dst, 9))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine, want) {
		t.Fatalf("the WALWriter's file (%d bytes) differs from RocksDB's (%d bytes) at byte %d", len(mine), len(want), firstDiff(mine, want))
	}
	var batches [][]byte
	for _, b := range got {
		batches = append(batches, b.Data)
	}
	sameData(t, drainTail(t, newTail(t, dst, 1), nil), batches)
	ldb := requireTool(t, "ldb")
	a := runLdb(t, ldb, "dump_wal", "--walfile="+logs[0], "--print_value")
	b := runLdb(t, ldb, "dump_wal", "--walfile="+WALPath(dst, 9), "--print_value")
	if !bytes.Equal(a, b) || bytes.Count(a, []byte("\n")) < len(got) {
		t.Fatalf("ldb dump_wal differs (or is short: %d lines for %d batches):\n%.400s\nvs\n%.400s", bytes.Count(a, []byte("\n")), len(got), b, a)
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

// TestWALWriterSplitting writes batches of 0 to 3 blocks placed so that
// every record ends 0 to 8 bytes before a block's end (exact tails of 0 to
// 7 bytes are padding), and checks the bytes against the test's own encoder
// and a read back with WALTail.
func TestWALWriterSplitting(t *testing.T) {
	for blocks := range 4 {
		for tail := range 9 {
			sizes := []int{walBlockSize*blocks + walBlockSize - walHeaderSize*(blocks+1) - tail, 12, 100}
			checkSplitting(t, sizes)
		}
	}
}

// checkSplitting writes batches of the given sizes (at least 12: a
// header) with a WALWriter and with testWAL, and compares.
func checkSplitting(t *testing.T, sizes []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(len(sizes)), 1))
	var batches [][]byte
	seq := uint64(1)
	for _, n := range sizes {
		batches = append(batches, testBatch(rng, seq, 1, n))
		seq++
	}
	var buf bytes.Buffer
	ww := NewWALWriter(&buf)
	for _, b := range batches {
		if err := ww.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	if err := ww.Close(); err != nil {
		t.Fatal(err)
	}
	want := encodeWAL(5, false, batches).data
	if !bytes.Equal(buf.Bytes(), want) || ww.Size() != int64(len(want)) {
		t.Fatalf("sizes %v: %d bytes (size %d), want %d, first difference at %d", sizes, buf.Len(), ww.Size(), len(want), firstDiff(buf.Bytes(), want))
	}
	dir := t.TempDir()
	writeFile(t, WALPath(dir, 5), buf.Bytes())
	sameData(t, drainTail(t, newTail(t, dir, 1), nil), batches)
}

// FuzzWALWriter writes batches of fuzzed sizes; the bytes must match the
// test's own encoder and read back with WALTail.
func FuzzWALWriter(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0})
	f.Add(binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, walBlockSize-walHeaderSize-12), 3))
	f.Add(binary.LittleEndian.AppendUint16(binary.LittleEndian.AppendUint16(nil, 65535), 65535))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var sizes []int
		for i := 0; i+1 < len(raw) && len(sizes) < 20; i += 2 {
			sizes = append(sizes, 12+int(binary.LittleEndian.Uint16(raw[i:]))*2)
		}
		if len(sizes) == 0 {
			return
		}
		checkSplitting(t, sizes)
	})
}
