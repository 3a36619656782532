package segments

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
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
	bin := buildOldReader(t, lastV1Commit, oldReader)
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

// lastUncutCommit is the last commit whose segments package reads format
// version 2 without record flags: it knows no batch cut into fragments.
const lastUncutCommit = "76a00177690c83261c44da247759a01b61f4a5ad"

// oldSkipReader is like oldReader, but calls SkipTo with its second
// argument, when there is one, before reading, and then prints each batch
// it reads (sequence, span, data length).
const oldSkipReader = `package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/rockstream/rockstream/segments"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	r, err := segments.NewReader(f, segments.ReaderOptions{})
	if err == nil && len(os.Args) > 2 {
		seq, _ := strconv.ParseUint(os.Args[2], 10, 64)
		err = r.SkipTo(seq)
	}
	for err == nil {
		var b segments.Batch
		if b, err = r.Next(); err == nil && len(os.Args) > 2 {
			fmt.Println(b.Seq, b.Count, len(b.Data))
		}
	}
	if err != io.EOF {
		fmt.Println(err)
	}
}
`

// buildOldReader builds program from the segments package of commit.
func buildOldReader(t *testing.T, commit, program string) string {
	t.Helper()
	git, goTool := testenv.RequireTool(t, "git"), testenv.RequireTool(t, "go")
	if err := exec.Command(git, "cat-file", "-e", commit+"^{commit}").Run(); err != nil {
		// Not a pass: the golden files and the format tests still ran.
		t.Skipf("SKIP (not a pass): this clone lacks commit %s (a shallow clone?), whose reader the test builds", commit)
	}
	root := t.TempDir()
	archive := exec.Command(git, "archive", "--format=tar", commit, "go.mod", "go.sum", "segments")
	archive.Dir = ".."
	tarball, err := archive.Output()
	if err != nil {
		t.Fatalf("git archive %s: %v (a shallow clone lacks the commit)", commit, err)
	}
	untar := exec.Command("tar", "-x", "-C", root)
	untar.Stdin = bytes.NewReader(tarball)
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(root, "oldreader"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "oldreader", "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "oldreader.bin")
	build := exec.Command(goTool, "build", "-mod=mod", "-o", bin, "./oldreader")
	build.Dir = root
	build.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off", "GOPROXY=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the old reader: %v: %s", err, out)
	}
	return bin
}

// TestOldReaderRefusesCut gives the segments with cut batches to the v2
// reader of lastUncutCommit: it must refuse each by the unknown record
// flag, never read it as something else: reading from the start (it meets
// the first fragment, flags 0x1) and after a SkipTo that passes the blocks
// of the first fragments by their headers (it meets a continuation, flags
// 0x2 or 0x3, or, when SkipTo passed every fragment, it reads the batches
// after them, and those right; the whole batches before a cut one it reads
// right too). It must read the other v2 golden segments
// as before.
func TestOldReaderRefusesCut(t *testing.T) {
	bin := buildOldReader(t, lastUncutCommit, oldSkipReader)
	read := func(args ...string) string {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("old reader %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, name := range []string{"cut-none.seg", "cut-zstd.seg"} {
		path, _ := filepath.Abs(filepath.Join(goldenDirs[Version], name))
		seg, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, batches, _, err := readAll(seg, ReaderOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := read(path); !strings.HasPrefix(got, "segments: unsupported segment: unknown batch record flags 0x1 at byte") {
			t.Errorf("old reader on %s: %q, want the unknown flag 0x1", name, got)
		}
		// Skip to the end of each cut batch: blocks of its first fragments
		// may be passed over by header.
		refused := 0
		for i, b := range batches {
			if len(b.Data) <= 512-recordOverhead2 {
				continue
			}
			end := b.Seq + uint64(b.Count)
			got := read(path, strconv.FormatUint(end, 10))
			var want []string
			for _, a := range afterSkip(batches, end) {
				want = append(want, fmt.Sprint(a.Seq, a.Count, len(a.Data)))
			}
			lines := strings.Split(got, "\n")
			last := lines[len(lines)-1]
			switch {
			case strings.HasPrefix(last, "segments: unsupported segment: unknown batch record flags 0x"):
				refused++
				if read := lines[:len(lines)-1]; len(read) > len(want) || !slices.Equal(read, want[:len(read)]) {
					t.Errorf("old reader on %s after SkipTo(%d) read %q before refusing, want a start of %q", name, end, read, want)
				}
			case got != strings.Join(want, "\n"):
				t.Errorf("old reader on %s after SkipTo(%d), past batch %d: %q, want an unknown flag or %q", name, end, i, got, want)
			}
		}
		if refused == 0 {
			t.Fatalf("%s: no SkipTo met a fragment", name)
		}
	}
	for _, name := range []string{"none.seg", "txn.seg", "multiblock-zstd.seg"} {
		path, _ := filepath.Abs(filepath.Join(goldenDirs[Version], name))
		if got := read(path); got != "" {
			t.Errorf("old reader on %s: %q", name, got)
		}
	}
}
