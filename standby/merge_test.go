package standby

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/rocks"
)

// mergeWriter writes merges: uint64add in "default", stringappend in
// "app". Its options are not destroyed (grocksdb v1.7.15 frees a merge
// operator twice).
type mergeWriter struct {
	dir string
	db  *grocksdb.DB
	cfs []*grocksdb.ColumnFamilyHandle
	wo  *grocksdb.WriteOptions
	rng *rand.Rand
}

func newMergeWriter(t *testing.T, dir string) *mergeWriter {
	t.Helper()
	base, err := grocksdb.GetOptionsFromString(nil, "create_if_missing=true;create_missing_column_families=true;"+
		"WAL_ttl_seconds=3600;write_buffer_size=65536;merge_operator=uint64add")
	if err != nil {
		t.Fatal(err)
	}
	app, err := grocksdb.GetOptionsFromString(base, "merge_operator=stringappend")
	if err != nil {
		t.Fatal(err)
	}
	w := &mergeWriter{dir: dir, wo: grocksdb.NewDefaultWriteOptions(), rng: rand.New(rand.NewPCG(8, 9))}
	if w.db, w.cfs, err = grocksdb.OpenDbColumnFamilies(base, dir, []string{"default", "app"}, []*grocksdb.Options{base, app}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, cf := range w.cfs {
			cf.Destroy()
		}
		w.db.Close()
	})
	return w
}

func (w *mergeWriter) write(t *testing.T, n int) {
	t.Helper()
	for range n {
		wb := grocksdb.NewWriteBatch()
		for range 1 + w.rng.IntN(4) {
			k := fmt.Appendf(nil, "k%03d", w.rng.IntN(100))
			wb.MergeCF(w.cfs[0], k, binary.LittleEndian.AppendUint64(nil, uint64(w.rng.IntN(9))))
			wb.MergeCF(w.cfs[1], k, fmt.Appendf(nil, "%d", w.rng.IntN(9)))
		}
		if err := w.db.Write(w.wo, wb); err != nil {
			t.Fatal(err)
		}
		wb.Destroy()
	}
}

// TestFollowMerges: a standby of a database that writes merges
// (uint64add and stringappend) bootstraps, follows, and holds what the
// source holds; before, it opened the database with RocksDB's defaults
// and stopped at the first merge.
func TestFollowMerges(t *testing.T) {
	store, _ := fileStore(t)
	w := newMergeWriter(t, filepath.Join(t.TempDir(), "src"))
	w.write(t, 300)
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	w.write(t, 300)
	dir := filepath.Join(t.TempDir(), "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	w.write(t, 600)
	latest := w.db.GetLatestSequenceNumber()
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == latest })
	waitFor(t, "the standby", func() bool {
		st := sb.sb.Status()
		if st.State == Failed {
			t.Fatalf("the standby failed: %s", st.Error)
		}
		return st.Applied == latest
	})
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := db.Digest()
	seq := db.LatestSequence()
	db.Close()
	if err != nil || seq != latest {
		t.Fatalf("the standby reopens at %d (%v), the source is at %d", seq, err, latest)
	}
	want := secondaryDigest(t, w.dir)
	if d := got.Diff(want); d != "" || want["app"].Keys == 0 {
		t.Fatalf("the standby differs from the source: %s", d)
	}
}
