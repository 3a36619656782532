package rocks

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/testenv"
)

// TestTxnsConcurrentWriters writes a TransactionDB from several goroutines
// at once, so that RocksDB logs batches of several writers as one WAL
// record (write groups: a commit next to a prepare next to plain batches).
// WALTail reads it all with no gap up to the database's sequence, and a
// copy that applies it ends with the writer's contents.
func TestTxnsConcurrentWriters(t *testing.T) {
	w := newTxnWriter(t, t.TempDir(), 3600)
	const writers = 4
	rounds := testenv.Scale(150, 3000)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- concurrentWriter(w, g, rounds)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, got := readTail(t, w.dir, 1)
	if last := got[len(got)-1].Next() - 1; last != w.seq() {
		t.Fatalf("the WAL ends at %d, the database at %d", last, w.seq())
	}
	grouped := 0
	for _, b := range got {
		if markers(b.Data) > 1 {
			grouped++
		}
	}
	t.Logf("%d batches, %d of them with several writers' transactions (write groups)", len(got), grouped)
	db := openCopy(t, filepath.Join(t.TempDir(), "copy"), true)
	defer db.Close()
	applyChecked(t, db, got)
	if diff := w.digest().Diff(mustDigest(t, db)); diff != "" {
		t.Fatalf("copy differs from the writer: %s", diff)
	}
}

// markers counts the transaction markers of a batch.
func markers(data []byte) int {
	n := 0
	for off := headerSize; off < len(data); {
		r, next, err := nextRecord(data, off)
		if err != nil {
			return n
		}
		if r.tag == tagEndPrepare || r.tag == tagCommit || r.tag == tagRollback {
			n++
		}
		off = next
	}
	return n
}

// concurrentWriter prepares and commits or rolls back transactions of its
// own and writes plain batches, for rounds rounds.
func concurrentWriter(w *txnWriter, g, rounds int) error {
	rng := rand.New(rand.NewPCG(uint64(g), 17))
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	wo.SetSync(g%2 == 0) // writers that wait for fsync gather the others into groups
	to := grocksdb.NewDefaultTransactionOptions()
	defer to.Destroy()
	for i := range rounds {
		key := fmt.Appendf(nil, "g%d/%04d", g, i)
		if rng.IntN(3) == 0 {
			if err := w.db.PutCF(wo, w.list[rng.IntN(3)], key, []byte("plain")); err != nil {
				return err
			}
			continue
		}
		txn := w.db.TransactionBegin(wo, to, nil)
		err := txn.SetName(fmt.Sprintf("g%d-%d", g, i))
		for j := range 1 + rng.IntN(3) {
			if err == nil {
				err = txn.PutCF(w.list[j%3], append(key, byte('a'+j)), []byte("txn"))
			}
		}
		if err == nil {
			err = txn.Prepare()
		}
		if err == nil && rng.IntN(4) == 0 {
			err = txn.Rollback()
		} else if err == nil {
			err = txn.Commit()
		}
		txn.Destroy()
		if err != nil {
			return err
		}
	}
	return nil
}
