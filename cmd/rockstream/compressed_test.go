package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore/filestore"
)

// TestArchiveCompressedWAL archives a writer with wal_compression=zstd,
// two column families of small memtables (a WAL switch every few hundred
// batches), batches over a block: the archive holds every batch after the
// base, and a restore equals the database.
func TestArchiveCompressedWAL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	o.SetWALTtlSeconds(3600)
	o.SetWALCompression(grocksdb.ZSTDCompression)
	o.SetWriteBufferSize(64 << 10)
	db, cfs, err := grocksdb.OpenDbColumnFamilies(o, dir, []string{"default", "meta"}, []*grocksdb.Options{o, o})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, h := range cfs {
			h.Destroy()
		}
		db.Close()
	}()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	rng := rand.New(rand.NewPCG(61, 62))
	write := func(n int) {
		t.Helper()
		for i := range n {
			wb := grocksdb.NewWriteBatch()
			for range 1 + rng.IntN(3) {
				size := 20 + rng.IntN(200)
				if i%97 == 0 {
					size = 40_000 + rng.IntN(50_000) // over a block
				}
				v := make([]byte, size)
				for j := range v {
					v[j] = byte('a' + rng.IntN(4)) // compressible
				}
				wb.PutCF(cfs[rng.IntN(2)], fmt.Appendf(nil, "k%05d", rng.IntN(20_000)), v)
			}
			err := db.Write(wo, wb)
			wb.Destroy()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	write(500)
	bucket := t.TempDir()
	p := startCLI(t, nil, "archive", "--db", dir, "--to", "file://"+bucket, "--segment-age", "50ms", "--listen=")
	store, err := filestore.New(bucket)
	if err != nil {
		t.Fatal(err)
	}
	waitUntilT(t, "the first base", func() bool {
		p.failIfExited(t)
		m, _, err := manifest.Load(context.Background(), store)
		return err == nil && len(m.Bases) == 1
	})
	write(3000)
	want := db.GetLatestSequenceNumber()
	waitUntilT(t, "the archive to hold the database", func() bool {
		p.failIfExited(t)
		return archivedTo(t, store, 1) == want
	})
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	c, err := catalog.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Manifest.Holes) != 0 || len(c.Segments[1]) == 0 {
		t.Fatalf("archive of a compressed WAL: %d holes, %d segments", len(c.Manifest.Holes), len(c.Segments[1]))
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "archive", "*.log"))
	if len(logs) < 3 {
		t.Fatalf("%d WAL files in archive/: the writer did not switch WAL files while archived", len(logs))
	}
	head, err := os.ReadFile(logs[0])
	if err != nil || len(head) < 7 || head[6] != 9 {
		t.Fatalf("%s does not start with a SetCompressionType record (%v)", logs[0], err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, _, errOut := runCLI(t, "restore", "--from", "file://"+bucket, restored); code != exitOK {
		t.Fatalf("restore: exit %d\n%s", code, errOut)
	}
	sameDatabase(t, restored, dir)
	t.Logf("%d segments up to sequence %d from %d compressed WAL files", len(c.Segments[1]), want, len(logs))
}
