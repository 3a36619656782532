package rocks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/testops"
)

// builtinOps are the built-in merge operators by their short names
// (utilities/merge_operators.cc), with two operands each and the value
// RocksDB gives them merged over nothing.
var builtinOps = []struct {
	name string
	a, b []byte
}{
	{"uint64add", u64(5), u64(7)},
	{"stringappend", []byte("a"), []byte("b")},
	{"stringappendtest", []byte("a"), []byte("b")},
	{"max", []byte("a"), []byte("b")},
	{"put", []byte("a"), []byte("b")},
	{"bytesxor", []byte{1, 2}, []byte{3, 1}},
	{"sortlist", []byte("3"), []byte("2")},
}

func u64(n uint64) []byte { return binary.LittleEndian.AppendUint64(nil, n) }

// writeWithMerge makes a database in dir whose family "m" has the merge
// operator name (set by name, as an application of RocksDB does), merges
// a and b into key k, and returns the value it reads back. The WAL keeps
// the merges: the database is closed without a flush.
func writeWithMerge(t *testing.T, dir, name string, a, b []byte) []byte {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	m, err := grocksdb.GetOptionsFromString(o, "merge_operator="+name)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	defer m.Destroy()
	db, cfs, err := grocksdb.OpenDbColumnFamilies(o, dir, []string{"default", "m"}, []*grocksdb.Options{o, m})
	if err != nil {
		t.Fatalf("%s: open: %v", name, err)
	}
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for _, v := range [][]byte{a, b} {
		// RocksDB's sortlist operator reads past its operands (sortlist.cc
		// MakeVector) and can throw from std::stoi, which aborts the
		// process: it gets puts, never merges, so nothing merges with it.
		write := db.MergeCF
		if name == "sortlist" {
			write = db.PutCF
		}
		if err := write(wo, cfs[1], []byte("k"), v); err != nil {
			t.Fatalf("%s: merge: %v", name, err)
		}
	}
	var got []byte
	if name != "sortlist" {
		got = getCF(t, db, cfs[1], []byte("k"))
	}
	for _, cf := range cfs {
		cf.Destroy()
	}
	db.Close()
	return got
}

// TestOwnOptionsMergeOperators pins what RocksDB 7.8.3 does with the
// built-in merge operators that an OPTIONS file names, and shows that a
// database opened with its own options (loadOwnOptions) recovers merges
// of each: its WAL replays with the operator and the value is the
// writer's.
func TestOwnOptionsMergeOperators(t *testing.T) {
	for _, op := range builtinOps {
		t.Run(op.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			want := writeWithMerge(t, dir, op.name, op.a, op.b)
			if fs, _, err := InspectOptions(dir, nil); err != nil || len(fs) != 0 {
				t.Fatalf("InspectOptions: %v, %v; want no finding for a built-in operator", fs, err)
			}
			if !loadResolves(t, dir) {
				t.Errorf("LoadLatestOptions alone did not resolve %q (RocksDB 7.8.3 did when this was written)", op.name)
			}
			o, err := loadOwnOptions(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			h, err := openOwn(dir, o, func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
				return grocksdb.OpenDbColumnFamilies(o, dir, n, co)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer h.close()
			if !h.merges[1] || h.merges[0] {
				t.Fatalf("families with a merge operator: %v, want only id 1", h.merges)
			}
			if got := h.latestSequence(); got != 2 {
				t.Fatalf("recovered to sequence %d, want 2", got)
			}
			if op.name == "sortlist" {
				// SortList reads an operand up to a NUL byte, past its end
				// (sortlist.cc MakeVector): its value depends on memory.
				return
			}
			if got := getCF(t, h.db, h.cfs[1], []byte("k")); len(want) == 0 || !bytes.Equal(got, want) {
				t.Fatalf("recovered value %q, the writer read %q", got, want)
			}
		})
	}
}

// loadResolves says whether the options that LoadLatestOptions gives,
// unchanged, have the merge operator: a database opened with them takes a
// Merge (DBImpl::Merge refuses one without an operator).
func loadResolves(t *testing.T, src string) bool {
	t.Helper()
	env, cache := grocksdb.NewDefaultEnv(), grocksdb.NewLRUCache(1<<20)
	defer cache.Destroy()
	l, err := grocksdb.LoadLatestOptions(src, env, false, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Destroy()
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	cfo := l.ColumnFamilyOpts()
	dir := filepath.Join(t.TempDir(), "fresh")
	db, cfs, err := grocksdb.OpenDbColumnFamilies(o, dir, l.ColumnFamilyNames(), []*grocksdb.Options{&cfo[0], &cfo[1]})
	if err != nil {
		t.Fatal(err)
	}
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	err = db.MergeCF(wo, cfs[1], []byte("k"), []byte("v"))
	for _, cf := range cfs {
		cf.Destroy()
	}
	db.Close()
	return err == nil
}

// TestInspectOptionsCustomOperator: a merge operator of the application's
// own is a finding, and loadOwnOptions refuses it with ErrForeignOptions
// unless Operators has it.
func TestInspectOptionsCustomOperator(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	writeCustom(t, dir, nil)
	fs, _, err := InspectOptions(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := Finding{Family: "m", Kind: "merge operator", Name: testops.ConcatName}
	if len(fs) != 1 || fs[0] != want {
		t.Fatalf("findings %v, want [%v]", fs, want)
	}
	_, err = loadOwnOptions(dir, nil)
	var oe *OptionsError
	if !errors.Is(err, ErrForeignOptions) || !errors.As(err, &oe) || !strings.Contains(err.Error(), "--hand-off") {
		t.Fatalf("load without the operator: %v, want an *OptionsError that says what to do", err)
	}
	ops := &Operators{Merge: map[string]grocksdb.MergeOperator{testops.ConcatName: testops.Concat{}}}
	if fs, _, _ := InspectOptions(dir, ops); len(fs) != 0 {
		t.Fatalf("findings with the operator given: %v", fs)
	}
	o, err := loadOwnOptions(dir, ops)
	if err != nil {
		t.Fatal(err)
	}
	o.destroy()
}

// writeCustom makes a database in dir whose family "m" has the testops.Concat
// merge operator, and applies fill to it (nil: nothing).
func writeCustom(t *testing.T, dir string, fill func(db *grocksdb.DB, cfs []*grocksdb.ColumnFamilyHandle)) {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	// m is not destroyed: grocksdb v1.7.15's Options.Destroy frees a Go
	// merge operator that the options' shared_ptr has freed already.
	m := grocksdb.NewDefaultOptions()
	m.SetMergeOperator(testops.Concat{})
	db, cfs, err := grocksdb.OpenDbColumnFamilies(o, dir, []string{"default", "m"}, []*grocksdb.Options{o, m})
	if err != nil {
		t.Fatal(err)
	}
	if fill != nil {
		fill(db, cfs)
	}
	for _, cf := range cfs {
		cf.Destroy()
	}
	db.Close()
}

// getCF reads a key of a column family, copied.
func getCF(t *testing.T, db *grocksdb.DB, cf *grocksdb.ColumnFamilyHandle, key []byte) []byte {
	t.Helper()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	s, err := db.GetCF(ro, cf, key)
	if err != nil {
		t.Fatalf("get %q: %v", key, err)
	}
	defer s.Free()
	return bytes.Clone(s.Data())
}

// TestOwnOptionsNewerRocksDB: an OPTIONS file that a newer RocksDB wrote,
// with options 7.8.3 does not know, loads (they are ignored); the same
// unknown option in a file of 7.8.3 itself is an error, not ignored.
func TestOwnOptionsNewerRocksDB(t *testing.T) {
	for _, c := range []struct {
		version string
		ok      bool
	}{{"9.1.0", true}, {"7.8.3", false}} {
		dir := filepath.Join(t.TempDir(), "db")
		writeWithMerge(t, dir, "uint64add", u64(1), u64(2))
		file, err := newestOptionsFile(dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "rocksdb_version=7.8.3", "rocksdb_version="+c.version, 1)
		s = strings.Replace(s, "[DBOptions]\n", "[DBOptions]\n  option_of_the_future=1\n", 1)
		if s == string(b) || !strings.Contains(s, "option_of_the_future") {
			t.Fatal("the OPTIONS file was not changed")
		}
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		db, err := OpenReadOnly(dir)
		if (err == nil) != c.ok {
			t.Fatalf("rocksdb_version=%s: open: %v, want ok=%v", c.version, err, c.ok)
		}
		if err == nil {
			db.Close()
		}
	}
}
