package segments

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// cpuMeter measures a benchmark's throughput per second of process CPU
// time. The machines that run these benchmarks are shared, and CPU time
// changes less than wall time when other work competes for the cores; with
// -cpu=1 it is the time of the one core doing the work, plus the garbage
// collector's.
type cpuMeter struct{ start time.Duration }

func startCPU() cpuMeter { return cpuMeter{cpuTime()} }

// report adds the cpuMB/s metric, for bytesPerOp bytes per iteration.
func (m cpuMeter) report(b *testing.B, bytesPerOp int64) {
	if used := cpuTime() - m.start; m.start > 0 && used > 0 {
		b.ReportMetric(float64(bytesPerOp)*float64(b.N)/used.Seconds()/1e6, "cpuMB/s")
	}
}

// benchBatches returns about 8 MiB of realistic batches (see workload) and
// their total data size.
func benchBatches(b *testing.B) ([]Batch, int64) {
	b.Helper()
	g := newWorkload(1, 1)
	var batches []Batch
	var total int64
	for total < 8<<20 {
		bt := g.batch(8)
		batches = append(batches, bt)
		total += int64(len(bt.Data))
	}
	return batches, total
}

// BenchmarkWriter writes 8 MiB segments. The zstd/concurrencyN cases
// compress up to N blocks in flight (WriterOptions.Concurrency): their MB/s
// (wall clock) gains from more cores, their cpuMB/s shows what the
// goroutines cost.
func BenchmarkWriter(b *testing.B) {
	batches, total := benchBatches(b)
	cases := []struct {
		name  string
		codec Codec
		n     int
	}{{"none", CodecNone, 0}, {"zstd", CodecZstd, 0}, {"zstd/concurrency1", CodecZstd, 1}, {"zstd/concurrency2", CodecZstd, 2}}
	for _, c := range cases {
		codec := c.codec
		b.Run(c.name, func(b *testing.B) {
			var buf bytes.Buffer
			b.SetBytes(total)
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				buf.Reset()
				w, err := NewWriter(&buf, Header{Codec: codec, FirstSeq: 1}, WriterOptions{Concurrency: c.n})
				if err != nil {
					b.Fatal(err)
				}
				for _, bt := range batches {
					if err := w.Append(bt); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
			cpu.report(b, total)
			b.ReportMetric(float64(total)/float64(buf.Len()), "ratio")
		})
	}
}

func BenchmarkReader(b *testing.B) {
	batches, total := benchBatches(b)
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		b.Run(codec.String(), func(b *testing.B) {
			seg := writeSegment(b, Header{Codec: codec, FirstSeq: 1}, WriterOptions{}, batches)
			src := bytes.NewReader(seg)
			b.SetBytes(total)
			b.ReportAllocs()
			cpu := startCPU()
			for b.Loop() {
				src.Reset(seg)
				if n := readCount(b, src); n != len(batches) {
					b.Fatalf("read %d batches, want %d", n, len(batches))
				}
			}
			cpu.report(b, total)
		})
	}
}

func readCount(b *testing.B, src io.Reader) int {
	r, err := NewReader(src, ReaderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if errors.Is(err, io.EOF) {
			return n
		}
		if err != nil {
			b.Fatal(err)
		}
		n++
	}
}

// BenchmarkZstd is the baseline: zstd alone on the same bytes, cut into
// blocks of DefaultBlockSize, at the two fastest levels (encoderLevel is
// one of them).
func BenchmarkZstd(b *testing.B) {
	batches, total := benchBatches(b)
	var raw []byte
	for _, bt := range batches {
		raw = append(raw, bt.Data...)
	}
	for _, level := range []zstd.EncoderLevel{zstd.SpeedFastest, zstd.SpeedDefault} {
		name := level.String()
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(false))
		if err != nil {
			b.Fatal(err)
		}
		var blocks [][]byte
		for off := 0; off < len(raw); off += DefaultBlockSize {
			blocks = append(blocks, raw[off:min(off+DefaultBlockSize, len(raw))])
		}
		var compressed, out [][]byte
		b.Run("EncodeAll/"+name, func(b *testing.B) {
			b.SetBytes(total)
			cpu := startCPU()
			for b.Loop() {
				compressed = compressed[:0]
				for i, blk := range blocks {
					if i == len(out) {
						out = append(out, make([]byte, 0, len(blk)))
					}
					out[i] = enc.EncodeAll(blk, out[i][:0])
					compressed = append(compressed, out[i])
				}
			}
			cpu.report(b, total)
			b.ReportMetric(float64(total)/float64(sizeOf(compressed)), "ratio")
		})
		dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
		if err != nil {
			b.Fatal(err)
		}
		b.Run("DecodeAll/"+name, func(b *testing.B) {
			b.SetBytes(total)
			dst := make([]byte, 0, DefaultBlockSize)
			cpu := startCPU()
			for b.Loop() {
				for _, c := range compressed {
					if dst, err = dec.DecodeAll(c, dst[:0]); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu.report(b, total)
		})
	}
}

func sizeOf(blocks [][]byte) int {
	n := 0
	for _, b := range blocks {
		n += len(b)
	}
	return n
}
