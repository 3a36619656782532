package restore

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

var long = flag.Bool("restore.long", false, "run the long restore tests (about 200 MB of segments)")

// Batches of the synthetic workload: puts of random values into the
// default column family, encoded as RocksDB's WriteBatch (db/write_batch.cc:
// fixed64 sequence, fixed32 count, then per put: tag 0x01, varint key
// length, key, varint value length, value).
const (
	synthOps   = 4
	synthValue = 1000
)

// synthBatch appends to dst the batch that starts at seq.
func synthBatch(dst []byte, rng *rand.Rand, seq uint64) []byte {
	dst = binary.LittleEndian.AppendUint64(dst[:0], seq)
	dst = binary.LittleEndian.AppendUint32(dst, synthOps)
	val := make([]byte, synthValue)
	for range synthOps {
		key := fmt.Appendf(nil, "key%012d", rng.IntN(1_000_000))
		for j := 0; j < len(val); j += 8 {
			binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
		}
		dst = append(dst, 0x01)
		dst = binary.AppendUvarint(dst, uint64(len(key)))
		dst = append(dst, key...)
		dst = binary.AppendUvarint(dst, uint64(len(val)))
		dst = append(dst, val...)
	}
	return dst
}

// synthArchive makes an archive in store of a database that starts
// empty: a base at sequence 0 taken with the archiver's TakeBase, then
// segments of segSize bytes holding total bytes of batches, written as the
// archiver writes them. It returns the last sequence. each, if set, sees
// every batch (to write it to a database too).
func synthArchive(tb testing.TB, store objstore.Store, root string, total, segSize int64, each func([]byte)) uint64 {
	tb.Helper()
	src := newSource(tb, filepath.Join(root, "empty"), nil)
	src.close()
	if b := takeBase(tb, src.dir, store, filepath.Join(root, "base")); b.Sequence != 0 {
		tb.Fatalf("the empty database's base is at %d", b.Sequence)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	seq, written := uint64(1), int64(0)
	var data []byte
	var w *segments.Writer
	var buf bytes.Buffer
	for written < total {
		if w == nil {
			buf.Reset()
			w = newSegment(tb, &buf, seq)
		}
		data = synthBatch(data, rng, seq)
		if each != nil {
			each(data)
		}
		if err := w.Append(segments.Batch{Seq: seq, Count: synthOps, Time: time.Now(), Data: data}); err != nil {
			tb.Fatal(err)
		}
		seq += synthOps
		written += int64(len(data))
		if int64(buf.Len()) >= segSize || written >= total {
			putSegment(tb, store, w, &buf)
			w = nil
		}
	}
	return seq - 1
}

func newSegment(tb testing.TB, buf *bytes.Buffer, first uint64) *segments.Writer {
	w, err := segments.NewWriter(buf, segments.Header{Codec: segments.CodecZstd, Timeline: 1, FirstSeq: first, Created: time.Now()}, segments.WriterOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	return w
}

func putSegment(tb testing.TB, store objstore.Store, w *segments.Writer, buf *bytes.Buffer) {
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	key := manifest.SegmentKey(1, w.Header().FirstSeq)
	if _, err := store.Put(context.Background(), key, bytes.NewReader(buf.Bytes()), int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		tb.Fatal(err)
	}
}

// writeOriginal writes batches into a new database at dir as the primary
// did, with the WAL on, and returns how long it took.
type original struct {
	db   *grocksdb.DB
	opts *grocksdb.Options
	wo   *grocksdb.WriteOptions
	took time.Duration
}

func openOriginal(tb testing.TB, dir string) *original {
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	db, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		tb.Fatal(err)
	}
	return &original{db: db, opts: o, wo: grocksdb.NewDefaultWriteOptions()}
}

func (o *original) write(tb testing.TB, data []byte) {
	start := time.Now()
	wb := grocksdb.WriteBatchFrom(data)
	err := o.db.Write(o.wo, wb)
	wb.Destroy()
	o.took += time.Since(start)
	if err != nil {
		tb.Fatal(err)
	}
}

func (o *original) close() {
	o.db.Close()
	o.wo.Destroy()
	o.opts.Destroy()
}

// peakSampler samples the Go heap every few milliseconds.
type peakSampler struct {
	heapInuse, sys atomic.Uint64
	stop           chan struct{}
	done           chan struct{}
}

func samplePeaks() *peakSampler {
	runtime.GC()
	runtime.GC() // a second time, to empty the sync.Pool victim caches (zstd encoders)
	resetPeakRSS()
	p := &peakSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var ms runtime.MemStats
		for i := 0; ; i++ {
			runtime.ReadMemStats(&ms)
			if os.Getenv("DEBUGMEM") != "" && i%10 == 0 {
				fmt.Println("heapinuse", ms.HeapInuse>>20, "alloc", ms.HeapAlloc>>20, "next", ms.NextGC>>20, "gcs", ms.NumGC)
			}
			p.heapInuse.Store(max(p.heapInuse.Load(), ms.HeapInuse))
			p.sys.Store(max(p.sys.Load(), ms.Sys))
			select {
			case <-p.stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return p
}

func (p *peakSampler) end() (heapInuse, sys uint64) {
	close(p.stop)
	<-p.done
	return p.heapInuse.Load(), p.sys.Load()
}

// resetPeakRSS resets the process's peak resident size (VmHWM), which
// Linux allows through /proc/self/clear_refs; errors are ignored.
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS is the process's peak resident size since the last reset, in
// bytes (0 when unknown): it includes RocksDB's memory, which the Go heap
// figures do not.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

const mib = 1 << 20
