package stream

import (
	"bytes"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
)

// allocSlack is what a Next may allocate besides its payload buffer.
const allocSlack = 64 << 10

// FuzzReader feeds arbitrary bytes to the Reader. It must never panic;
// it must end with io.EOF between frames or an error of the format
// (ErrCorrupt, ErrUnsupported, io.ErrUnexpectedEOF); no Next may allocate
// more than MaxPayload and a little; and each frame it returns must be
// what the Writer writes for it, byte for byte, at the offset it was read.
func FuzzReader(f *testing.F) {
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(golden[:len(golden)-1])
	f.Add(golden[:headerSize])
	flipped := bytes.Clone(golden)
	flipped[len(golden)/2] ^= 0x08
	f.Add(flipped)
	frames := streamFrames()
	stream := encode(f, frames...)
	f.Add(stream)
	f.Add(stream[:len(stream)-3])
	f.Add(encode(f, sampleFrames()...))
	f.Add(encode(f))
	f.Add(concat(rawHeader(2, 0), rawFrame(2, [3]byte{}, 44, rawHeartbeat(1, 2, 3, 4, 5, 6))))
	f.Add(concat(rawHeader(1, 0), rawFrame(3, [3]byte{}, 4, []byte("abcd"))))
	f.Add(concat(rawHeader(1, 0), rawFrame(1, [3]byte{}, 36+4, rawBatch(1, 2, 3, 4, 5, 5, []byte("abcd")))))
	f.Add(concat(rawHeader(1, 0), rawFrame(1, [3]byte{}, MaxPayload, nil)))
	f.Add([]byte(magic))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("NewReader: %v, not an error of the format", err)
			}
			return
		}
		var w bytes.Buffer
		sw, err := NewWriter(&w)
		if err != nil {
			t.Fatal(err)
		}
		sw.Flush()
		if !bytes.Equal(data[:headerSize], w.Bytes()) {
			t.Fatalf("NewReader took the header %x; the Writer writes %x", data[:headerSize], w.Bytes())
		}
		off := headerSize
		var m0, m1 runtime.MemStats
		for k := 0; ; k++ {
			runtime.ReadMemStats(&m0)
			fr, err := r.Next()
			runtime.ReadMemStats(&m1)
			if n := m1.TotalAlloc - m0.TotalAlloc; n > MaxPayload+4+allocSlack {
				t.Fatalf("frame %d: Next allocated %d bytes", k, n)
			}
			if err != nil {
				if err == io.EOF {
					if off != len(data) {
						t.Fatalf("io.EOF at %d of %d bytes", off, len(data))
					}
					return
				}
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("frame %d: %v, not an error of the format", k, err)
				}
				return
			}
			if (fr.Batch == nil) == (fr.Heartbeat == nil) {
				t.Fatalf("frame %d has batch %v and heartbeat %v", k, fr.Batch != nil, fr.Heartbeat != nil)
			}
			if fr.Batch != nil && len(fr.Batch.Data) > MaxBatchData {
				t.Fatalf("frame %d: a batch of %d bytes", k, len(fr.Batch.Data))
			}
			w.Reset()
			if err := writeFrame(sw, fr); err != nil {
				t.Fatalf("frame %d: the Writer refuses what the Reader read: %v", k, err)
			}
			if err := sw.Flush(); err != nil {
				t.Fatal(err)
			}
			again := w.Bytes()
			if len(again) > len(data)-off || !bytes.Equal(again, data[off:off+len(again)]) {
				t.Fatalf("frame %d (%s) at %d writes\n%x\nbut was read from\n%x", k, showFrame(fr), off, again, data[off:min(len(data), off+len(again))])
			}
			off += len(again)
		}
	})
}
