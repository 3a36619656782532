package rocks

import (
	"errors"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// batches of every record kind that Apply replays, as RocksDB encodes them.
func sampleBatches(t testing.TB) map[string][]byte {
	w := newWriter(t, t.TempDir(), 0, "a")
	cf := w.cfs["a"]
	build := func(fill func(wb *grocksdb.WriteBatch)) []byte {
		wb := grocksdb.NewWriteBatch()
		defer wb.Destroy()
		fill(wb)
		return append([]byte(nil), wb.Data()...)
	}
	return map[string][]byte{
		"put":     build(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("k"), []byte("v")) }),
		"put cf":  build(func(wb *grocksdb.WriteBatch) { wb.PutCF(cf, []byte("k"), make([]byte, 300)) }),
		"deletes": build(func(wb *grocksdb.WriteBatch) { wb.Delete([]byte("k")); wb.DeleteCF(cf, []byte("k")) }),
		"single":  build(func(wb *grocksdb.WriteBatch) { wb.SingleDelete([]byte("k")); wb.SingleDeleteCF(cf, []byte("k")) }),
		"range": build(func(wb *grocksdb.WriteBatch) {
			wb.DeleteRange([]byte("a"), []byte("b"))
			wb.DeleteRangeCF(cf, nil, []byte("z"))
		}),
		"log data":  build(func(wb *grocksdb.WriteBatch) { wb.PutLogData([]byte("blob")); wb.Put(nil, nil) }),
		"only data": build(func(wb *grocksdb.WriteBatch) { wb.PutLogData([]byte("blob")) }),
	}
}

func TestCheckBatch(t *testing.T) {
	known := func(id uint32) bool { return id <= 1 }
	for name, data := range sampleBatches(t) {
		wb := grocksdb.WriteBatchFrom(data)
		want := uint32(wb.Count())
		wb.Destroy()
		_, count, err := checkBatch(data, known)
		if err != nil || count != want {
			t.Errorf("%s: count %d, %v; want %d", name, count, err, want)
		}
		for n := range len(data) { // every truncation is refused, none panics
			if _, _, err := checkBatch(data[:n], known); !errors.Is(err, ErrCorrupt) {
				if n != headerSize || want != 0 { // a bare header with count 0 is a valid empty batch
					t.Errorf("%s cut to %d bytes: %v, want ErrCorrupt", name, n, err)
				}
			}
		}
	}
}

func TestCheckBatchRefuses(t *testing.T) {
	header := func(count byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, 0, count, 0, 0, 0} }
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"wrong count", append(header(2), tagValue, 1, 'k', 1, 'v'), ErrCorrupt},
		{"count too low", append(header(0), tagValue, 1, 'k', 1, 'v'), ErrCorrupt},
		{"slice past the end", append(header(1), tagValue, 1, 'k', 9, 'v'), ErrCorrupt},
		{"bad varint", append(header(1), tagValue, 0xff), ErrCorrupt},
		{"range ends before it begins", append(header(1), tagRangeDeletion, 1, 'b', 1, 'a'), ErrCorrupt},
		{"unknown type", append(header(1), 0x40, 1, 'k'), ErrCorrupt},
		{"merge", append(header(1), tagMerge, 1, 'k', 1, 'v'), ErrUnsupported},
		{"merge cf", append(header(1), tagCFMerge, 1, 1, 'k', 1, 'v'), ErrUnsupported},
		{"blob index", append(header(1), tagBlobIndex, 1, 'k', 1, 'v'), ErrUnsupported},
		{"wide columns", append(header(1), tagWideColumnEntity, 1, 'k', 1, 'v'), ErrUnsupported},
		{"commit marker", append(header(0), 0x0B, 1, 'x'), ErrUnsupported},
		{"column family 7", append(header(1), tagCFValue, 7, 1, 'k', 1, 'v'), ErrUnsupported},
		{"column family id too big", append(header(1), tagCFValue, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 'k', 1, 'v'), ErrCorrupt},
	}
	for _, c := range cases {
		if _, _, err := checkBatch(c.data, func(id uint32) bool { return id <= 1 }); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// FuzzCheckBatch: no input makes checkBatch panic, and RocksDB writes what
// it accepts, with the count it found.
func FuzzCheckBatch(f *testing.F) {
	for _, data := range sampleBatches(f) {
		f.Add(data)
	}
	w := newWriter(f, f.TempDir(), 0, "a")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, count, err := checkBatch(data, func(id uint32) bool { return id <= 1 })
		if err != nil {
			return
		}
		wb := grocksdb.WriteBatchFrom(data)
		defer wb.Destroy()
		before := w.latest()
		if err := w.db.Write(w.wo, wb); err != nil {
			t.Fatalf("checkBatch accepted %x, rocksdb refused it: %v", data, err)
		}
		if got := w.latest() - before; got != uint64(count) {
			t.Fatalf("checkBatch counted %d, rocksdb used %d sequence numbers", count, got)
		}
	})
}
