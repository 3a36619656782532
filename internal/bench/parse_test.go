package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestOpsPerSec(t *testing.T) {
	out := "RocksDB:    version 7.8.3\nKeys:       16 bytes each\n" +
		"overwrite    :       4.947 micros/op 202145 ops/sec 3.000 seconds 606436 operations;   80.0 MB/s\n"
	got, err := opsPerSec(out, "overwrite")
	if err != nil || got != 202145 {
		t.Fatalf("opsPerSec = %v, %v; want 202145", got, err)
	}
	if _, err := opsPerSec(out, "fillrandom"); err == nil || !strings.Contains(err.Error(), "fillrandom") {
		t.Fatalf("a missing benchmark line: %v", err)
	}
	if _, err := opsPerSec("overwrite : garbage ops/sec;", "overwrite"); err == nil {
		t.Fatal("a malformed line gave no error")
	}
}

func TestParseBaseLog(t *testing.T) {
	log := `{"time":"x","level":"INFO","msg":"checkpoint taken"}
not json
{"time":"x","level":"INFO","msg":"base files stored","sequence":9,"files":10,"bytes":1000,"uploaded_bytes":120,"shared_files":6}
`
	got, err := parseBaseLog(log)
	if err != nil || got != (baseLog{files: 10, shared: 6, bytes: 1000, uploaded: 120}) {
		t.Fatalf("parseBaseLog = %+v, %v", got, err)
	}
	if _, err := parseBaseLog(`{"msg":"other"}`); err == nil {
		t.Fatal("a log without the line gave no error")
	}
}

func TestParseReplay(t *testing.T) {
	for log, want := range map[string]time.Duration{
		`{"msg":"restored","replay":1.5}`:    1500 * time.Millisecond,
		`{"msg":"restored","replay":"2.5s"}`: 2500 * time.Millisecond,
	} {
		if got, err := parseReplay("garbage\n" + log); err != nil || got != want {
			t.Errorf("parseReplay(%s) = %v, %v; want %v", log, got, err, want)
		}
	}
	if _, err := parseReplay(`{"msg":"restoring"}`); err == nil {
		t.Fatal("a log without the restored line gave no error")
	}
}

func TestReadHWM(t *testing.T) {
	p := filepath.Join(t.TempDir(), "status")
	os.WriteFile(p, []byte("Name:\tx\nVmPeak:\t  2000 kB\nVmHWM:\t   95420 kB\nVmRSS:\t 1 kB\n"), 0o644)
	if got := readHWM(p); got != 95420 {
		t.Fatalf("readHWM = %d, want 95420", got)
	}
	if got := readHWM(filepath.Join(t.TempDir(), "missing")); got != 0 {
		t.Fatalf("readHWM of a missing file = %d", got)
	}
	if got := readHWM("/proc/self/status"); got <= 0 {
		t.Fatalf("readHWM of this process = %d", got)
	}
}

func TestLagPercentiles(t *testing.T) {
	var run []time.Duration
	for i := 100; i >= 1; i-- {
		run = append(run, time.Duration(i)*time.Millisecond)
	}
	r := lagResult{runs: [][]time.Duration{run, nil, {7 * time.Millisecond}}}
	p50, p99 := r.pct(0.5), r.pct(0.99)
	if len(p50) != 2 || p50[0] != 50 || p50[1] != 7 {
		t.Fatalf("p50 = %v, want [50 7] (an empty run is left out)", p50)
	}
	if p99[0] != 99 {
		t.Fatalf("p99 = %v, want 99 first", p99)
	}
}

func TestCommitBytes(t *testing.T) {
	if got := commitBytes(1); got != 10000 {
		t.Fatalf("commitBytes(1 MB/s) = %d, want 10000 per 10 ms commit", got)
	}
}
