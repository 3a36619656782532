package rocks

import (
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// TestWALHeadsIncremental: the WAL's head read on from where each look
// left off is the head that reading the files whole gives, and the
// database's latest sequence, across writes, a WAL switch (flush) and a
// compressed WAL.
func TestWALHeadsIncremental(t *testing.T) {
	for _, zstd := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "db")
		w := newWriterWith(t, dir, func(o *grocksdb.Options) {
			o.SetWALTtlSeconds(3600)
			if zstd {
				o.SetWALCompression(grocksdb.ZSTDCompression)
			}
		})
		rng := rand.New(rand.NewPCG(3, 4))
		var h walHeads
		for round := range 6 {
			w.writeRandom(rng, 50+rng.IntN(200))
			if round == 2 || round == 4 {
				w.flush() // a new WAL file
				w.writeRandom(rng, 10)
			}
			got, err := h.head(dir)
			if err != nil {
				t.Fatal(err)
			}
			var fresh walHeads
			whole, err := fresh.head(dir) // a fresh look: every file read whole
			if err != nil {
				t.Fatal(err)
			}
			if got != whole || got != w.latest() {
				t.Fatalf("zstd %v, round %d: incremental head %d, whole %d, database %d", zstd, round, got, whole, w.latest())
			}
		}
		if len(h.seen) == 0 {
			t.Fatal("nothing remembered: the test did not read on")
		}
		w.close()
	}
}
