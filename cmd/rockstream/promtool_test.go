package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/testenv"
)

// metricValue is the value of the sample name (with its labels, as
// served) in a /metrics text, -1 when it is not there.
func metricValue(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}

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
	// The base's age, the upload and apply latencies, the standby's state.
	// Writes after the standby's bootstrap reach it as segments (what was
	// archived before it started, its bootstrap may have restored).
	putN(t, app.db, "after-bootstrap", 100)
	waitUntilT(t, "a segment upload and apply observed", func() bool {
		a, b := httpGet("http://"+archAddr+"/metrics", ""), httpGet("http://"+sbAddr+"/metrics", "")
		return metricValue(a, "rockstream_archive_upload_duration_seconds_count") >= 1 &&
			metricValue(b, "rockstream_standby_apply_delay_seconds_count") >= 1
	})
	served := map[string]string{}
	for _, d := range []struct{ name, addr string }{{"archive", archAddr}, {"standby", sbAddr}} {
		served[d.name] = httpGet("http://"+d.addr+"/metrics", "")
	}
	if ts := metricValue(served["archive"], "rockstream_archive_last_base_timestamp_seconds"); ts < float64(time.Now().Add(-time.Minute).Unix()) || ts > float64(time.Now().Unix()+1) {
		t.Errorf("rockstream_archive_last_base_timestamp_seconds %v: not the base just taken (now %d)", ts, time.Now().Unix())
	}
	if metricValue(served["standby"], `rockstream_standby_state{state="following"}`) != 1 || metricValue(served["standby"], `rockstream_standby_state{state="failed"}`) != 0 {
		t.Errorf("the standby's state metric does not say following:\n%s", served["standby"])
	}
	for _, d := range []struct{ name, addr string }{{"archive", archAddr}, {"standby", sbAddr}} {
		metrics := served[d.name]
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
	checkDeployMetricNames(t, served)
	if code := sb.stop(t); code != exitOK {
		t.Errorf("standby: exit %d\n%s", code, sb.out)
	}
	if code := arch.stop(t); code != exitOK {
		t.Errorf("archive: exit %d\n%s", code, arch.out)
	}
}
