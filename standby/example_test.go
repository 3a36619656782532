package standby_test

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
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/standby"
)

// A program runs a warm standby in-process (library mode). When it is
// promoted (here through the Go API; POST /promote does the same), Run
// returns, and TakeOver opens the database read-write with the program's own
// options, hands it over, and archives it in-process on the new timeline:
// the program becomes the primary without a restart.
func Example_takeOver() {
	root, err := os.MkdirTemp("", "rockstream-example-")
	check(err)
	defer os.RemoveAll(root)
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := location.Open(ctx, "file://"+filepath.Join(root, "bucket"), location.Options{})
	check(err)

	// The old primary, elsewhere in real use: 100 writes archived.
	oldPrimary := runPrimary(ctx, filepath.Join(root, "primary"), store, quiet)

	// The program's standby.
	dir := filepath.Join(root, "standby")
	sb, err := standby.New(store, standby.Options{Dir: dir, WriterID: "app-2", Logger: quiet})
	check(err)
	done := make(chan error, 1)
	go func() { done <- sb.Run(ctx) }()
	waitUntil(func() bool { return sb.Status().Applied == 100 })

	// The old primary fails; the standby is promoted.
	oldPrimary()
	res, err := sb.Promote(ctx)
	check(err)
	check(<-done) // Run returns nil after a promotion
	fmt.Printf("promoted: timeline %d branches from timeline %d after sequence %d\n", res.Timeline, res.Parent, res.Branch)

	// The program takes the database over, with its own options (WAL
	// retention, so that the archiver reads every batch).
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	opts.SetWALTtlSeconds(3600)
	p, err := sb.TakeOver(ctx, standby.TakeoverOptions{
		Open:    func(dir string) (*grocksdb.DB, error) { return grocksdb.OpenDb(opts, dir) },
		Archive: archive.Options{SegmentAge: 100 * time.Millisecond},
	})
	check(err)
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := range 50 {
		check(p.DB.Put(wo, fmt.Appendf(nil, "new%03d", i), []byte("written after the promotion")))
	}
	last := p.DB.GetLatestSequenceNumber()
	waitUntil(func() bool { return p.Archiver().Stats().LastSequence == last })
	check(p.Close()) // stops the archiver once it uploaded what it read
	p.DB.Close()     // the program's handle: the program closes it

	// The new timeline restores to what the program wrote.
	r, err := restore.Run(ctx, store, restore.Options{Dir: filepath.Join(root, "restored"), Timeline: res.Timeline, Logger: quiet})
	check(err)
	fmt.Printf("restored timeline %d at sequence %d (the database's: %d)\n", r.Timeline, r.Sequence, last)
	// Output:
	// promoted: timeline 2 branches from timeline 1 after sequence 100
	// restored timeline 2 at sequence 150 (the database's: 150)
}

// runPrimary writes 100 keys to a database archived in library mode, and
// returns a function that stops it.
func runPrimary(ctx context.Context, dir string, store objstore.Store, log *slog.Logger) func() {
	opts := grocksdb.NewDefaultOptions()
	opts.SetCreateIfMissing(true)
	opts.SetWALTtlSeconds(3600)
	db, err := grocksdb.OpenDb(opts, dir)
	check(err)
	src, err := rocks.NewPrimary(db, dir)
	check(err)
	a, err := archive.New(src, store, archive.Options{WriterID: "app-1", WorkDir: dir + ".work", SegmentAge: 50 * time.Millisecond, Logger: log})
	check(err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	wo := grocksdb.NewDefaultWriteOptions()
	for i := range 100 {
		check(db.Put(wo, fmt.Appendf(nil, "key%03d", i), []byte("value")))
	}
	waitUntil(func() bool { return a.Stats().LastSequence == 100 })
	return func() {
		stop()
		check(<-done)
		src.Close()
		db.Close()
		wo.Destroy()
		opts.Destroy()
	}
}

func waitUntil(cond func() bool) {
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
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
