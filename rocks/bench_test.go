package rocks

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
)

// benchBatches builds n batches of 4 puts (about 1 KiB each) over two
// column families.
func benchBatches(w *writer, n int) []*grocksdb.WriteBatch {
	rng := rand.New(rand.NewPCG(41, 42))
	value := make([]byte, 220)
	out := make([]*grocksdb.WriteBatch, n)
	for i := range out {
		wb := grocksdb.NewWriteBatch()
		for range 4 {
			for j := range value {
				value[j] = byte(rng.Uint32())
			}
			key := []byte{byte(rng.Uint32()), byte(rng.Uint32()), byte(rng.Uint32()), byte(i), byte(i >> 8)}
			wb.PutCF(w.list[rng.IntN(len(w.list))], key, value)
		}
		out[i] = wb
	}
	return out
}

// writeBatches writes and destroys batches, and returns the time taken by
// the writes alone.
func writeBatches(b *testing.B, w *writer, batches []*grocksdb.WriteBatch) time.Duration {
	start := time.Now()
	for _, wb := range batches {
		if err := w.db.Write(w.wo, wb); err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	for _, wb := range batches {
		wb.Destroy()
	}
	return d
}

// BenchmarkUpdates reads about 100 MB of WAL (archived and live files) with
// an Updates iterator.
//
//	go test ./rocks/ -run '^$' -bench BenchmarkUpdates -benchtime 5x
func BenchmarkUpdates(b *testing.B) {
	w := newWriter(b, filepath.Join(b.TempDir(), "src"), 3600, "a")
	for range 4 { // 4 x 25,000 batches of ~1 KiB, a flush (a new WAL file) after each
		writeBatches(b, w, benchBatches(w, 25000))
		w.flush()
	}
	f := follow(b, w.dir)
	for b.Loop() {
		u, err := f.Updates(1)
		if err != nil {
			b.Fatal(err)
		}
		bytes, n := 0, 0
		for {
			batch, ok, err := u.Next()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				break
			}
			bytes += len(batch.Data)
			n++
		}
		u.Close()
		if n != 100000 {
			b.Fatalf("read %d batches, want 100000", n)
		}
		b.SetBytes(int64(bytes))
	}
}

// BenchmarkApply applies about 50 MB of batches read from a WAL to a new
// database, with and without the WAL, and compares with the writes of the
// same batches to the source (ratios below 1 are slower than the source).
// The apply times include Close, which flushes when the WAL is disabled.
//
//	go test ./rocks/ -run '^$' -bench BenchmarkApply -benchtime 3x
func BenchmarkApply(b *testing.B) {
	const n = 50000
	var orig, wal, noWAL time.Duration
	var size int64
	for b.Loop() {
		src := newWriter(b, filepath.Join(b.TempDir(), "src"), 3600, "a")
		orig += writeBatches(b, src, benchBatches(src, n))
		f := follow(b, src.dir)
		u, _ := f.Updates(1)
		batches := drain(b, u, nil)
		u.Close()
		size = 0
		for _, bt := range batches {
			size += int64(len(bt.Data))
		}
		wal += timeApply(b, batches, Options{CreateIfMissing: true, ColumnFamilies: []string{"a"}})
		noWAL += timeApply(b, batches, Options{CreateIfMissing: true, ColumnFamilies: []string{"a"}, DisableWAL: true})
		src.close()
	}
	mbps := func(d time.Duration) float64 { return float64(size) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(orig), "source-MB/s")
	b.ReportMetric(mbps(wal), "apply-MB/s")
	b.ReportMetric(mbps(noWAL), "apply-nowal-MB/s")
	b.ReportMetric(orig.Seconds()/wal.Seconds(), "apply/source")
	b.ReportMetric(orig.Seconds()/noWAL.Seconds(), "apply-nowal/source")
}

// timeApply applies batches to a new database, flushing at the end, and
// returns the time taken.
func timeApply(b *testing.B, batches []Batch, opts Options) time.Duration {
	dir := filepath.Join(b.TempDir(), "copy")
	db, err := OpenWritable(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	for _, bt := range batches {
		if err := db.Apply(bt.Data); err != nil {
			b.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkWALTailIdle measures what a WALTail costs while the database is
// idle, in a folder of n other files (SST files): "poll" is one Next at
// the end of the newest WAL file without a listing, "list" one listing of
// the folder (finished). An idle archiver polls every 10 ms and lists at
// most every walFinishedEvery: per second, 100 polls and 10 listings.
func BenchmarkWALTailIdle(b *testing.B) {
	for _, n := range []int{2000, 16000} {
		dir := b.TempDir()
		for i := range n {
			writeFile(b, filepath.Join(dir, fmt.Sprintf("%06d.sst", i+1)), nil)
		}
		rng := rand.New(rand.NewPCG(11, 11))
		writeFile(b, filepath.Join(dir, "999999.log"), encodeWAL(999999, false, testBatches(rng, 1, 5)).data)
		tail := newTail(b, dir, 1)
		drainTail(b, tail, nil)
		b.Run(fmt.Sprintf("poll/files=%d", n), func(b *testing.B) {
			tail.now = func() time.Time { return time.Unix(1e9, 0) } // never due
			for b.Loop() {
				if _, ok, err := tail.Next(); ok || err != nil {
					b.Fatalf("next at the live end: ok %v, %v", ok, err)
				}
			}
		})
		b.Run(fmt.Sprintf("list/files=%d", n), func(b *testing.B) {
			for b.Loop() {
				if done, err := tail.finished(999999); done || err != nil {
					b.Fatalf("finished: %v, %v", done, err)
				}
			}
		})
	}
}
