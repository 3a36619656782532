package stream

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden stream in testdata/stream/v1")

// updating reports whether the golden files are to be rewritten: by -update
// or by ROCKSTREAM_UPDATE_GOLDEN=1, as in segments and crypt.
func updating() bool {
	return *update || os.Getenv("ROCKSTREAM_UPDATE_GOLDEN") == "1"
}

// goldenPath is a stream of format version 1 written by this package; a
// reader of any later version must still read it, and this Writer must
// still write it byte for byte.
var goldenPath = filepath.Join("..", "testdata", "stream", "v1", "stream.bin")

// goldenFrames are the frames of the golden stream. They depend on
// nothing but constants: keep them as they are (a new case is a new file).
func goldenFrames() []Frame {
	at := func(ns int64) time.Time { return time.Unix(0, 1_700_000_000_000_000_000+ns) }
	// A RocksDB write batch: sequence, count, then records (a put of
	// key "k1" and value "v1").
	rocksBatch := func(seq uint64, count uint32) []byte {
		b := make([]byte, 12, 32)
		for i := range 8 {
			b[i] = byte(seq >> (8 * i))
		}
		for i := range 4 {
			b[8+i] = byte(count >> (8 * i))
		}
		return append(b, 0x01, 2, 'k', '1', 2, 'v', '1')
	}
	large := make([]byte, 1500)
	for i := range large {
		large[i] = byte(0x40 + i*7 + i>>8)
	}
	return []Frame{
		heartbeatFrame(Heartbeat{Timeline: 2, Epoch: 5, Next: 1000, Archived: 990, Head: 1003, Time: at(0)}),
		batchFrame(Batch{Timeline: 2, Epoch: 5, Seq: 1000, Count: 1, Time: at(1_000), Data: rocksBatch(1000, 1)}),
		batchFrame(Batch{Timeline: 2, Epoch: 5, Seq: 1001, Count: 2, Time: at(2_000), Data: append(rocksBatch(1001, 2), 0x01, 2, 'k', '2', 0)}),
		batchFrame(Batch{Timeline: 2, Epoch: 5, Seq: 1003, Count: 0, Time: at(3_000), Data: rocksBatch(1003, 0)}), // a prepare
		batchFrame(Batch{Timeline: 2, Epoch: 5, Seq: 1003, Count: 0, Time: at(4_000)}),                            // no data
		batchFrame(Batch{Timeline: 2, Epoch: 5, Seq: 1003, Count: 3}),                                             // no time
		batchFrame(Batch{Timeline: 2, Epoch: 5, Seq: 1006, Count: 1, Time: at(6_000), Data: large}),
		heartbeatFrame(Heartbeat{Timeline: 2, Epoch: 5, Next: 1007, Archived: 1003, Head: 1007, Time: at(500_000_000)}),
		heartbeatFrame(Heartbeat{Timeline: 2, Epoch: 5, Next: 1007}), // nothing archived, no head, no time
		batchFrame(Batch{Timeline: 4_000_000_000, Epoch: 1 << 60, Seq: 1<<63 + 5, Count: 70_000, Time: time.Unix(-1, 0), Data: []byte{0xff}}),
	}
}

func TestGolden(t *testing.T) {
	want := goldenFrames()
	today := encode(t, want...)
	if updating() {
		if err := os.MkdirAll(filepath.Dir(goldenPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenPath, today, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (run with -update or ROCKSTREAM_UPDATE_GOLDEN=1 to write the golden stream)", err)
	}
	if !bytes.Equal(today, golden) {
		t.Errorf("the Writer writes %d bytes that differ from the golden stream (%d bytes) at byte %d", len(today), len(golden), firstDiff(today, golden))
	}
	got, err := decode(golden)
	if err != io.EOF {
		t.Fatalf("reading the golden stream: %v after %d frames, want io.EOF", err, len(got))
	}
	sameFrames(t, got, want)
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
