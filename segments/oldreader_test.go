package segments

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/testenv"
)

// lastV1Commit is the last commit whose segments package reads and writes
// format version 1 only.
const lastV1Commit = "67d809e989730edae10deecd34cefab926e145b1"

// oldReader is a program built from the segments package of lastV1Commit:
// it reads the segment named by its argument and prints the error.
const oldReader = `package main

import (
	"fmt"
	"io"
	"os"

	"github.com/rockstream/rockstream/segments"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	r, err := segments.NewReader(f, segments.ReaderOptions{})
	for err == nil {
		_, err = r.Next()
	}
	if err != io.EOF {
		fmt.Println(err)
	}
}
`

// TestOldReaderRefusesV2 builds the v1-only reader of lastV1Commit from
// the repository's history and gives it a v2 golden segment: it must refuse
// it as unsupported, with the message that docs/FORMAT.md quotes, and read
// a v1 one.
func TestOldReaderRefusesV2(t *testing.T) {
	git, goTool := testenv.RequireTool(t, "git"), testenv.RequireTool(t, "go")
	root := t.TempDir()
	archive := exec.Command(git, "archive", "--format=tar", lastV1Commit, "go.mod", "go.sum", "segments")
	archive.Dir = ".."
	tarball, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive %s: %v (a shallow clone lacks the commit)", lastV1Commit, err)
	}
	untar := exec.Command("tar", "-x", "-C", root)
	untar.Stdin = bytes.NewReader(tarball)
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(root, "oldreader"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "oldreader", "main.go"), []byte(oldReader), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "oldreader.bin")
	build := exec.Command(goTool, "build", "-mod=mod", "-o", bin, "./oldreader")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off", "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the old reader: %v: %s", err, out)
	}
	read := func(path string) string {
		abs, _ := filepath.Abs(path)
		out, err := exec.Command(bin, abs).CombinedOutput()
		if err != nil {
			t.Fatalf("old reader on %s: %v: %s", path, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	const want = "segments: unsupported segment: format version 2 (this package reads version 1)"
	for _, name := range []string{"none.seg", "txn.seg"} {
		if got := read(filepath.Join(goldenDirs[Version], name)); got != want {
			t.Errorf("old reader on v2 %s: %q, want %q", name, got, want)
		}
	}
	if got := read(filepath.Join(goldenDirs[Version1], "none.seg")); got != "" {
		t.Errorf("old reader on v1 none.seg: %q", got)
	}
	doc, err := os.ReadFile("../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, []byte(want)) {
		t.Errorf("docs/FORMAT.md does not quote the old reader's message %q", want)
	}
}
