package rocks

import (
	"math/rand/v2"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
)

// TestUpdatesAcrossCatchUps reads the WAL while a writer writes, with many
// catch-ups and several new WAL files, then replays it into a new database.
func TestUpdatesAcrossCatchUps(t *testing.T) {
	const batches, flushEvery, round = 4000, 700, 40
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a", "b")
	f := follow(t, w.dir)
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()

	var read atomic.Uint64 // the reader's progress: the writer stays at most a round ahead
	done := make(chan error, 1)
	go func() { done <- writeConcurrently(w, batches, flushEvery, round, &read) }()
	got, catchUps, writerDone := []Batch(nil), 0, false
	for !writerDone || f.LatestSequence() < w.latest() {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			writerDone = true
		case <-time.After(time.Millisecond):
		}
		if err := f.CatchUp(); err != nil {
			t.Fatal(err)
		}
		catchUps++
		if got = drain(t, u, got); len(got) > 0 {
			read.Store(got[len(got)-1].Next() - 1)
		}
	}
	got = drain(t, u, got)
	if len(got) != batches || got[0].Seq != 1 || got[len(got)-1].Next() != w.latest()+1 {
		t.Fatalf("read %d batches up to seq %d, want %d up to %d", len(got), got[len(got)-1].Next()-1, batches, w.latest())
	}
	files := batches/flushEvery + 1
	t.Logf("%d batches over %d catch-ups; %d wal iterators created for %d wal files", len(got), catchUps, u.opened, files)
	if catchUps < batches/round/2 { // the writer stays within a round of the reader
		t.Fatalf("only %d catch-ups while writing: the test did not interleave", catchUps)
	}
	if u.opened > files {
		t.Fatalf("%d wal iterators for %d wal files: the iterator is not kept across catch-ups", u.opened, files)
	}

	copyDir := filepath.Join(t.TempDir(), "copy")
	applyAll(t, copyDir, got, Options{CreateIfMissing: true, ColumnFamilies: []string{"a", "b"}})
	compareDigests(t, f, copyDir)
}

// writeConcurrently writes n random batches, flushing one column family
// every flushEvery batches (a new WAL file each time). Every round batches it
// waits until the reader has read the previous round, so that reading and
// writing interleave however loaded the machine is. It returns errors
// instead of failing: it runs in its own goroutine.
func writeConcurrently(w *writer, n, flushEvery, round int, read *atomic.Uint64) error {
	rng := rand.New(rand.NewPCG(11, 12))
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	var prevRound uint64
	for i := 1; i <= n; i++ {
		wb := grocksdb.NewWriteBatch()
		for range 1 + rng.IntN(4) {
			addRandomOp(wb, rng, w.list[rng.IntN(len(w.list))])
		}
		err := w.db.Write(w.wo, wb)
		wb.Destroy()
		if err != nil {
			return err
		}
		if i%flushEvery == 0 {
			if err := w.db.FlushCF(w.list[i/flushEvery%len(w.list)], fo); err != nil {
				return err
			}
		}
		if i%round == 0 {
			for deadline := time.Now().Add(10 * time.Second); read.Load() < prevRound && time.Now().Before(deadline); {
				time.Sleep(100 * time.Microsecond)
			}
			prevRound = w.db.GetLatestSequenceNumber()
		}
	}
	return nil
}
