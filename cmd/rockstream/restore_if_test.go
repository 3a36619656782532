package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreIfFlags: the flags a container's entrypoint runs restore
// with. --if-db-not-exists leaves a folder that holds files as it is and
// exits 0, and restores into a missing one; --if-replica-exists exits 0,
// creating nothing, when the location holds no archive; without it that
// is an error; --force with --if-db-not-exists is bad usage.
func TestRestoreIfFlags(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	if code, out, errOut := runCLI(t, "base", "--db", app.dir, "--to", url); code != exitOK {
		t.Fatalf("base: exit %d\n%s%s", code, out, errOut)
	}
	root := t.TempDir()

	held := filepath.Join(root, "held")
	if err := os.MkdirAll(held, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(held, "keep"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "restore", "--from", url, "--if-db-not-exists", held)
	if code != exitOK || !strings.Contains(out, "nothing restored (--if-db-not-exists)") {
		t.Fatalf("--if-db-not-exists into a folder with files: exit %d\n%s%s", code, out, errOut)
	}
	if entries, _ := os.ReadDir(held); len(entries) != 1 {
		t.Fatalf("--if-db-not-exists changed the folder: %v", entries)
	}
	if code, _, _ := runCLI(t, "restore", "--from", url, held); code != exitUsage {
		t.Fatalf("restore into a folder with files without the flag: exit %d, want %d", code, exitUsage)
	}

	fresh := filepath.Join(root, "fresh")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--if-db-not-exists", fresh); code != exitOK {
		t.Fatalf("--if-db-not-exists into a missing folder: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(fresh, "CURRENT")); err != nil {
		t.Fatalf("--if-db-not-exists into a missing folder restored nothing: %v", err)
	}

	empty := "file://" + t.TempDir()
	none := filepath.Join(root, "none")
	code, out, errOut = runCLI(t, "restore", "--from", empty, "--if-replica-exists", none)
	if code != exitOK || !strings.Contains(out, "nothing restored (--if-replica-exists)") {
		t.Fatalf("--if-replica-exists from an empty location: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Fatalf("--if-replica-exists from an empty location left %s: %v", none, err)
	}
	if code, _, errOut := runCLI(t, "restore", "--from", empty, none); code == exitOK || !strings.Contains(errOut, "holds no rockstream archive") {
		t.Fatalf("restore from an empty location without the flag: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "restore", "--from", url, "--force", "--if-db-not-exists", held); code != exitUsage || !strings.Contains(errOut, "exclusive") {
		t.Fatalf("--force with --if-db-not-exists: exit %d, want %d\n%s", code, exitUsage, errOut)
	}
}
