package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/manifest"
)

// TestArchiveBusyStart (issue 14, "busy starts"): the archiver is started
// as soon as db_bench has created its database and writes at full speed,
// with 64 KiB memtables and compactions, so that flushes and compactions
// delete SST and WAL files while the first base is taken. Before the file
// checkpoint, most such starts failed within a second ("checkpoint ...
// while link file ... .sst: No such file or directory (attempt 5)"). Every
// round must take its first base, follow the writer, stop with exit 0 and
// hold every batch after that base exactly once.
func TestArchiveBusyStart(t *testing.T) {
	for i := range testenv.Scale(3, 10) {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "db")
			w := dbBench(t, dir, "--benchmarks=fillrandom", "--num=100000000", "--write_buffer_size=65536",
				"--max_background_jobs=2", "--level0_file_num_compaction_trigger=2", fmt.Sprintf("--seed=%d", 100+i))
			// A condition, not a sleep: the database and its options exist.
			waitUntilT(t, "db_bench to create the database", func() bool {
				opts, _ := filepath.Glob(filepath.Join(dir, "OPTIONS-*"))
				_, err := os.Stat(filepath.Join(dir, "CURRENT"))
				return err == nil && len(opts) > 0
			})
			bucket := "file://" + t.TempDir()
			p := startCLI(t, nil, "archive", "--db", dir, "--to", bucket, "--segment-age", "50ms")
			s := openLocation(t, bucket)
			var base uint64
			waitUntilT(t, "the first base", func() bool {
				m, _, err := manifest.Load(context.Background(), s)
				if err != nil || len(m.Bases) == 0 {
					return false
				}
				base = m.Bases[0].Sequence
				return true
			})
			// The writer goes on at full speed while the archiver follows.
			waitUntilT(t, "the archive to follow the writer", func() bool { return archivedTo(t, s, 1) > base+20000 })
			w.Process.Kill()
			w.Wait()
			latest := dbLatest(t, dir)
			waitUntilT(t, "the archive to catch up", func() bool { return archivedTo(t, s, 1) == latest })
			if code := p.stop(t); code != exitOK {
				t.Fatalf("the archiver stopped with exit %d:\n%s", code, p.out.String())
			}
			if strings.Contains(p.out.String(), "attempt") {
				t.Errorf("the archiver retried something:\n%s", p.out.String())
			}
			n := checkArchive(t, s, dir)
			t.Logf("round %d: first base at %d while db_bench wrote; %d batches archived after it, up to %d", i, base, n, latest)
		})
	}
}
