//go:build unix

package archive_test

import (
	"context"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/objstore/filestore"
)

// BenchmarkCatchUp is the archiver catching up on a backlog of 64 MiB of
// batches (16 puts of 1000-byte values each, the benchmark harness's
// data) into a file store, from its start to the end of its drain: the
// read loop, the segment writer and the uploads, without the WAL reader.
// The cases differ in Options.Compressors, so their ratios compare the
// pipeline with the sequential writer in one run. MB/s is wall clock;
// cpuMB/s per second of the process's CPU time (what the work costs, all
// cores together).
func BenchmarkCatchUp(b *testing.B) {
	src, total := backlog(64 << 20)
	for _, n := range []int{-1, 1, 2} {
		b.Run(fmt.Sprintf("compressors=%d", max(n, 0)), func(b *testing.B) {
			b.SetBytes(total)
			var cpu time.Duration
			for b.Loop() {
				cpu += catchUp(b, src, n)
			}
			if cpu > 0 {
				b.ReportMetric(float64(total)*float64(b.N)/cpu.Seconds()/1e6, "cpuMB/s")
			}
		})
	}
}

// catchUp archives all of src into a new file store, with the first base
// taken before the clock starts, and returns the CPU time of the rest.
func catchUp(b *testing.B, src *memSource, compressors int) time.Duration {
	b.StopTimer()
	store, err := filestore.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	opts := archive.Options{WriterID: "bench", WorkDir: b.TempDir(), Compressors: compressors, SummaryEvery: -1,
		Logger: slog.New(slog.DiscardHandler)}
	all := src.batches
	src.batches = all[:1] // the first base holds the first batch
	runUntil(b, src, store, opts, 1)
	src.batches = all
	b.StartTimer()
	cpu := cpuTime()
	a := runUntil(b, src, store, opts, src.lastSeq())
	used := cpuTime() - cpu
	if st := a.Stats(); st.ArchivedSequence != src.lastSeq() {
		b.Fatalf("archived up to %d, want %d", st.ArchivedSequence, src.lastSeq())
	}
	return used
}

// runUntil runs an archiver until it has read seq, then stops it.
func runUntil(b *testing.B, src *memSource, store *filestore.Store, opts archive.Options, seq uint64) *archive.Archiver {
	a, err := archive.New(src, store, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for deadline := time.Now().Add(time.Minute); a.Stats().LastSequence < seq; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("the archiver read up to %d in a minute, want %d", a.Stats().LastSequence, seq)
		}
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return a
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
