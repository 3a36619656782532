package rocks

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadWALRetention(t *testing.T) {
	cases := []struct {
		dir           string
		ttl, size     uint64
		file, wantErr string
	}{
		{dir: "retention", ttl: 3600, size: 512, file: "OPTIONS-000012"}, // not .dbtmp, not 000009
		{dir: "wide", ttl: 2, size: 512, file: "OPTIONS-1000000"},        // by number, not by name
		{dir: "nodboptions", wantErr: "no [DBOptions] section"},
		{dir: "nokey", wantErr: "no WAL_size_limit_MB"},
		{dir: "badvalue", wantErr: "WAL_ttl_seconds: strconv.ParseUint"},
		{dir: "noopts", wantErr: "no OPTIONS file"},
	}
	for _, c := range cases {
		t.Run(c.dir, func(t *testing.T) {
			dir := filepath.Join("testdata", c.dir)
			ttl, size, file, err := ReadWALRetention(dir)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("got %v, want an error naming %s with %q", err, dir, c.wantErr)
				}
				return
			}
			if err != nil || ttl != c.ttl || size != c.size || file != filepath.Join(dir, c.file) {
				t.Fatalf("got %d, %d, %s, %v; want %d, %d, %s", ttl, size, file, err, c.ttl, c.size, c.file)
			}
		})
	}
	if _, _, _, err := ReadWALRetention("testdata/noopts"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no OPTIONS file: %v, want fs.ErrNotExist", err)
	}
}

// TestReadWALRetentionRealDB reads what RocksDB itself wrote.
func TestReadWALRetentionRealDB(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 1234)
	ttl, size, file, err := ReadWALRetention(w.dir)
	if err != nil || ttl != 1234 || size != 0 || !strings.HasPrefix(filepath.Base(file), "OPTIONS-") {
		t.Fatalf("got %d, %d, %s, %v; want 1234, 0", ttl, size, file, err)
	}
	id, err := ReadIdentity(w.dir)
	if err != nil || len(id) != 36 {
		t.Fatalf("identity %q, %v; want a uuid", id, err)
	}
}

func TestReadIdentity(t *testing.T) {
	id, err := ReadIdentity("testdata/retention")
	if err != nil || id != "0b9e6f32-4d1c-4a5e-9a3f-5d2c7e8f1a2b" {
		t.Fatalf("got %q, %v", id, err)
	}
	if _, err := ReadIdentity("testdata/noopts"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("no IDENTITY: %v, want fs.ErrNotExist", err)
	}
}

// TestNotDatabase: a missing directory, an empty one, a file, and a
// directory without CURRENT are refused by every entry point, naming the
// path, before RocksDB is called.
func TestNotDatabase(t *testing.T) {
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	file := filepath.Join(root, "file")
	noCurrent := filepath.Join(root, "nocurrent")
	for _, d := range []string{empty, noCurrent} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{file, filepath.Join(noCurrent, "IDENTITY"), filepath.Join(noCurrent, "MANIFEST-000001")} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(root, "missing")
	open := map[string]func(string) error{
		"OpenFollower": func(d string) error { _, err := OpenFollower(d, filepath.Join(root, "scratch")); return err },
		"OpenReadOnly": func(d string) error { _, err := OpenReadOnly(d); return err },
		"OpenWritable": func(d string) error { _, err := OpenWritable(d, Options{}); return err },
		"ReadIdentity": func(d string) error { _, err := ReadIdentity(d); return err },
		"ReadWALRetention": func(d string) error {
			_, _, _, err := ReadWALRetention(d)
			return err
		},
	}
	for name, fn := range open {
		for _, d := range []string{missing, empty, file, noCurrent} {
			err := fn(d)
			if !errors.Is(err, ErrNotDatabase) || !strings.Contains(err.Error(), d) {
				t.Errorf("%s(%s): %v, want ErrNotDatabase naming the path", name, d, err)
			}
		}
	}
	if _, err := OpenFollower(missing, filepath.Join(root, "scratch")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing dir: %v, want fs.ErrNotExist too", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("something was created in %s: %v", empty, entries)
	}
}

func TestCheckpointFiles(t *testing.T) {
	dir := t.TempDir()
	for name, size := range map[string]int{"CURRENT": 16, "000004.log": 100, "MANIFEST-000005": 50} {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	files, err := CheckpointFiles(dir)
	want := []File{{"000004.log", 100}, {"CURRENT", 16}, {"MANIFEST-000005", 50}}
	if err != nil || len(files) != len(want) {
		t.Fatalf("got %v, %v; want %v", files, err, want)
	}
	for i := range want {
		if files[i] != want[i] {
			t.Fatalf("got %v, want %v", files, want)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckpointFiles(dir); err == nil || !strings.Contains(err.Error(), "archive") {
		t.Fatalf("a subdirectory: %v, want an error naming it", err)
	}
}
