package archive_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/linxGnu/grocksdb"
	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// A program that owns its RocksDB database archives it in-process (library
// mode): it wraps its own read-write handle in a rocks.Primary and runs an
// Archiver next to its writes. The archive is the same as the sidecar's.
func Example_libraryMode() {
	root, err := os.MkdirTemp("", "rockstream-example-")
	check(err)
	defer os.RemoveAll(root)
	dbDir := filepath.Join(root, "db")

	// The program's database. WAL_ttl_seconds makes RocksDB keep the WAL
	// files that a flush frees (in db/archive/), so that the archiver can
	// still read them.
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	opts.SetCreateIfMissing(true)
	opts.SetWALTtlSeconds(3600)
	db, err := grocksdb.OpenDb(opts, dbDir)
	check(err)
	defer db.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	put := func(from, to int) {
		for i := from; i < to; i++ {
			check(db.Put(wo, fmt.Appendf(nil, "key%03d", i), []byte("value")))
		}
	}
	put(0, 10)

	// The archiver, over the program's handle.
	src, err := rocks.NewPrimary(db, dbDir)
	check(err)
	defer src.Close() // deferred calls run last first: before db.Close
	ctx := context.Background()
	store, err := location.Open(ctx, "file://"+filepath.Join(root, "bucket"), location.Options{})
	check(err)
	a, err := archive.New(src, store, archive.Options{
		WorkDir: filepath.Join(root, "work"), // checkpoints, while a base uploads
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	check(err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()

	waitUntil(func() bool { return a.Stats().Bases == 1 }) // a new archive starts with a base
	put(10, 100)
	waitUntil(func() bool { return a.Stats().LastSequence == db.GetLatestSequenceNumber() })
	stop() // as on SIGTERM: Run uploads what it has read, then returns
	check(<-done)

	m, _, err := manifest.Load(ctx, store)
	check(err)
	fmt.Println("base at sequence", m.Bases[0].Sequence)
	fmt.Println("batches archived after it:", countBatches(ctx, store, m, a.Timeline()))
	// Output:
	// base at sequence 10
	// batches archived after it: 90
}

// countBatches reads back the segments of a timeline.
func countBatches(ctx context.Context, store objstore.Store, m *manifest.Manifest, tl uint32) int {
	segs, err := catalog.Timeline(ctx, store, m, tl)
	check(err)
	n := 0
	for _, s := range segs {
		rc, _, err := store.Get(ctx, s.Key, objstore.GetOptions{})
		check(err)
		r, err := segments.NewReader(rc, segments.ReaderOptions{})
		check(err)
		for _, err = r.Next(); err == nil; _, err = r.Next() {
			n++
		}
		rc.Close()
		if err != io.EOF {
			log.Fatal(err)
		}
	}
	return n
}

func waitUntil(cond func() bool) {
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatal("timed out")
		}
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
