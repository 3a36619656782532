// Package datagen makes the benchmark's data: values such as an application
// stores, with a compressibility that the report states. db_bench's values
// repeat one buffer, which compresses in a way no real data does; these are
// JSON records of a chat service: a random message id and signature, a
// room, an author, a time, and text drawn from a small vocabulary. zstd at
// the segments' level shrinks 1000-byte values about 2.3 times; Ratio measures it.
//
// The output depends only on the seed: every run writes the same bytes.
package datagen

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// Gen makes keys and values. It is not safe for concurrent use.
type Gen struct {
	s   uint64 // splitmix64 state
	now int64
}

// New returns a generator whose output depends only on seed.
func New(seed uint64) *Gen { return &Gen{s: seed, now: 1_700_000_000_000} }

// Uint64 returns the next pseudo-random number (splitmix64).
func (g *Gen) Uint64() uint64 {
	g.s += 0x9e3779b97f4a7c15
	z := g.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Intn returns a number in [0, n).
func (g *Gen) Intn(n int) int { return int(g.Uint64() % uint64(n)) }

// Value appends a value of exactly size bytes to dst.
func (g *Gen) Value(dst []byte, size int) []byte {
	start := len(dst)
	var sig [24]byte
	for i := 0; i < len(sig); i += 8 {
		binary.LittleEndian.PutUint64(sig[i:], g.Uint64())
	}
	g.now += int64(g.Intn(200))
	dst = fmt.Appendf(dst, `{"id":"%016x","author":"user/%06d","room":%d,"sent":%d,"sig":"%s","body":"`,
		g.Uint64(), g.Intn(50000), g.Intn(640), g.now, base64.StdEncoding.EncodeToString(sig[:]))
	for i := 0; len(dst)-start < size; i++ {
		if i > 0 {
			dst = append(dst, ' ')
		}
		if i%12 == 11 { // a mention, a number, a link: a little entropy in the text
			dst = fmt.Appendf(dst, "@%d", g.Uint64()%1e9)
			continue
		}
		dst = append(dst, words[g.Intn(len(words))]...)
	}
	dst = dst[:start+size]
	if size >= 2 {
		copy(dst[start+size-2:], `"}`)
	}
	return dst
}

// Key appends the key of record n: "msg/" and n in 12 decimal digits.
func Key(dst []byte, n uint64) []byte { return fmt.Appendf(dst, "msg/%012d", n) }

// Ratio is how many times zstd at the segments' level (SpeedFastest) shrinks
// data cut in blocks of 1 MiB, as a segment's blocks are.
func Ratio(data []byte) (float64, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderCRC(false))
	if err != nil {
		return 0, err
	}
	defer enc.Close()
	var out []byte
	total := 0
	for off := 0; off < len(data); off += 1 << 20 {
		out = enc.EncodeAll(data[off:min(off+1<<20, len(data))], out[:0])
		total += len(out)
	}
	if total == 0 {
		return 0, fmt.Errorf("datagen: no data to compress")
	}
	return float64(len(data)) / float64(total), nil
}

// words is the vocabulary of the messages.
var words = strings.Fields(`the a to and of in is it you that he was for on are with as I his they
	be at one have this from or had by hot word but what some we can out other were all
	there when up use your how said an each she which do their time if will way about many
	then them write would like so these her long make thing see him two has look more day
	could go come did number sound no most people my over know water than call first who
	may down side been now find any new work part take get place made live where after back
	little only round man year came show every good me give our under name very through
	just form sentence great think say help low line differ turn cause much mean before move
	right boy old too same tell does set three want air well also play small end put home
	read hand port large spell add even land here must big high such follow act why ask men
	change went light kind off need house picture try us again animal point mother world near
	build self earth father head stand own page should country found answer school grow study
	still learn plant cover food sun four between state keep eye never last let thought city
	tree cross farm hard start might story saw far sea draw left late run while press close`)
