package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/archive"
)

// TestArchiveLagServed: /metrics and /status carry the database's head and
// the lag against it, and the summary line names them. db_bench writes
// while the archiver runs; once the archive holds everything, the head is
// the database's last sequence and every lag is zero.
func TestArchiveLagServed(t *testing.T) {
	dir := newDB(t)
	addr := freeAddr(t)
	p := startCLI(t, nil, "archive", "--db", dir, "--to", "file://"+t.TempDir(), "--listen", addr,
		"--segment-age", "50ms", "--summary-interval", "100ms")
	waitUntilT(t, "the first base", func() bool {
		return strings.Contains(httpGet("http://"+addr+"/metrics", ""), "rockstream_archive_bases_total 1")
	})
	waitCmd(t, dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", "--num=20000", "--write_buffer_size=262144"))
	const last = 5000 + 20000
	var st struct{ Stats archive.Stats }
	waitUntilT(t, "the archive to hold the database", func() bool {
		st.Stats = archive.Stats{}
		return json.Unmarshal([]byte(httpGet("http://"+addr+"/status", "")), &st) == nil &&
			st.Stats.ArchivedSequence == last && st.Stats.LagBytes == 0 && st.Stats.LagSeconds == 0
	})
	if s := st.Stats; s.HeadSequence != last || s.LagSequences != 0 {
		t.Fatalf("/status: head %d, lag %d sequences; want %d, 0", s.HeadSequence, s.LagSequences, last)
	}
	metrics := httpGet("http://"+addr+"/metrics", "")
	for _, want := range []string{fmt.Sprintf("rockstream_archive_head_sequence %d", last), "rockstream_archive_lag_sequences 0",
		"rockstream_archive_lag_bytes 0", "rockstream_archive_lag_seconds 0"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Fatalf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	if !strings.Contains(p.out.String(), fmt.Sprintf("head_sequence=%d lag_sequences=0 lag_bytes=0 lag_seconds=0", last)) {
		t.Fatalf("the last summary line does not name the head and no lag:\n%s", p.out)
	}
}
