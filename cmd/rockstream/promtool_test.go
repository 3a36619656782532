package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/testenv"
)

// TestMetricsPromtool: what the archiver and the standby serve on
// /metrics passes `promtool check metrics` (Prometheus's own linter:
// names, units, help text, counter suffixes), once both hold data, and
// holds rockstream_build_info and the Go and process collectors.
func TestMetricsPromtool(t *testing.T) {
	promtool := testenv.RequireTool(t, "promtool")
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--segment-age", "50ms")
	waitUntilT(t, "the archiver's first base", func() bool {
		return strings.Contains(httpGet("http://"+archAddr+"/metrics", ""), "rockstream_archive_bases_total 1")
	})
	putN(t, app.db, "more", 100)
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", sbAddr, "--poll", "20ms", filepath.Join(t.TempDir(), "standby"))
	want := fmt.Sprintf("rockstream_standby_applied_sequence %d", app.db.GetLatestSequenceNumber())
	waitUntilT(t, "the standby to apply the writes", func() bool {
		return strings.Contains(httpGet("http://"+sbAddr+"/metrics", ""), want)
	})
	for _, d := range []struct{ name, addr string }{{"archive", archAddr}, {"standby", sbAddr}} {
		metrics := httpGet("http://"+d.addr+"/metrics", "")
		for _, want := range []string{"rockstream_", `rockstream_build_info{commit=`, `rocksdb="7.8.3"`, "go_goroutines", "process_resident_memory_bytes"} {
			if !strings.Contains(metrics, want) {
				t.Fatalf("%s /metrics lacks %s:\n%s", d.name, want, metrics)
			}
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(metrics)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on the %s's /metrics: %v\n%s", d.name, err, out)
		}
	}
	if code := sb.stop(t); code != exitOK {
		t.Errorf("standby: exit %d\n%s", code, sb.out)
	}
	if code := arch.stop(t); code != exitOK {
		t.Errorf("archive: exit %d\n%s", code, arch.out)
	}
}
