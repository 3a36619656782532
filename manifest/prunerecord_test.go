package manifest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// TestGoldenPruneRecord pins the JSON of a pending record, format 1: the
// golden file decodes to these values, and PutPruneRecord writes the same
// bytes at a key that holds its creation time.
func TestGoldenPruneRecord(t *testing.T) {
	data := readGolden(t, "prune.json")
	r, err := manifest.ParsePruneRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2025, 3, 10, 4, 0, 0, 123456789, time.UTC)
	if r.Format != 1 || !r.Created.Equal(created) || !r.NotBefore.Equal(created.Add(time.Hour)) ||
		r.Policy != "keep the last 2 bases of each timeline" || len(r.Objects) != 4 ||
		r.Objects[3].Key != "segments/00000001/00000000000004b1.seg" || !strings.HasPrefix(r.Objects[2].Why, "SST file named only") {
		t.Fatalf("golden record decodes to %+v", r)
	}
	ctx := context.Background()
	s := newStore(t)
	key, err := manifest.PutPruneRecord(ctx, s, r)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(key, "prune/182b550e23914d15-") || len(key) != len("prune/182b5ea82ef6d315-01234567.json") {
		t.Errorf("key %s, want prune/<created in unix nanoseconds, 16 hex>-<8 hex>.json", key)
	}
	got, err := os.ReadFile(filepath.Join(s.Root(), key))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("PutPruneRecord wrote\n%s\nwant\n%s", got, data)
	}
	back, err := manifest.LoadPruneRecord(ctx, s, key)
	if err != nil || !back.Created.Equal(created) {
		t.Errorf("LoadPruneRecord: %+v, %v", back, err)
	}
}

func TestPruneRecordKey(t *testing.T) {
	t1 := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	key := manifest.PruneRecordKey(t1, 0xabcdef01)
	got, err := manifest.ParsePruneRecordKey(key)
	if err != nil || !got.Equal(t1) {
		t.Fatalf("ParsePruneRecordKey(%s) = %v, %v", key, got, err)
	}
	// Later records sort after earlier ones, as a listing shows them.
	keys := []string{manifest.PruneRecordKey(t1.Add(time.Hour), 0), manifest.PruneRecordKey(t1, 0xffffffff), manifest.PruneRecordKey(t1.Add(-time.Nanosecond), 5)}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	if sorted[0] != keys[2] || sorted[1] != keys[1] || sorted[2] != keys[0] {
		t.Errorf("keys do not sort by time: %v", sorted)
	}
	for _, bad := range []string{"prune/182b5ea82ef6d315-0123456.json", "prune/182B5EA82EF6D315-01234567.json", "prune/182b5ea82ef6d315_01234567.json",
		"prune/182b5ea82ef6d315-01234567.jsonx", "x/182b5ea82ef6d315-01234567.json", "prune/ffffffffffffffff-01234567.json", "prune/"} {
		if _, err := manifest.ParsePruneRecordKey(bad); !errors.Is(err, manifest.ErrInvalid) {
			t.Errorf("ParsePruneRecordKey(%q): %v", bad, err)
		}
	}
}

func TestParseBaseFileKey(t *testing.T) {
	tl, seq, name, err := manifest.ParseBaseFileKey("bases/00000002/00000000000003e8/MANIFEST-000017")
	if err != nil || tl != 2 || seq != 1000 || name != "MANIFEST-000017" {
		t.Fatalf("got %d %d %q %v", tl, seq, name, err)
	}
	if _, _, name, err := manifest.ParseBaseFileKey(manifest.FileListKey(1, 5)); err != nil || name != "files.json" {
		t.Errorf("file list key: %q %v", name, err)
	}
	for _, bad := range []string{"bases/00000000/00000000000003e8/CURRENT", "bases/00000001/00000000000003E8/CURRENT", "bases/00000001/00000000000003e8/",
		"bases/00000001/00000000000003e8/../x", "bases/00000001/00000000000003e8/a/b", "bases/0000001/00000000000003e8/CURRENT",
		"bases/00000001/ffffffffffffffff/CURRENT", "sst/x", "bases/00000001/00000000000003e8"} {
		if _, _, _, err := manifest.ParseBaseFileKey(bad); !errors.Is(err, manifest.ErrInvalid) {
			t.Errorf("ParseBaseFileKey(%q): %v", bad, err)
		}
	}
}

// TestHostilePruneRecords: a record with a key that prune must never
// delete, an absurd size or an unknown field is refused with ErrInvalid,
// naming the record and the field.
func TestHostilePruneRecords(t *testing.T) {
	golden := readGolden(t, "prune.json")
	edit := func(fn func(map[string]any)) []byte {
		var doc map[string]any
		if err := json.Unmarshal(golden, &doc); err != nil {
			t.Fatal(err)
		}
		fn(doc)
		data, _ := json.Marshal(doc)
		return data
	}
	setKey := func(k string) []byte {
		return edit(func(d map[string]any) { d["objects"].([]any)[1].(map[string]any)["key"] = k })
	}
	many := make([]any, manifest.MaxPruneObjects+1)
	for i := range many {
		many[i] = map[string]any{"key": "segments/00000001/00000000000004b1.seg", "why": "x"}
	}
	cases := map[string]struct {
		data  []byte
		field string
	}{
		"dotdot":          {setKey("bases/00000001/00000000000003e8/../../manifest.json"), "objects[1].key"},
		"manifest":        {setKey("manifest.json"), "objects[1].key"},
		"absolute":        {setKey("/etc/passwd"), "objects[1].key"},
		"probe":           {setKey("probe/0123456789abcdef0123456789abcdef"), "objects[1].key"},
		"another record":  {setKey("prune/182b5ea82ef6d315-01234567.json"), "objects[1].key"},
		"sst prefix only": {setKey("sst/notahash.sst"), "objects[1].key"},
		"segment upper":   {setKey("segments/00000001/00000000000004B1.seg"), "objects[1].key"},
		"base dir":        {setKey("bases/00000001/00000000000003e8"), "objects[1].key"},
		"nul":             {setKey("bases/00000001/00000000000003e8/CUR\x00RENT"), "objects[1].key"},
		"duplicate":       {setKey("bases/00000001/00000000000003e8/files.json"), "objects[1].key"},
		"unknown field":   {edit(func(d map[string]any) { d["delete_everything"] = true }), `unknown field "delete_everything"`},
		"format 2":        {edit(func(d map[string]any) { d["format"] = 2 }), "version 2"},
		"no objects":      {edit(func(d map[string]any) { d["objects"] = []any{} }), "invalid objects"},
		"too many":        {edit(func(d map[string]any) { d["objects"] = many }), "invalid objects"},
		"no why":          {edit(func(d map[string]any) { d["objects"].([]any)[0].(map[string]any)["why"] = "" }), "objects[0].why"},
		"early":           {edit(func(d map[string]any) { d["not_before"] = "2025-03-10T03:00:00Z" }), "not_before"},
		"no created":      {edit(func(d map[string]any) { delete(d, "created") }), "created"},
		"huge":            {append(bytes.Repeat([]byte(" "), manifest.MaxPruneRecordSize), golden...), "larger than"},
		"trailing":        {append(slices.Clone(golden), []byte("{}")...), "data after"},
	}
	ctx := context.Background()
	s := newStore(t)
	key := manifest.PruneRecordKey(time.Date(2025, 3, 10, 4, 0, 0, 123456789, time.UTC), 7)
	for name, c := range cases {
		put(t, s, key, c.data)
		_, err := manifest.LoadPruneRecord(ctx, s, key)
		if !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v; want ErrInvalid naming %s and %q", name, err, key, c.field)
		}
	}
	// A record whose time is not its key's.
	other := manifest.PruneRecordKey(time.Date(2025, 3, 10, 4, 0, 0, 0, time.UTC), 7)
	put(t, s, other, golden)
	if _, err := manifest.LoadPruneRecord(ctx, s, other); !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "the key says") {
		t.Errorf("created differs from the key: %v", err)
	}
	if _, err := manifest.LoadPruneRecord(ctx, s, "prune/junk.json"); !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "prune/junk.json") {
		t.Errorf("a key of another form: %v", err)
	}
	if _, err := manifest.LoadPruneRecord(ctx, s, manifest.PruneRecordKey(time.Now(), 1)); !objstore.IsNotFound(err) {
		t.Errorf("a missing record: %v", err)
	}
}
