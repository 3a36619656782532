package bench

import (
	"fmt"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/bench/datagen"
)

// The harness plays the application: it writes its own RocksDB database
// with grocksdb, as a program would (WAL on, no sync per write, old WAL
// files kept for an hour, which rockstream needs), with values from
// datagen. It imports grocksdb directly, as an application does; rockstream's
// own code reaches RocksDB only through package rocks.

const (
	valueSize   = 1000 // bytes of each value
	opsPerBatch = 16   // puts per write batch when filling
)

// app is the application's database.
type app struct {
	dir  string
	db   *grocksdb.DB
	opts *grocksdb.Options
	wo   *grocksdb.WriteOptions
	gen  *datagen.Gen
	keys uint64 // the key space: records 0..keys-1
	buf  []byte
}

// openApp opens (creating) the database in dir with a key space of keys
// records.
func openApp(dir string, keys uint64, seed uint64) (*app, error) {
	opts := grocksdb.NewDefaultOptions()
	opts.SetCreateIfMissing(true)
	opts.SetWALTtlSeconds(3600)
	db, err := grocksdb.OpenDb(opts, dir)
	if err != nil {
		opts.Destroy()
		return nil, fmt.Errorf("open the application's database %s: %w", dir, err)
	}
	return &app{dir: dir, db: db, opts: opts, wo: grocksdb.NewDefaultWriteOptions(), gen: datagen.New(seed), keys: max(keys, 1)}, nil
}

// close closes the database (RocksDB does not flush at close; the WAL
// holds the rest).
func (a *app) close() {
	a.db.Close()
	a.wo.Destroy()
	a.opts.Destroy()
}

// seq is the database's latest sequence number.
func (a *app) seq() uint64 { return a.db.GetLatestSequenceNumber() }

// written is what a fill wrote.
type written struct {
	bytes int64         // bytes of write batches (as the WAL holds them)
	ops   int64         // puts
	took  time.Duration // inside DB.Write only, not making the keys and values
}

// rate is the MB/s (10^6 bytes) of w.
func (w written) rate() float64 { return float64(w.bytes) / 1e6 / w.took.Seconds() }

// fill writes batches of opsPerBatch puts until total bytes of batches
// are written; key(i) gives the record of the i-th put. With sink, it
// appends each batch's bytes to *sink. The time is the sum of the
// DB.Write calls: datagen makes keys and values slower than RocksDB writes
// them, so timing the loop would measure datagen.
func (a *app) fill(total int64, key func(i uint64) uint64, disableWAL bool, sink *[]byte) (written, error) {
	wo := a.wo
	if disableWAL {
		wo = grocksdb.NewDefaultWriteOptions()
		wo.DisableWAL(true)
		defer wo.Destroy()
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	var w written
	for i := uint64(0); w.bytes < total; {
		wb.Clear()
		for range opsPerBatch {
			k := datagen.Key(a.buf[:0], key(i)%a.keys)
			a.buf = a.gen.Value(k, valueSize)
			wb.Put(a.buf[:len(k)], a.buf[len(k):])
			i++
		}
		start := time.Now()
		err := a.db.Write(wo, wb)
		w.took += time.Since(start)
		if err != nil {
			return w, fmt.Errorf("write to %s: %w", a.dir, err)
		}
		data := wb.Data()
		w.bytes += int64(len(data))
		w.ops += opsPerBatch
		if sink != nil {
			*sink = append(*sink, data...)
		}
	}
	return w, nil
}

// scattered is a key order for fill that visits every record once, in a
// random-looking order: i*step mod keys, with step made coprime to keys.
func (a *app) scattered(step uint64) func(uint64) uint64 {
	for gcd(step, a.keys) != 1 {
		step++
	}
	return func(i uint64) uint64 { return i * step % a.keys }
}

// random is a key order for fill: records drawn at random, with repeats.
func (a *app) random() func(uint64) uint64 {
	return func(uint64) uint64 { return a.gen.Uint64() % a.keys }
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// settle flushes the memtables and waits until RocksDB has no compaction
// pending or running, as a database at rest.
func (a *app) settle() error {
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	if err := a.db.Flush(fo); err != nil {
		return fmt.Errorf("flush %s: %w", a.dir, err)
	}
	for range 6000 {
		if a.db.GetProperty("rocksdb.compaction-pending") == "0" && a.db.GetProperty("rocksdb.num-running-compactions") == "0" {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s: compactions still running after 5 minutes", a.dir)
}
