package rocks

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// TestReplayerTwoPhaseCommit replays what a TransactionDB writes
// (prepared sections, commits, rollbacks, batches with Noop markers) onto
// a base that a plain database wrote (its options say allow_2pc=false):
// the tag scan opens the recovery with allow_2pc, the sequence accounting
// takes a prepared section's sequences at its commit, and the result
// equals the source; in chunks of 256 bytes, so that a prepared section and
// its commit are recovered apart. Plain batches before the first marker
// are written directly, the rest by recovery.
func TestReplayerTwoPhaseCommit(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	w := newWriter(t, src, 3600)
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("base"), []byte("1")) })
	w.close()
	base := filepath.Join(tmp, "base")
	copyDir(t, src, base)
	baseSeq := latestOf(t, base)
	// Plain batches first, written by the direct path; the first batch
	// with a marker switches the replay to recovery.
	w = newWriter(t, src, 3600)
	for i := range 50 {
		w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte(fmt.Sprint("plain", i)), []byte("v")) })
	}
	w.close()
	plainEnd := latestOf(t, src)
	writeTransactions(t, src)
	_, want := dirDigest(t, src)
	dir := filepath.Join(tmp, "replay")
	copyDir(t, base, dir)
	r, err := NewReplayer(dir, ReplayOptions{ChunkBytes: 256})
	if err != nil {
		t.Fatal(err)
	}
	if r.Sequence() != baseSeq {
		t.Fatalf("the base opens at %d, want %d", r.Sequence(), baseSeq)
	}
	n := 0
	for _, b := range rawBatches(t, src) {
		seq, _, _ := batchHeader(b)
		if seq > baseSeq {
			if err := r.Add(b); err != nil {
				failReplay(t, dir, err)
			}
			n++
		}
		if seq == plainEnd && (r.direct == nil || len(r.chunks) != 0) {
			t.Fatalf("the plain batches were not written directly (open %v, %d WAL files)", r.direct != nil, len(r.chunks))
		}
	}
	if err := r.Finish(want); err != nil {
		failReplay(t, dir, err)
	}
	if !r.twoPC || len(r.chunks) < 3 || n < 20 {
		t.Fatalf("two-phase-commit markers seen: %v, %d WAL files, %d batches: the test shows little", r.twoPC, len(r.chunks), n)
	}
	got, seq := dirDigest(t, dir)
	wantD, _ := dirDigest(t, src)
	if d := got.Diff(wantD); d != "" || seq != want {
		t.Fatalf("replayed to %d (want %d): %s", seq, want, d)
	}
}

// writeTransactions writes transactions into the database in dir with a
// TransactionDB, and returns the sequence it started at.
func writeTransactions(t *testing.T, dir string) uint64 {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetWALTtlSeconds(3600)
	to := grocksdb.NewDefaultTransactionDBOptions()
	defer to.Destroy()
	db, err := grocksdb.OpenTransactionDb(o, to, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wo, txo := grocksdb.NewDefaultWriteOptions(), grocksdb.NewDefaultTransactionOptions()
	defer wo.Destroy()
	defer txo.Destroy()
	start := latestOf(t, dir)
	var open []*grocksdb.Transaction
	for i := range 30 {
		tx := db.TransactionBegin(wo, txo, nil)
		if err := tx.SetName(fmt.Sprintf("tx%d", i)); err != nil {
			t.Fatal(err)
		}
		for j := range 1 + i%3 {
			tx.Put(fmt.Appendf(nil, "k%d-%d", i, j), fmt.Appendf(nil, "v%d", i))
		}
		if i%3 != 2 {
			if err := tx.Prepare(); err != nil {
				t.Fatal(err)
			}
		}
		open = append(open, tx)
		if err := db.Put(wo, fmt.Appendf(nil, "plain%d", i%7), fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
		if len(open) == 3 { // commit them out of order, roll one back
			for k, tx := range slices.Backward(open) {
				if k == 1 && i%2 == 0 {
					err = tx.Rollback()
				} else {
					err = tx.Commit()
				}
				if err != nil {
					t.Fatal(err)
				}
				tx.Destroy()
			}
			open = open[:0]
		}
	}
	return start
}

func latestOf(t *testing.T, dir string) uint64 {
	t.Helper()
	_, seq := dirDigest(t, dir)
	return seq
}

// rawBatches reads every batch of the WAL files of dir (and archive/), in
// file order, with a reader of the legacy record format of its own (no
// continuity check: WALTail's does not know two-phase commit yet).
func rawBatches(t *testing.T, dir string) [][]byte {
	t.Helper()
	var files []string
	for _, d := range []string{filepath.Join(dir, "archive"), dir} {
		fs, _ := filepath.Glob(filepath.Join(d, "*.log"))
		files = append(files, fs...)
	}
	slices.SortFunc(files, func(a, b string) int {
		na, _ := fileNumber(filepath.Base(a))
		nb, _ := fileNumber(filepath.Base(b))
		return int(na) - int(nb)
	})
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var frag []byte
		for off := 0; off+walHeaderSize <= len(data); {
			if left := walBlockSize - off%walBlockSize; left < walHeaderSize {
				off += left
				continue
			}
			n, typ := int(binary.LittleEndian.Uint16(data[off+4:])), data[off+6]
			if typ == walZeroType || off+walHeaderSize+n > len(data) {
				break
			}
			frag = append(frag, data[off+walHeaderSize:off+walHeaderSize+n]...)
			if typ == walFullType || typ == walLastType {
				out = append(out, frag)
				frag = nil
			}
			off += walHeaderSize + n
		}
	}
	return out
}
