package archive_test

import (
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/internal/bench/datagen"
	"github.com/rockstream/rockstream/segments"
)

// memSource is a database as a slice of batches: the fake Source of the
// archiver's tests. Batches before trimmed are gone from its "WAL".
type memSource struct {
	mu       sync.Mutex
	identity string
	batches  []segments.Batch
	trimmed  uint64 // first sequence still in the WAL
	pos      int    // index of the next batch Next returns
	seekTo   uint64
	sought   bool
	ckpts    int
	nexts    int // calls of Next
}

// nextCalls is how many times Next was called.
func (m *memSource) nextCalls() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.nexts
}

func newMemSource(identity string) *memSource {
	return &memSource{identity: identity}
}

// batchData encodes a batch as RocksDB does: sequence, count, then records.
func batchData(seq uint64, count uint32, payload []byte) []byte {
	d := make([]byte, 12, 12+len(payload))
	binary.LittleEndian.PutUint64(d, seq)
	binary.LittleEndian.PutUint32(d[8:], count)
	return append(d, payload...)
}

// write appends n batches of random counts and sizes.
func (m *memSource) write(rng *rand.Rand, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writeLocked(rng, n)
}

func (m *memSource) writeLocked(rng *rand.Rand, n int) {
	for range n {
		seq := m.lastSeqLocked() + 1
		count := uint32(1 + rng.Intn(4))
		payload := make([]byte, 20+rng.Intn(300))
		for i := range payload {
			payload[i] = byte('a' + rng.Intn(8))
		}
		m.batches = append(m.batches, segments.Batch{Seq: seq, Count: count, Data: batchData(seq, count, payload)})
	}
}

func (m *memSource) lastSeqLocked() uint64 {
	if len(m.batches) == 0 {
		return 0
	}
	b := m.batches[len(m.batches)-1]
	return b.Seq + uint64(b.Count) - 1
}

func (m *memSource) lastSeq() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastSeqLocked()
}

// trim drops the WAL before sequence seq.
func (m *memSource) trim(seq uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.trimmed = seq
}

func (m *memSource) Identity() (string, error) { return m.identity, nil }
func (m *memSource) Refresh() error            { return nil }

func (m *memSource) Seek(seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seekTo, m.sought = seq, true
	return nil
}

func (m *memSource) Next() (segments.Batch, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nexts++
	if m.sought {
		m.sought = false
		if m.seekTo < m.trimmed && m.seekTo <= m.lastSeqLocked() {
			return segments.Batch{}, false, fmt.Errorf("fake WAL starts at %d, %d asked: %w", m.trimmed, m.seekTo, archive.ErrGap)
		}
		m.pos = len(m.batches)
		for i, b := range m.batches {
			if b.Seq >= m.seekTo {
				m.pos = i
				break
			}
		}
	}
	if m.pos >= len(m.batches) {
		return segments.Batch{}, false, nil
	}
	b := m.batches[m.pos]
	if b.Seq < m.trimmed {
		return segments.Batch{}, false, fmt.Errorf("fake WAL starts at %d: %w", m.trimmed, archive.ErrGap)
	}
	m.pos++
	return b, true, nil
}

// Checkpoint writes fake files: an SST per 50 batches (shared between
// checkpoints, as RocksDB's immutable SST files are), and a MANIFEST that
// changes every time.
func (m *memSource) Checkpoint(dir string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ckpts++
	if err := os.Mkdir(dir, 0o755); err != nil {
		return 0, err
	}
	seq := m.lastSeqLocked()
	files := map[string]string{
		"CURRENT":         "MANIFEST-000001\n",
		"IDENTITY":        m.identity,
		"MANIFEST-000001": fmt.Sprintf("manifest at %d, checkpoint %d", seq, m.ckpts),
		"OPTIONS-000005":  "[DBOptions]\n",
	}
	for i := 0; i < len(m.batches)/50; i++ {
		files[fmt.Sprintf("%06d.sst", i+10)] = fmt.Sprintf("sst %d of %s", i, m.identity)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			return 0, err
		}
	}
	return seq, nil
}

// checkpoints returns how many checkpoints were taken.
func (m *memSource) checkpoints() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ckpts
}

// since returns the batches after sequence seq.
func (m *memSource) since(seq uint64) []segments.Batch {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []segments.Batch
	for _, b := range m.batches {
		if b.Seq > seq {
			out = append(out, b)
		}
	}
	return out
}

// backlog makes batches of about size bytes in all: 16 puts of 1000-byte
// values each, from the benchmark harness's data (which zstd shrinks about
// as real data).
func backlog(size int) (*memSource, int64) {
	g := datagen.New(1)
	src := newMemSource("bench-db")
	seq, total, n := uint64(1), int64(0), uint64(0)
	for total < int64(size) {
		d := make([]byte, 12, 12+16*1030)
		binary.LittleEndian.PutUint64(d, seq)
		binary.LittleEndian.PutUint32(d[8:], 16)
		for range 16 {
			d = append(d, 1) // a put: type, key, value
			d = binary.AppendUvarint(d, 16)
			d = datagen.Key(d, n)
			d = binary.AppendUvarint(d, 1000)
			d = g.Value(d, 1000)
			n++
		}
		src.batches = append(src.batches, segments.Batch{Seq: seq, Count: 16, Data: d})
		seq += 16
		total += int64(len(d))
	}
	return src, total
}
