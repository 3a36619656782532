package restore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
)

// TestLargeBatch writes one write batch of 100 values of 1 MiB (random,
// so that zstd cannot shrink it: about 100 MiB, above a segment block's
// 64 MiB) between small batches of a real RocksDB, archives it with the
// archiver over a FollowerSource, which goes on after it, and restores to
// the latest sequence (the source's digest) and to the sequence just
// before the batch (the source's state there, from its model). It logs the
// peak Go heap of the archiving and of each restore, above what was in use
// before, against the batch's size.
func TestLargeBatch(t *testing.T) {
	const values, valueSize = 100, 1 << 20
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	src := newSource(t, filepath.Join(root, "db"), nil, "cf1")
	src.writeRandom(rng, 40)
	store := fileStore(t, filepath.Join(root, "bucket"))
	arch := startArchiver(t, src.dir, store, filepath.Join(root, "work"))
	waitFor(t, "the first base", func() bool { return arch.a.Stats().Bases >= 1 })
	src.writeRandom(rng, 40)

	ops := make([]op, values)
	buf := make([]byte, valueSize)
	for i := range ops {
		for j := 0; j < len(buf); j += 8 {
			v := rng.Uint64()
			for k := range 8 {
				buf[j+k] = byte(v >> (8 * k))
			}
		}
		ops[i] = op{cf: src.names[i%len(src.names)], kind: opPut, key: fmt.Sprintf("big%03d", i), val: string(buf)}
	}
	buf = nil
	heap0 := heapInuse()
	p := samplePeaks()
	big := src.write(ops)
	src.writeRandom(rng, 40)
	waitFor(t, "the archive to pass the large batch", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	archHeap, _ := p.end()
	batchBytes := arch.a.Stats().BatchBytes
	// Bounds of the memory a large batch takes, in multiples of it: the
	// archiver holds the batch as the WAL reader assembled it, and the
	// segment of it; the restore its fragments and the batch joined; and
	// the garbage collector lets the heap reach about twice what is live.
	// Far above a few copies per batch is a leak.
	if extra := archHeap - min(archHeap, heap0); extra > 6*values*valueSize {
		t.Errorf("archiving a batch of %d MiB took %d MiB of Go heap", values*valueSize/mib, extra/mib)
	}
	t.Logf("archived a batch of %d values of %d bytes at sequence %d (%d batch bytes in all): peak Go HeapInuse %.1f MiB above the %.1f MiB before (the test's model holds the values)",
		values, valueSize, big.seq, batchBytes, float64(archHeap-min(archHeap, heap0))/mib, float64(heap0)/mib)
	latest := src.latest()
	log, names := src.log, src.names
	src.close()
	want, err := digestDir(src.dir)
	if err != nil {
		t.Fatal(err)
	}

	for _, target := range []uint64{latest, big.seq - 1} {
		dir := filepath.Join(t.TempDir(), "restored")
		heap0 := heapInuse()
		p := samplePeaks()
		res, err := Run(context.Background(), store, Options{Dir: dir, ToSeq: seqp(target), Logger: quiet()})
		heap, _ := p.end()
		if err != nil {
			t.Fatalf("restore to %d: %v", target, err)
		}
		if res.Sequence != target {
			t.Fatalf("restored to %d, want %d", res.Sequence, target)
		}
		t.Logf("restore to %d: %d batch bytes in %v: peak Go HeapInuse %.1f MiB above the %.1f MiB before",
			target, res.BatchBytes, res.Download+res.Replay+res.Finish, float64(heap-min(heap, heap0))/mib, float64(heap0)/mib)
		if extra := heap - min(heap, heap0); extra > 4*values*valueSize {
			t.Errorf("restoring a batch of %d MiB took %d MiB of Go heap", values*valueSize/mib, extra/mib)
		}
		if d := diff(readContent(t, dir), state(log, names, target)); d != "" {
			t.Fatalf("restored at %d: %s", target, d)
		}
		if target == latest {
			got, err := digestDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if d := got.Diff(want); d != "" {
				t.Fatalf("restored latest differs from the source: %s", d)
			}
		}
	}
}

func heapInuse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
