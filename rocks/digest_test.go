package rocks

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// digestOf writes batches to a new database and digests it.
func digestOf(t *testing.T, fills ...func(w *writer, wb *grocksdb.WriteBatch)) Digest {
	t.Helper()
	w := newWriter(t, filepath.Join(t.TempDir(), "db"), 0, "a")
	for i, fill := range fills {
		w.write(func(wb *grocksdb.WriteBatch) { fill(w, wb) })
		if i%2 == 1 {
			w.flush()
		}
	}
	w.close()
	db, err := OpenReadOnly(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := db.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func put(cf, k, v string) func(w *writer, wb *grocksdb.WriteBatch) {
	return func(w *writer, wb *grocksdb.WriteBatch) { wb.PutCF(w.cfs[cf], []byte(k), []byte(v)) }
}

func del(cf, k string) func(w *writer, wb *grocksdb.WriteBatch) {
	return func(w *writer, wb *grocksdb.WriteBatch) { wb.DeleteCF(w.cfs[cf], []byte(k)) }
}

func TestDigest(t *testing.T) {
	base := digestOf(t, put("default", "ab", "c"), put("a", "x", "1"))
	same := digestOf(t, put("a", "x", "0"), put("default", "zz", "9"), put("a", "x", "1"),
		del("default", "zz"), put("default", "ab", "c")) // other history, same content
	if d := base.Diff(same); d != "" {
		t.Fatalf("same content, different digests: %s", d)
	}
	if base["default"].Keys != 1 || base["a"].Keys != 1 || len(base) != 2 {
		t.Fatalf("digest %v", base)
	}
	differ := map[string]Digest{
		"a/bc":        digestOf(t, put("default", "a", "bc"), put("a", "x", "1")),
		"other cf":    digestOf(t, put("a", "ab", "c"), put("default", "x", "1")),
		"extra key":   digestOf(t, put("default", "ab", "c"), put("a", "x", "1"), put("a", "y", "")),
		"other value": digestOf(t, put("default", "ab", "c"), put("a", "x", "2")),
	}
	for name, d := range differ {
		diff := base.Diff(d)
		if diff == "" {
			t.Errorf("%s: same digest as the base", name)
		}
		t.Logf("%s: %s", name, diff)
	}
	if d := base.Diff(Digest{"default": base["default"]}); !strings.Contains(d, `"a"`) {
		t.Errorf("missing column family: %q", d)
	}
}
