package segments

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// prng is splitmix64: a tiny generator whose output depends on nothing but
// its seed, so that golden inputs never change with the Go release.
type prng struct{ s uint64 }

func (p *prng) next() uint64 {
	p.s += 0x9e3779b97f4a7c15
	z := p.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// intn returns a number in [0, n); the modulo bias does not matter here.
func (p *prng) intn(n int) int { return int(p.next() % uint64(n)) }

// RocksDB write batch record types.
const (
	opDelete = 0x0
	opPut    = 0x1
)

// batchBuilder encodes a RocksDB write batch as WriteBatch.Data() does.
type batchBuilder struct {
	buf   []byte
	count uint32
}

func newBatchBuilder(seq uint64) *batchBuilder {
	return &batchBuilder{buf: binary.LittleEndian.AppendUint64(make([]byte, 0, 256), seq)[:8:256]}
}

func (b *batchBuilder) put(key, value []byte) {
	b.buf = append(b.buf, opPut)
	b.buf = appendSlice(b.buf, key)
	b.buf = appendSlice(b.buf, value)
	b.count++
}

func (b *batchBuilder) delete(key []byte) {
	b.buf = append(b.buf, opDelete)
	b.buf = appendSlice(b.buf, key)
	b.count++
}

func appendSlice(b, s []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

// batch returns the finished batch, archived at t.
func (b *batchBuilder) batch(t time.Time) Batch {
	data := make([]byte, 12, 12+len(b.buf)-8)
	copy(data, b.buf[:8])
	binary.LittleEndian.PutUint32(data[8:], b.count)
	data = append(data, b.buf[8:]...)
	return Batch{Seq: binary.LittleEndian.Uint64(data), Count: b.count, Time: t, Data: data}
}

// words is the vocabulary of the chat messages that the workload writes.
var words = func() []string {
	const text = `the a to and of in is it you that he was for on are with as I his they
	be at one have this from or had by hot word but what some we can out other were all
	there when up use your how said an each she which do their time if will way about many
	then them write would like so these her long make thing see him two has look more day
	could go come did number sound no most people my over know water than call first who
	may down side been now find any new work part take get place made live where after back
	little only round man year came show every good me give our under name very through
	just form sentence great think say help low line differ turn cause much mean before move
	right boy old too same tell does set three want air well also play small end put home
	read hand port large spell add even land here must big high such follow act why ask men`
	return strings.Fields(text)
}()

// workload makes realistic batches: a chat service writing messages under
// keys like "user/000123/room/0042/msg/0000001234", JSON values whose text
// comes from a small vocabulary, a random id per message, and some deletes.
// zstd shrinks its batches about 2.5 times (see BenchmarkWriter's ratio).
type workload struct {
	rng  prng
	seq  uint64
	now  int64
	msgs uint64
}

func newWorkload(seed, firstSeq uint64) *workload {
	return &workload{rng: prng{seed}, seq: firstSeq, now: 1_700_000_000_000_000_000}
}

// batch returns the next batch, with up to maxOps operations.
func (g *workload) batch(maxOps int) Batch {
	b := newBatchBuilder(g.seq)
	ops := 1 + g.rng.intn(maxOps)
	for range ops {
		user, room := g.rng.intn(5000), g.rng.intn(64)
		g.msgs++
		key := fmt.Appendf(nil, "user/%06d/room/%04d/msg/%010d", user, room, g.msgs)
		if g.rng.intn(10) == 0 {
			b.delete(key)
			continue
		}
		b.put(key, g.value(user, room))
	}
	g.now += int64(g.rng.intn(200_000))
	bt := b.batch(time.Unix(0, g.now))
	g.seq += uint64(bt.Count)
	return bt
}

func (g *workload) value(user, room int) []byte {
	var sig [24]byte
	for i := 0; i < len(sig); i += 8 {
		binary.LittleEndian.PutUint64(sig[i:], g.rng.next())
	}
	v := fmt.Appendf(nil, `{"author":"user/%06d","room":%d,"sent":%d,"id":"%016x","sig":"%s","body":"`,
		user, room, g.now/1e6, g.rng.next(), base64.StdEncoding.EncodeToString(sig[:]))
	for i := range 4 + g.rng.intn(24) {
		if i > 0 {
			v = append(v, ' ')
		}
		v = append(v, words[g.rng.intn(len(words))]...)
	}
	return append(v, `"}`...)
}

// writeSegment writes batches into a new segment and returns its bytes.
func writeSegment(t testing.TB, h Header, opts WriterOptions, batches []Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, h, opts)
	if err != nil {
		t.Fatalf("NewWriter: %v", err)
	}
	for _, b := range batches {
		if err := w.Append(b); err != nil {
			t.Fatalf("Append(seq %d): %v", b.Seq, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got, want := w.Size(), int64(buf.Len()); got != want {
		t.Fatalf("Size() = %d, wrote %d bytes", got, want)
	}
	return buf.Bytes()
}

// readAll reads every batch of a segment, copying their data.
func readAll(seg []byte, opts ReaderOptions) (Header, []Batch, Trailer, error) {
	r, err := NewReader(bytes.NewReader(seg), opts)
	if err != nil {
		return Header{}, nil, Trailer{}, err
	}
	var out []Batch
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), out, r.Trailer(), nil
		}
		if err != nil {
			return r.Header(), out, Trailer{}, err
		}
		b.Data = bytes.Clone(b.Data)
		out = append(out, b)
	}
}

// sameBatches reports the first difference between two batch lists.
func sameBatches(got, want []Batch) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d batches, want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Seq != w.Seq || g.Count != w.Count || !g.Time.Equal(w.Time) || !bytes.Equal(g.Data, w.Data) {
			return fmt.Errorf("batch %d: got seq %d count %d time %v (%d bytes), want seq %d count %d time %v (%d bytes)",
				i, g.Seq, g.Count, g.Time, len(g.Data), w.Seq, w.Count, w.Time, len(w.Data))
		}
	}
	return nil
}

// blockOffsets walks the block headers of a well-formed segment and returns
// the offset of each block and of the trailer.
func blockOffsets(t testing.TB, seg []byte) (blocks []int, trailer int) {
	t.Helper()
	off := headerSize
	for string(seg[off:off+4]) == string(blockTag[:]) {
		blocks = append(blocks, off)
		off += blockHeaderSize + int(binary.LittleEndian.Uint32(seg[off+16:]))
	}
	if string(seg[off:off+4]) != string(trailerTag[:]) {
		t.Fatalf("no trailer at byte %d", off)
	}
	return blocks, off
}
