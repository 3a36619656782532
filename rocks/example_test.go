package rocks_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/linxGnu/grocksdb"
)

// A process serves reads from a database that another process writes: it
// opens the directory as a RocksDB secondary instance, which never changes
// the writer's files, and calls TryCatchUpWithPrimary to see new writes
// (poll it, e.g. every 100 ms). A database with several column families is
// opened with grocksdb.OpenDbAsSecondaryColumnFamilies and the names from
// grocksdb.ListColumnFamilies (rocks.OpenFollower does that).
func Example_secondaryReader() {
	root, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)
	dbDir, scratch := filepath.Join(root, "db"), filepath.Join(root, "secondary")

	// The writer: in real use, another process.
	wopts := grocksdb.NewDefaultOptions()
	defer wopts.Destroy()
	wopts.SetCreateIfMissing(true)
	writer, err := grocksdb.OpenDb(wopts, dbDir)
	if err != nil {
		log.Fatal(err)
	}
	defer writer.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := writer.Put(wo, []byte("greeting"), []byte("hello")); err != nil {
		log.Fatal(err)
	}

	// The reader.
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	opts.SetMaxOpenFiles(-1) // a secondary keeps every SST file open
	reader, err := grocksdb.OpenDbAsSecondary(opts, dbDir, scratch)
	if err != nil {
		log.Fatal(err)
	}
	defer reader.Close()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	get := func() string {
		v, err := reader.GetBytes(ro, []byte("greeting"))
		if err != nil {
			log.Fatal(err)
		}
		return string(v)
	}
	fmt.Println(get())

	if err := writer.Put(wo, []byte("greeting"), []byte("hello again")); err != nil {
		log.Fatal(err)
	}
	fmt.Println(get()) // not seen before a catch-up
	if err := reader.TryCatchUpWithPrimary(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(get())
	// Output:
	// hello
	// hello
	// hello again
}
