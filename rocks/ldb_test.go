package rocks

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

// compareWithLdb uses ldb (rocksdb-tools), a reader independent of this
// package, as an oracle: every column family of src and cp scans to the same
// keys and values, and cp passes ldb checkconsistency. It runs as a subtest,
// skipped (or failed under CI=true) without ldb.
func compareWithLdb(t *testing.T, src, cp string, cfs []string) {
	t.Helper()
	t.Run("ldb", func(t *testing.T) { ldbEqual(t, src, cp, cfs) })
}

func ldbEqual(t *testing.T, src, cp string, cfs []string) {
	ldb := requireTool(t, "ldb")
	lines := 0
	for _, cf := range cfs {
		want := runLdb(t, ldb, "--db="+src, "--column_family="+cf, "--hex", "scan")
		got := runLdb(t, ldb, "--db="+cp, "--column_family="+cf, "--hex", "scan")
		if !bytes.Equal(got, want) {
			t.Fatalf("ldb scan of column family %q: copy differs from the source:\n%.500s\nvs\n%.500s", cf, got, want)
		}
		lines += bytes.Count(want, []byte("\n"))
	}
	if lines == 0 {
		t.Fatal("ldb scan found no key at all")
	}
	out := runLdb(t, ldb, "--db="+cp, "checkconsistency")
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("ldb checkconsistency: %s", out)
	}
	t.Logf("ldb: %d keys equal over %d column families; checkconsistency OK", lines, len(cfs))
}

func runLdb(t *testing.T, ldb string, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(ldb, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ldb %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}
