package rocks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// TestKeptOptionsAfterCrash: a crash during an in-place replay leaves the
// bulk load's options (vector memtables, atomic flush) as the newest
// OPTIONS file, and the database's own kept aside. Every open takes the
// kept ones, and the first writable open writes them back as the newest
// OPTIONS file and drops the copy. Without the copy the bulk load's options
// would become the database's own.
func TestKeptOptionsAfterCrash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	own := "write_buffer_size=1234567;max_write_buffer_number=3"
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	co, err := grocksdb.GetOptionsFromString(o, own)
	if err != nil {
		t.Fatal(err)
	}
	defer co.Destroy()
	db, err := grocksdb.OpenDb(co, dir)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	// What an in-place replay cut short leaves: the copy, and the bulk
	// load's options as the newest OPTIONS file.
	if err := keepOwnOptions(dir); err != nil {
		t.Fatal(err)
	}
	bulk, err := loadOwnOptions(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := bulk.bulkLoad(true); err != nil {
		t.Fatal(err)
	}
	h, err := openOwn(dir, bulk, func(o *grocksdb.Options, n []string, c []*grocksdb.Options) (*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbColumnFamilies(o, dir, n, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	h.close()
	if got := newestOptions(t, dir); !strings.Contains(got, "VectorRepFactory") {
		t.Fatalf("the bulk load's open did not write its options:\n%s", got)
	}
	if got, err := newestOptionsFile(dir); err != nil || filepath.Base(got) != KeptOptionsName {
		t.Fatalf("newestOptionsFile = %q, %v; want the kept copy", got, err)
	}

	d, err := OpenWritable(dir, Options{Own: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, KeptOptionsName)); !os.IsNotExist(err) {
		t.Fatalf("the kept copy is still there after a writable open: %v", err)
	}
	got := newestOptions(t, dir)
	for _, want := range []string{"write_buffer_size=1234567", "max_write_buffer_number=3", "SkipListFactory", "atomic_flush=false"} {
		if !strings.Contains(got, want) {
			t.Fatalf("the newest OPTIONS file after the writable open lacks %q:\n%s", want, got)
		}
	}
}

// newestOptions returns the text of dir's newest OPTIONS-<n> file.
func newestOptions(t *testing.T, dir string) string {
	t.Helper()
	kept := filepath.Join(dir, KeptOptionsName)
	tmp := kept + ".aside"
	if err := os.Rename(kept, tmp); err == nil {
		defer os.Rename(tmp, kept)
	}
	path, err := newestOptionsFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
