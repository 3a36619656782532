package standby

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
)

// TestFollowLargeBatch: a standby applies (rocks.DB.Apply) a write batch
// of 80 values of 1 MiB, above a segment block's 64 MiB and so cut into
// fragments in its segment, between small batches, and ends equal to the
// source.
func TestFollowLargeBatch(t *testing.T) {
	store, _ := fileStore(t)
	root := t.TempDir()
	src := newSource(t, filepath.Join(root, "db"))
	src.write(t, 50)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir := filepath.Join(root, "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	src.write(t, 50)
	wb := grocksdb.NewWriteBatch()
	val := make([]byte, 1<<20)
	for i := range 80 {
		for j := range val {
			val[j] = byte(src.rng.Uint32())
		}
		wb.Put(fmt.Appendf(nil, "big%03d", i), val)
	}
	if err := src.db.Write(src.wo, wb); err != nil {
		t.Fatal(err)
	}
	wb.Destroy()
	big := src.latest()
	src.write(t, 50)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if got, want := secondaryDigest(t, dir), src.digest(t); got.Diff(want) != "" {
		t.Fatalf("a secondary of the standby differs from the source: %s", got.Diff(want))
	}
	if err := sb.stop(t); err != nil {
		t.Fatalf("standby: %v", err)
	}
	checkDB(t, dir, src)
	t.Logf("the standby applied the batch ending at %d and went on to %d", big, src.latest())
}
