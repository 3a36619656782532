package foreign_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/foreign"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/rocks"
)

// runWriter runs the writer on a new folder until its final mark, stops it
// with SIGTERM and returns the folder, the marks file and the marks.
func runWriter(t *testing.T, shape string, args ...string) (db, marksFile string, marks []foreign.Mark) {
	t.Helper()
	_, w := bins(t)
	root := t.TempDir()
	db, marksFile = filepath.Join(root, "db"), filepath.Join(root, "marks", "marks.jsonl")
	os.MkdirAll(filepath.Dir(marksFile), 0o755)
	args = append([]string{"--db", db, "--shape", shape, "--marks", marksFile}, args...)
	p := start(t, nil, strings.NewReader("go\n"), w, args...)
	if err := waitFor(p, waitLimit, func() bool { _, ok := lineValue(p.output(), "done"); return ok }); err != nil {
		t.Fatalf("the %s writer never finished: %v", shape, err)
	}
	if err := p.stop(t); err != nil {
		t.Fatalf("the %s writer exits with %v on SIGTERM:\n%s", shape, err, p.output())
	}
	marks, err := foreign.ReadMarks(marksFile)
	if err != nil {
		t.Fatal(err)
	}
	return db, marksFile, marks
}

var smallRun = []string{"--initial", "50", "--batches", "400", "--mark-every", "100"}

// verifyOut runs the writer's verify mode and returns its output and error.
func verifyOut(t *testing.T, args ...string) (string, error) {
	t.Helper()
	_, w := bins(t)
	out, err := exec.Command(w, args...).CombinedOutput()
	return string(out), err
}

// TestWriterMarks checks each shape's writer against itself: the marks
// come in order with strictly growing sequences (the txn shape's read from
// a checkpoint), and the database that the writer closed on SIGTERM,
// reopened read-only with the shape's options, is its final mark, sequence
// included.
func TestWriterMarks(t *testing.T) {
	for _, shape := range foreign.Names() {
		if shape == "dbbench" {
			continue
		}
		t.Run(shape, func(t *testing.T) {
			db, marksFile, marks := runWriter(t, shape, smallRun...)
			if len(marks) != 6 || marks[0].Name != "initial" || marks[len(marks)-1].Name != "final" {
				t.Fatalf("marks %v, want initial, 4 marks, final", names(marks))
			}
			for i := 1; i < len(marks)-1; i++ {
				if marks[i].Seq <= marks[i-1].Seq {
					t.Errorf("mark %d at sequence %d, after %d", i, marks[i].Seq, marks[i-1].Seq)
				}
			}
			final := marks[len(marks)-1]
			out, err := verifyOut(t, "--shape", shape, "--verify", db, "--marks", marksFile, "--mark", strconv.FormatUint(final.Seq, 10))
			if err != nil {
				t.Fatalf("the writer's own database is not its final mark: %v\n%s", err, out)
			}
			if !strings.HasPrefix(out, fmt.Sprintf(`{"name":"verify","batch":0,"seq":%d,`, final.Seq)) {
				t.Errorf("reopened, the database is at another sequence than the final mark's %d:\n%s", final.Seq, out)
			}
		})
	}
}

func names(ms []foreign.Mark) []string {
	var n []string
	for _, m := range ms {
		n = append(n, fmt.Sprintf("%s@%d", m.Name, m.Seq))
	}
	return n
}

// TestWriterThreads: two threads write every batch (the final mark counts
// them all), and a shape whose writes share state refuses them.
func TestWriterThreads(t *testing.T) {
	db, marksFile, marks := runWriter(t, "homeserver", append([]string{"--threads", "2"}, smallRun...)...)
	final := marks[len(marks)-1]
	if final.Batch != 400 {
		t.Errorf("the final mark counts %d batches, want 400", final.Batch)
	}
	if out, err := verifyOut(t, "--shape", "homeserver", "--verify", db, "--marks", marksFile, "--mark", strconv.FormatUint(final.Seq, 10)); err != nil {
		t.Fatalf("reopened, the database is not the final mark: %v\n%s", err, out)
	}
	_, w := bins(t)
	out, err := exec.Command(w, "--db", filepath.Join(t.TempDir(), "db"), "--shape", "txn", "--marks", filepath.Join(t.TempDir(), "m"), "--threads", "2").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "one thread only") {
		t.Fatalf("txn with 2 threads: %v\n%s", err, out)
	}
}

// TestWriterDeterministic: the same seed writes the same states, another
// seed other ones.
func TestWriterDeterministic(t *testing.T) {
	_, _, a := runWriter(t, "cfchurn", append([]string{"--seed", "3"}, smallRun...)...)
	_, _, b := runWriter(t, "cfchurn", append([]string{"--seed", "3"}, smallRun...)...)
	_, _, c := runWriter(t, "cfchurn", append([]string{"--seed", "4"}, smallRun...)...)
	for i := range a {
		if a[i].Seq != b[i].Seq || a[i].Families.Diff(b[i].Families) != "" {
			t.Fatalf("seed 3 twice: mark %d differs: %s", i, a[i].Families.Diff(b[i].Families))
		}
	}
	if a[len(a)-1].Families.Diff(c[len(c)-1].Families) == "" {
		t.Fatalf("seeds 3 and 4 wrote the same final state")
	}
}

// TestDigestOracles checks the writer's digest with two readers that are
// not its own: rocks.Digest (the digest rockstream compares with) and
// 'ldb scan' (RocksDB's tool), on the checkpoint of a mark.
func TestDigestOracles(t *testing.T) {
	ldb := testenv.RequireTool(t, "ldb")
	_, _, marks := runWriter(t, "smallmem", smallRun...)
	m := marks[2]
	db, err := rocks.OpenReadOnly(m.Checkpoint)
	if err != nil {
		t.Fatal(err)
	}
	rd, err := db.Digest()
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	got := foreign.Digest{}
	for n, d := range rd {
		got[n] = foreign.FamilyDigest{Keys: d.Keys, Sum: hex.EncodeToString(d.Sum[:])}
	}
	if d := got.Diff(m.Families); d != "" || len(got) != 4 {
		t.Fatalf("rocks.Digest of the checkpoint at %d: %s (%d families)", m.Seq, d, len(got))
	}
	for n, want := range m.Families {
		out, err := exec.Command(ldb, "--db="+m.Checkpoint, "--column_family="+n, "--hex", "scan").Output()
		if err != nil {
			t.Fatalf("ldb scan %s: %v", n, err)
		}
		if d := ldbDigest(t, out); d != want {
			t.Errorf("family %q: ldb scan gives %+v, the writer recorded %+v", n, d, want)
		}
	}
}

// ldbDigest digests 'ldb scan --hex' output (lines "0xKEY : 0xVALUE").
func ldbDigest(t *testing.T, out []byte) foreign.FamilyDigest {
	h := sha256.New()
	var n uint64
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " : ")
		if !ok {
			t.Fatalf("ldb scan line %q", sc.Text())
		}
		for _, f := range []string{k, v} {
			b, err := hex.DecodeString(strings.TrimPrefix(f, "0x"))
			if err != nil {
				t.Fatalf("ldb scan line %q: %v", sc.Text(), err)
			}
			var l [8]byte
			binary.BigEndian.PutUint64(l[:], uint64(len(b)))
			h.Write(l[:])
			h.Write(b)
		}
		n++
	}
	return foreign.FamilyDigest{Keys: n, Sum: hex.EncodeToString(h.Sum(nil))}
}

// TestVerifyNamesFirstKey: a folder that is not the mark's state fails
// verify, which names the family and the first differing key; a family
// set that differs is named too.
func TestVerifyNamesFirstKey(t *testing.T) {
	_, marksFile, marks := runWriter(t, "cfchurn", smallRun...)
	initial, final := marks[0], marks[len(marks)-1]
	out, err := verifyOut(t, "--shape", "cfchurn", "--verify", initial.Checkpoint, "--marks", marksFile,
		"--mark", strconv.FormatUint(final.Seq, 10))
	if err == nil {
		t.Fatalf("the initial checkpoint passes as the final state:\n%s", out)
	}
	for _, want := range []string{"differs from the mark at sequence", `column family "default": key "k`, `column family "churn-`} {
		if !strings.Contains(out, want) {
			t.Errorf("verify says nothing like %q:\n%s", want, out)
		}
	}
	if out, err := verifyOut(t, "--shape", "cfchurn", "--verify", initial.Checkpoint, "--marks", marksFile,
		"--mark", strconv.FormatUint(initial.Seq, 10)); err != nil {
		t.Fatalf("the initial checkpoint is not the initial mark: %v\n%s", err, out)
	}
}

// TestMergeOptionsFile: the built-in merge operators, given by name in the
// options string, are named in the database's OPTIONS file, so that a
// program reading it (rockstream restoring with the database's own
// options) finds them.
func TestMergeOptionsFile(t *testing.T) {
	db, _, _ := runWriter(t, "merge", "--initial", "10", "--batches", "20", "--mark-every", "10")
	files, _ := filepath.Glob(filepath.Join(db, "OPTIONS-*"))
	if len(files) == 0 {
		t.Fatalf("no OPTIONS file in %s", db)
	}
	b, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"merge_operator=UInt64AddOperator", "merge_operator={id=StringAppendOperator;delimiter=,;}"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s names no %q", files[len(files)-1], want)
		}
	}
}
