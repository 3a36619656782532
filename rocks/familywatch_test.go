package rocks

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/manifest"
)

// readAll reads the source's batches until none is left and returns the
// family changes it gave after each.
func readAll(t *testing.T, s *FollowerSource) []manifest.ColumnFamilyChange {
	t.Helper()
	var out []manifest.ColumnFamilyChange
	for {
		_, ok, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		c, _ := s.FamilyChanges()
		out = append(out, c...)
		if !ok {
			return out
		}
	}
}

// TestFamilyWatchPlacement: a create noticed by a look at the MANIFEST is
// placed right before the first batch that writes to the family when that
// batch is before the WAL's head; a drop at the WAL's head when noticed.
func TestFamilyWatchPlacement(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "db"), 3600)
	put := func(name string) uint64 {
		return w.write(func(wb *grocksdb.WriteBatch) { wb.PutCF(w.cfs[name], []byte("k"), []byte(name)) })
	}
	for range 5 {
		put("default")
	}
	s, err := NewFollowerSource(w.dir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	clock := time.Unix(1000, 0)
	s.fam.now = func() time.Time { return clock }
	base, err := s.Checkpoint(filepath.Join(t.TempDir(), "ckpt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Seek(base + 1); err != nil {
		t.Fatal(err)
	}
	w.addFamily("a")
	var beforeA uint64
	for range 3 {
		beforeA = put("default")
	}
	put("a")
	put("a")
	got := readAll(t, s)
	if len(got) != 1 || got[0].Op != manifest.CFCreate || got[0].Name != "a" || got[0].ID != 1 || got[0].After != beforeA {
		t.Fatalf("changes %+v; want the create of a (id 1) after %d, the batch before its first write", got, beforeA)
	}
	w.dropFamily("a")
	var head uint64
	for range 2 {
		head = put("default")
	}
	if got := readAll(t, s); len(got) != 0 {
		t.Fatalf("changes %+v before the next look at the MANIFEST", got)
	}
	clock = clock.Add(familyCheckInterval)
	got = readAll(t, s)
	if len(got) != 1 || got[0].Op != manifest.CFDrop || got[0].ID != 1 || got[0].After != head {
		t.Fatalf("changes %+v; want the drop of a after %d, the WAL's head", got, head)
	}
	// A family created and not written: placed at the WAL's head once the
	// batches read reach it.
	w.addFamily("b")
	end := put("default")
	clock = clock.Add(familyCheckInterval)
	got = readAll(t, s)
	if len(got) != 1 || got[0].Op != manifest.CFCreate || got[0].Name != "b" || got[0].After != end {
		t.Fatalf("changes %+v; want the create of b after %d", got, end)
	}
}
