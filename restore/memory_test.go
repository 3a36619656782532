package restore

import (
	"context"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestRestoreMemoryFlat restores two synthetic archives of different sizes
// (16 and 64 MiB of batches; 40 and 200 MiB with -restore.long), in
// segments of 4 MiB so that both fill the read-ahead, and checks that the
// peak Go heap during the restore does not grow with the size: segments
// are streamed, one block decoded at a time, with a bounded read-ahead.
func TestRestoreMemoryFlat(t *testing.T) {
	// The peak heap holds garbage until the collector runs, which a busy
	// machine delays: collect often, so that the peak is what is live.
	defer debug.SetGCPercent(debug.SetGCPercent(20))
	small, large := int64(16*mib), int64(64*mib)
	if *long {
		small, large = 40*mib, 200*mib
	}
	heapSmall := restorePeak(t, small)
	heapLarge := restorePeak(t, large)
	if heapLarge > heapSmall+16*mib || heapLarge > 64*mib {
		t.Fatalf("peak heap %d MiB restoring %d MiB, %d MiB restoring %d MiB: it grows with the archive",
			heapLarge/mib, large/mib, heapSmall/mib, small/mib)
	}
}

// restorePeak restores an archive of total bytes of batches and returns
// the peak HeapInuse sampled during the restore.
func restorePeak(t *testing.T, total int64) uint64 {
	t.Helper()
	root := t.TempDir()
	store := fileStore(t, filepath.Join(root, "bucket"))
	latest := synthArchive(t, store, root, total, 4*mib, nil)
	p := samplePeaks()
	res, err := Run(context.Background(), store, Options{Dir: filepath.Join(root, "restored"), Logger: quiet()})
	heap, sys := p.end()
	if err != nil {
		t.Fatal(err)
	}
	if res.Sequence != latest || res.BatchBytes < total {
		t.Fatalf("restored to %d (%d batch bytes), want %d (%d bytes)", res.Sequence, res.BatchBytes, latest, total)
	}
	t.Logf("restore of %d MiB of batches (%d MiB of segments) in %v (replay %v): peak Go HeapInuse %.1f MiB, Go Sys %.1f MiB, peak RSS %.1f MiB (with RocksDB)",
		res.BatchBytes/mib, res.SegmentBytes/mib, res.Download+res.Replay+res.Finish, res.Replay,
		float64(heap)/mib, float64(sys)/mib, float64(peakRSS())/mib)
	return heap
}
