package rocks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
	"github.com/rockstream/rockstream/archive"
)

// writeKeep writes one batch built by fill and returns its representation
// as RocksDB logged it (Write stamps the sequence into the batch).
func (w *writer) writeKeep(fill func(wb *grocksdb.WriteBatch)) []byte {
	w.t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	fill(wb)
	if err := w.db.Write(w.wo, wb); err != nil {
		w.t.Fatalf("write: %v", err)
	}
	return bytes.Clone(wb.Data())
}

// writeRandomKeep is writeRandom, keeping the batches.
func (w *writer) writeRandomKeep(rng *rand.Rand, n int) [][]byte {
	w.t.Helper()
	var out [][]byte
	for range n {
		out = append(out, w.writeKeep(func(wb *grocksdb.WriteBatch) {
			for range 1 + rng.IntN(4) {
				addRandomOp(wb, rng, w.list[rng.IntN(len(w.list))])
			}
		}))
	}
	return out
}

// writeLarge writes a batch of about size bytes of puts, over column
// family cf.
func (w *writer) writeLarge(rng *rand.Rand, cf string, size int) []byte {
	return w.writeKeep(func(wb *grocksdb.WriteBatch) {
		for i := 0; size > 0; i++ {
			v := make([]byte, min(size, 100_000+rng.IntN(200_000)))
			for j := range v {
				v[j] = byte(rng.Uint32())
			}
			wb.PutCF(w.cfs[cf], fmt.Appendf(nil, "large%06d-%d", rng.IntN(1_000_000), i), v)
			size -= len(v)
		}
	})
}

// TestWALTailMatchesRocksDB writes every kind of batch with RocksDB
// (multi-operation, deletes, single and range deletes, two column families,
// batches of log data only, batches over 32 KiB and over 1 MiB, many small
// ones), with flushes that switch WAL files and move the old ones to
// archive/. The tail reads them byte for byte as written, the same as
// RocksDB's own WAL iterator on a secondary, and at the offsets that ldb
// dump_wal reports.
func TestWALTailMatchesRocksDB(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a")
	var written [][]byte
	written = append(written, w.writeRandomKeep(rng, 300)...)
	written = append(written, w.writeKeep(func(wb *grocksdb.WriteBatch) { wb.PutLogData([]byte("log data only: no sequence")) }))
	written = append(written, w.writeLarge(rng, "a", 40_000), w.writeLarge(rng, "default", 1_500_000))
	w.flush()
	written = append(written, w.writeRandomKeep(rng, 1000)...)
	written = append(written, w.writeLarge(rng, "a", 3_000_000))
	written = append(written, w.writeKeep(func(wb *grocksdb.WriteBatch) {
		wb.DeleteRangeCF(w.cfs["a"], []byte("key0100"), []byte("key0200"))
		wb.DeleteCF(w.cfs["default"], []byte("key0001"))
		wb.SingleDeleteCF(w.cfs["a"], []byte("never-written"))
	}))
	w.flush()
	for i := range 200 {
		if i%50 == 0 {
			written = append(written, w.writeLarge(rng, "a", 33_000+rng.IntN(100_000)))
		}
		written = append(written, w.writeRandomKeep(rng, 1)...)
	}

	tail := newTail(t, w.dir, 1)
	got := drainTail(t, tail, nil)
	sameData(t, got, written)
	if last := got[len(got)-1].Next() - 1; last != w.latest() {
		t.Fatalf("tail ends at seq %d, the database at %d", last, w.latest())
	}
	files, archived := map[string]bool{}, 0
	for _, b := range got {
		files[b.path] = true
		if strings.Contains(b.path, "/archive/") {
			archived++
		}
	}
	if len(files) != 3 || archived == 0 {
		t.Fatalf("batches from %d files (%d from archive/): %v; want 3 files, 2 of them archived", len(files), archived, files)
	}

	// RocksDB's WAL iterator on a secondary.
	f := follow(t, w.dir)
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	want := drain(t, u, nil)
	if len(want) != len(got) {
		t.Fatalf("GetUpdatesSince gives %d batches, the tail %d", len(want), len(got))
	}
	for i := range want {
		if want[i].Seq != got[i].Seq || want[i].Count != got[i].Count || !bytes.Equal(want[i].Data, got[i].Data) {
			t.Fatalf("batch %d: GetUpdatesSince (seq %d, count %d, %d bytes), tail (seq %d, count %d, %d bytes)",
				i, want[i].Seq, want[i].Count, len(want[i].Data), got[i].Seq, got[i].Count, len(got[i].Data))
		}
	}
	compareWithDumpWAL(t, got)

	// Seek anywhere.
	for range 20 {
		i := rng.IntN(len(written))
		from := newTail(t, w.dir, got[i].Seq)
		if got[i].Count == 0 { // a batch of log data only shares its sequence with the next
			i = firstAt(got, got[i].Seq)
		}
		sameData(t, drainTail(t, from, nil), written[i:])
	}
	end := newTail(t, w.dir, w.latest()+1)
	if rest := drainTail(t, end, nil); len(rest) != 0 {
		t.Fatalf("seek past the last batch: %d batches", len(rest))
	}
	more := w.writeRandomKeep(rng, 3)
	sameData(t, drainTail(t, end, nil), more)
	t.Logf("%d batches in %d files, %d from archive/; %d files opened, %d listings at the live end",
		len(got), len(files), archived, tail.opened, tail.listings)
}

func firstAt(bs []tailBatch, seq uint64) int {
	for i, b := range bs {
		if b.Seq == seq {
			return i
		}
	}
	return -1
}

// compareWithDumpWAL checks the batches against `ldb dump_wal` of each WAL
// file: sequence, count, size and the offset of the record.
func compareWithDumpWAL(t *testing.T, got []tailBatch) {
	t.Helper()
	ldb := requireTool(t, "ldb")
	byFile := map[string][]tailBatch{}
	var order []string
	for _, b := range got {
		if _, ok := byFile[b.path]; !ok {
			order = append(order, b.path)
		}
		byFile[b.path] = append(byFile[b.path], b)
	}
	for _, path := range order {
		out, err := exec.Command(ldb, "dump_wal", "--walfile="+path).Output()
		if err != nil {
			t.Fatalf("ldb dump_wal %s: %v", path, err)
		}
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
		mine := byFile[path]
		if len(lines) != len(mine) {
			t.Fatalf("%s: ldb dump_wal lists %d batches, the tail read %d", path, len(lines), len(mine))
		}
		for i, l := range lines {
			f := strings.SplitN(l, ",", 5)
			if len(f) < 4 {
				t.Fatalf("ldb dump_wal: %q", l)
			}
			want := fmt.Sprintf("%d,%d,%d,%d", mine[i].Seq, mine[i].Count, len(mine[i].Data), mine[i].off)
			if strings.Join(f[:4], ",") != want {
				t.Fatalf("%s batch %d: ldb says seq,count,size,offset %s; the tail %s", path, i, strings.Join(f[:4], ","), want)
			}
		}
	}
	t.Logf("ldb dump_wal agrees on %d batches in %d files", len(got), len(order))
}

// TestWALTailWhileWriting reads while a writer writes 20,000 batches
// (some over 1 MiB, with flushes that switch files): every batch exactly
// once, in order, as written.
func TestWALTailWhileWriting(t *testing.T) {
	const total = 20_000
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a")
	writtenc := make(chan []byte, total)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(writtenc)
		rng := rand.New(rand.NewPCG(43, 44))
		for i := range total {
			switch {
			case i%4000 == 1999:
				writtenc <- w.writeLarge(rng, "a", 1_200_000)
			case i%500 == 250:
				writtenc <- w.writeLarge(rng, "default", 40_000+rng.IntN(100_000))
			default:
				writtenc <- w.writeRandomKeep(rng, 1)[0]
			}
			if i%3000 == 2999 {
				w.flush()
			}
		}
	}()
	tail := newTail(t, w.dir, 1)
	var got []tailBatch
	waits, writerDone := 0, false
	deadline := time.Now().Add(3 * time.Minute)
	for len(got) < total {
		before := len(got)
		got = drainTail(t, tail, got)
		if len(got) > before {
			continue
		}
		select {
		case <-done:
			if writerDone {
				t.Fatalf("the writer is done and the tail read %d batches of %d", len(got), total)
			}
			writerDone = true // one more look, then fail
		case <-time.After(200 * time.Microsecond):
			if !writerDone {
				waits++
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("read %d batches of %d in 3 minutes", len(got), total)
		}
	}
	<-done
	var written [][]byte
	for b := range writtenc {
		written = append(written, b)
	}
	sameData(t, got, written)
	if extra := drainTail(t, tail, nil); len(extra) != 0 {
		t.Fatalf("%d batches after the last one written", len(extra))
	}
	files := map[string]bool{}
	for _, b := range got {
		files[filepath.Base(b.path)] = true
	}
	t.Logf("%d batches from %d files while writing; the tail caught up with the writer %d times (%d listings)",
		len(got), len(files), waits, tail.listings)
	if waits == 0 || len(files) < 5 {
		t.Fatalf("the tail never waited for the writer (%d) or read few files (%d): the test did not tail a live WAL", waits, len(files))
	}
}

// TestWALTailGapDeletedFile: a WAL file that is gone before the tail read
// it is a gap at the next file, never skipped.
func TestWALTailGapDeletedFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600, "a")
	w.writeRandom(rng, 50)
	w.flush()
	missingFrom := w.latest() + 1
	w.writeRandom(rng, 50)
	w.flush()
	resumeAt := w.latest() + 1
	w.writeRandom(rng, 50)
	tail := newTail(t, w.dir, 1)
	for range 10 {
		if _, ok, err := tail.Next(); !ok || err != nil {
			t.Fatalf("next: %v %v", ok, err)
		}
	}
	archived, err := walFiles(filepath.Join(w.dir, "archive"))
	if err != nil || len(archived) != 2 {
		t.Fatalf("archived wal files %v, %v; want 2", archived, err)
	}
	if err := os.Remove(archived[1]); err != nil {
		t.Fatal(err)
	}
	got, err := drainTailErr(tail, nil)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Expected != missingFrom || gap.Got != resumeAt || len(got) != 40 {
		t.Fatalf("after deleting %s: %d batches, %v; want 40 and a gap from %d to %d", archived[1], len(got), err, missingFrom, resumeAt)
	}
	t.Log(err)

	// A writer without WAL retention deletes the WAL at its flush.
	w = newWriter(t, filepath.Join(t.TempDir(), "src"), 0, "a")
	w.writeRandom(rng, 10)
	w.flush()
	gone := w.latest()
	w.writeRandom(rng, 10)
	_, err = drainTailErr(newTail(t, w.dir, 1), nil)
	if !errors.As(err, &gap) || gap.Expected != 1 || gap.Got != gone+1 {
		t.Fatalf("no retention: %v, want a gap from 1 to %d", err, gone+1)
	}
}

// TestWALTailGapDisableWAL: batches written with disableWAL are a gap.
func TestWALTailGapDisableWAL(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	w.writeRandom(rng, 5)
	before := w.latest()
	w.wo.DisableWAL(true)
	w.writeRandom(rng, 5)
	w.wo.DisableWAL(false)
	after := w.latest()
	w.writeRandom(rng, 5)
	got, err := drainTailErr(newTail(t, w.dir, 1), nil)
	var gap *GapError
	if !errors.As(err, &gap) || gap.Expected != before+1 || gap.Got != after+1 || len(got) != 5 {
		t.Fatalf("%d batches, %v; want 5 and a gap from %d to %d", len(got), err, before+1, after+1)
	}
	t.Log(err)
}

// TestWALTailEmptyDeleteRange reads a batch with an empty range deletion
// as the last one, which RocksDB's WAL iterator on a secondary aborts on
// (see TestEmptyDeleteRange): its header counts the deletion.
func TestWALTailEmptyDeleteRange(t *testing.T) {
	w := newWriter(t, filepath.Join(t.TempDir(), "src"), 3600)
	first := w.writeKeep(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	last := w.writeKeep(func(wb *grocksdb.WriteBatch) {
		wb.Put([]byte("b"), []byte("1"))
		wb.DeleteRange([]byte("k"), []byte("k"))
	})
	got := drainTail(t, newTail(t, w.dir, 1), nil)
	sameData(t, got, [][]byte{first, last})
	if got[1].Count != 2 || got[1].Next() != w.latest()+1 {
		t.Fatalf("last batch seq %d count %d, writer at %d", got[1].Seq, got[1].Count, w.latest())
	}
}

// TestWALTailCompressedRocksDB reads the WAL of a writer with
// wal_compression=zstd (RocksDB writes a SetCompressionType record, then
// every batch as a zstd frame, fragmented like any record), three column
// families of small memtables that switch WAL files often, batches over a
// block and over 1 MiB: every batch as written, the same as ldb dump_wal
// says for each file, across the switches and from archive/.
func TestWALTailCompressedRocksDB(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	w := newWriterWith(t, filepath.Join(t.TempDir(), "src"), func(o *grocksdb.Options) {
		o.SetWALTtlSeconds(3600)
		o.SetWALCompression(grocksdb.ZSTDCompression)
		o.SetWriteBufferSize(64 << 10)
	}, "a", "b")
	var written [][]byte
	for round := range 6 {
		written = append(written, w.writeRandomKeep(rng, 200)...)
		written = append(written, w.writeLarge(rng, "a", 40_000+rng.IntN(100_000)))
		if round == 2 {
			written = append(written, w.writeLarge(rng, "b", 1_500_000))
		}
		w.flush()
	}
	written = append(written, w.writeRandomKeep(rng, 50)...)
	tail := newTail(t, w.dir, 1)
	got := drainTail(t, tail, nil)
	sameData(t, got, written)
	files, archived := map[string]bool{}, 0
	for _, b := range got {
		files[b.path] = true
		if strings.Contains(b.path, "/archive/") {
			archived++
		}
	}
	data, err := os.ReadFile(got[0].path)
	if err != nil {
		t.Fatal(err)
	}
	if data[6] != walSetCompressionType {
		t.Fatalf("%s starts with a record of type %d: the writer does not compress its WAL", got[0].path, data[6])
	}
	if len(files) < 6 || archived == 0 {
		t.Fatalf("batches from %d files (%d from archive/); want 6 or more, some archived", len(files), archived)
	}
	compareWithDumpWAL(t, got)
	for range 10 { // Seek finds the file from the compressed first batches
		i := rng.IntN(len(written))
		from := newTail(t, w.dir, got[i].Seq)
		if got[i].Count == 0 {
			i = firstAt(got, got[i].Seq)
		}
		sameData(t, drainTail(t, from, nil), written[i:])
	}
	more := w.writeRandomKeep(rng, 3) // and follows the live file
	sameData(t, drainTail(t, tail, got), append(written, more...))
	t.Logf("%d compressed batches in %d WAL files, %d from archive/", len(got), len(files), archived)
}

// drainN reads n batches.
func drainN(t *testing.T, tail *WALTail, n int) []tailBatch {
	t.Helper()
	var got []tailBatch
	for len(got) < n {
		b, ok, err := tail.Next()
		if err != nil || !ok {
			t.Fatalf("next after %d batches: ok %v, %v", len(got), ok, err)
		}
		got = append(got, tailBatch{b, tail.lastPath, tail.lastOff})
	}
	return got
}

// TestWALTailSwitchesWithoutWaiting reads a backlog of db_bench's WAL in
// 256 KiB files (a writer with small memtables) with a clock that never
// moves: the tail goes from file to file without a listing slot, so it
// reads the whole backlog in one go; it lists the folder far less often
// than it switches files, and waiting at the live end it lists no more than
// its rate allows (never, with this clock, after the first time). Head
// finds the database's last sequence and the WAL bytes before it while the
// tail is behind, and costs no listing at the live end.
func TestWALTailSwitchesWithoutWaiting(t *testing.T) {
	bench := requireTool(t, "db_bench")
	dir := filepath.Join(t.TempDir(), "bench")
	out, err := exec.Command(bench, "--benchmarks=fillrandom", "--db="+dir, "--num=60000", "--batch_size=2",
		"--wal_ttl_seconds=3600", "--value_size=100", "--compression_type=none",
		"--write_buffer_size=262144", "--seed=5", "--threads=1").CombinedOutput()
	if err != nil {
		t.Fatalf("db_bench fillrandom: %v: %s", err, out)
	}
	tail := newTail(t, dir, 1)
	frozen := time.Unix(1e9, 0)
	tail.now = func() time.Time { return frozen }
	first := drainN(t, tail, 1)
	head, behind, err := tail.Head()
	if err != nil || head.Sequence != 60000 {
		t.Fatalf("head before reading the backlog: %+v, %v; want sequence 60000", head, err)
	}
	got := drainTail(t, tail, first)
	if want := 60000 / 2; len(got) != want {
		t.Fatalf("read %d batches in one go with a clock that does not move, want all %d", len(got), want)
	}
	if last := got[len(got)-1].Next() - 1; last != 60000 {
		t.Fatalf("the tail ends at seq %d, want 60000", last)
	}
	files := map[string]bool{}
	for _, b := range got {
		files[filepath.Base(b.path)] = true
	}
	var total int64
	for name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			fi, err = os.Stat(filepath.Join(dir, "archive", name))
		}
		if err != nil {
			t.Fatal(err)
		}
		total += fi.Size()
	}
	if behind < total*9/10 || behind > total {
		t.Fatalf("the head was %d bytes ahead after the first batch, want about the %d bytes of the WAL files", behind, total)
	}
	listings, lists := tail.listings, tail.lists
	for range 100 {
		drainTail(t, tail, got)
		if head, behind, err := tail.Head(); err != nil || head.Sequence != 60000 || behind != 0 {
			t.Fatalf("head at the live end: %+v, %d bytes behind, %v; want sequence 60000, 0 bytes", head, behind, err)
		}
	}
	t.Logf("%d WAL files read with %d listings of dir and archive/, %d at the live end", len(files), lists, listings)
	for _, i := range []int{0, 1, len(got) / 3, len(got) / 2, len(got) - 2, len(got) - 1} {
		from := newTail(t, dir, got[i].Seq)
		rest := drainTail(t, from, nil)
		if len(rest) != len(got)-i || rest[0].Seq != got[i].Seq {
			t.Fatalf("seek to seq %d: %d batches, want %d from it", got[i].Seq, len(rest), len(got)-i)
		}
		if most := 2 + 2*bits.Len(uint(len(files))); from.probes > most {
			t.Fatalf("seek to seq %d read %d first records of %d WAL files, want at most %d", got[i].Seq, from.probes, len(files), most)
		}
	}
	switch {
	case len(files) < 20:
		t.Fatalf("db_bench wrote %d WAL files, want 20 or more", len(files))
	case lists > len(files)/5:
		t.Fatalf("%d listings for %d WAL files: the tail lists at (nearly) every switch", lists, len(files))
	case tail.listings != listings || tail.lists != lists:
		t.Fatalf("100 polls at the live end with a clock that does not move listed %d+%d more times, want 0",
			tail.listings-listings, tail.lists-lists)
	}
}

// TestWALTailRecycledRocksDB reads RocksDB's recyclable records: a writer
// with recycle_log_file_num reuses its old WAL files, whose old records
// follow the new ones.
func TestWALTailRecycledRocksDB(t *testing.T) {
	rng := rand.New(rand.NewPCG(49, 50))
	dir := filepath.Join(t.TempDir(), "src")
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	o.SetCreateIfMissing(true)
	o.SetRecycleLogFileNum(2)
	o.SetWALRecoveryMode(grocksdb.SkipAnyCorruptedRecordsRecovery) // else RocksDB does not recycle
	db, err := grocksdb.OpenDb(o, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	tail := newTail(t, dir, 1)
	var got []tailBatch
	var written [][]byte
	recycled, stale := 0, 0
	for round := range 8 {
		for range 4 { // the tail reaches the writer in the middle of the file
			for range 5 + rng.IntN(50) {
				wb := grocksdb.NewWriteBatch()
				wb.Put(fmt.Appendf(nil, "k%d", rng.IntN(100)), make([]byte, 10+rng.IntN(500)))
				if err := db.Write(wo, wb); err != nil {
					t.Fatal(err)
				}
				written = append(written, bytes.Clone(wb.Data()))
				wb.Destroy()
			}
			got = drainTail(t, tail, got) // before the file can be reused
		}
		if live, _ := walFiles(dir); len(live) > 0 {
			data, err := os.ReadFile(live[len(live)-1])
			if err == nil && len(data) > walHeaderSize && data[6] >= walRecyclableFullType && data[6] <= walRecyclableLastType {
				recycled++
			}
			if tail.cur != nil && tail.cur.off < int64(len(data)) {
				stale++ // the tail stopped before old records
			}
			t.Logf("round %d: %d bytes in %s, the tail at offset %d", round, len(data), filepath.Base(live[len(live)-1]), tail.cur.off)
		}
		if err := db.Flush(fo); err != nil {
			t.Fatal(err)
		}
	}
	sameData(t, got, written)
	if recycled == 0 || stale == 0 {
		t.Fatalf("RocksDB wrote recyclable records in %d rounds, left old records after them in %d: the test shows nothing", recycled, stale)
	}
}

// TestWALTailDBBench tails a database that db_bench overwrites in another
// process (the sidecar's case): every batch once, in order, the same as
// RocksDB's WAL iterator gives.
func TestWALTailDBBench(t *testing.T) {
	bench := requireTool(t, "db_bench")
	dir := filepath.Join(t.TempDir(), "bench")
	common := []string{"--db=" + dir, "--wal_ttl_seconds=3600", "--value_size=100", "--compression_type=none",
		"--write_buffer_size=262144", "--seed=3", "--threads=1"}
	create := exec.Command(bench, append([]string{"--benchmarks=fillrandom", "--num=2000"}, common...)...)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("db_bench fillrandom: %v: %s", err, out)
	}
	tail := newTail(t, dir, 1)
	got := drainTail(t, tail, nil)
	if len(got) != 2000 {
		t.Fatalf("read %d batches of fillrandom, want 2000", len(got))
	}

	const num, perBatch = 80_000, 4
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bench, append([]string{"--benchmarks=overwrite", "--use_existing_db=1",
		"--num=" + strconv.Itoa(num), "--batch_size=" + strconv.Itoa(perBatch), "--benchmark_write_rate_limit=3000000"}, common...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	waits := 0
	for running := true; running; {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("db_bench: %v: %s", err, stderr.String())
			}
			running = false
		case <-time.After(5 * time.Millisecond):
		}
		before := len(got)
		if got = drainTail(t, tail, got); len(got) == before {
			waits++
		}
	}
	got = drainTail(t, tail, got)
	if want := 2000 + num/perBatch; len(got) != want {
		t.Fatalf("read %d batches, want %d", len(got), want)
	}
	f := follow(t, dir)
	if last := got[len(got)-1].Next() - 1; last != f.LatestSequence() {
		t.Fatalf("the tail ends at seq %d, the database at %d", last, f.LatestSequence())
	}
	u, err := f.Updates(1)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	want := drain(t, u, nil)
	if len(want) != len(got) {
		t.Fatalf("GetUpdatesSince gives %d batches, the tail %d", len(want), len(got))
	}
	for i := range want {
		if want[i].Seq != got[i].Seq || want[i].Count != got[i].Count || !bytes.Equal(want[i].Data, got[i].Data) {
			t.Fatalf("batch %d differs from GetUpdatesSince's (seq %d / %d)", i, got[i].Seq, want[i].Seq)
		}
	}
	files := map[string]bool{}
	for _, b := range got {
		files[filepath.Base(b.path)] = true
	}
	t.Logf("%d batches from %d WAL files of db_bench, read while it wrote (%d reads found nothing new); equal to GetUpdatesSince",
		len(got), len(files), waits)
	if len(files) < 5 || waits < 10 {
		t.Fatalf("%d files, %d waits: db_bench did not switch files or the tail did not follow it live", len(files), waits)
	}
}

// TestFollowerSource: the sidecar's Source reads with the tail, opens a
// secondary only for a checkpoint and closes it after, and notices a
// replaced database.
func TestFollowerSource(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	dir := filepath.Join(t.TempDir(), "src")
	w := newWriter(t, dir, 3600, "a")
	written := w.writeRandomKeep(rng, 100)
	src, err := NewFollowerSource(dir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if id, _ := src.Identity(); id == "" {
		t.Fatal("no identity")
	}
	next := func() []segmentBatch {
		var out []segmentBatch
		for {
			if err := src.Refresh(); err != nil {
				t.Fatal(err)
			}
			b, ok, err := src.Next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				return out
			}
			// archive.Source: Data is valid until the next call.
			out = append(out, segmentBatch{b.Seq, b.Count, bytes.Clone(b.Data)})
		}
	}
	if err := src.Seek(1); err != nil {
		t.Fatal(err)
	}
	got := next()
	written = append(written, w.writeRandomKeep(rng, 50)...)
	w.flush()
	written = append(written, w.writeRandomKeep(rng, 50)...)
	// The flush switched to a new WAL file: the tail sees that at its next
	// listing of the folder, at most walFinishedEvery after the last one.
	for deadline := time.Now().Add(walFinishedEvery + time.Second); len(got) < len(written) && time.Now().Before(deadline); {
		got = append(got, next()...)
		time.Sleep(10 * time.Millisecond)
	}
	if len(got) != len(written) {
		t.Fatalf("read %d batches, wrote %d", len(got), len(written))
	}
	for i := range got {
		if !bytes.Equal(got[i].data, written[i]) {
			t.Fatalf("batch %d differs", i)
		}
	}

	cp := filepath.Join(t.TempDir(), "cp")
	seq, err := src.Checkpoint(cp)
	if err != nil || seq != w.latest() {
		t.Fatalf("checkpoint at %d, %v; want %d", seq, err, w.latest())
	}
	if src.f != nil {
		t.Fatal("the checkpoint's secondary was kept open")
	}
	if _, err := os.Stat(filepath.Join(cp, "IDENTITY")); err != nil {
		t.Fatalf("checkpoint without IDENTITY: %v", err)
	}

	// Seek inside a batch of several operations: an error, not a gap.
	inside := uint64(0)
	for _, b := range got {
		if b.count > 1 {
			inside = b.seq + 1
			break
		}
	}
	if err := src.Seek(inside); err != nil {
		t.Fatal(err)
	}
	if _, _, err := src.Next(); err == nil || errors.Is(err, archive.ErrGap) {
		t.Fatalf("seek inside a batch: %v, want an error that is not a gap", err)
	}

	// A kept Follower is caught up by a checkpoint.
	if f := src.Follower(); f == nil || src.Follower() != f {
		t.Fatal("Follower: nil or not kept")
	}
	w.writeRandom(rng, 20)
	if seq, err := src.Checkpoint(filepath.Join(t.TempDir(), "cp2")); err != nil || seq != w.latest() {
		t.Fatalf("checkpoint with the kept follower at %d, %v; want %d", seq, err, w.latest())
	}

	// A gap matches archive.ErrGap.
	w.wo.DisableWAL(true)
	w.writeRandom(rng, 2)
	w.wo.DisableWAL(false)
	w.writeRandom(rng, 2)
	if err := src.Seek(got[len(got)-1].seq + uint64(got[len(got)-1].count)); err != nil {
		t.Fatal(err)
	}
	var gapErr error
	for gapErr == nil {
		_, ok, err := src.Next()
		if !ok && err == nil {
			t.Fatal("no gap at the unlogged writes")
		}
		gapErr = err
	}
	if !errors.Is(gapErr, archive.ErrGap) || !errors.Is(gapErr, ErrGap) {
		t.Fatalf("unlogged writes: %v, want archive.ErrGap", gapErr)
	}

	// The database deleted and created again: Refresh says so (at most a
	// second later), and so does Checkpoint.
	w.close()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	w = newWriter(t, dir, 3600)
	w.writeRandom(rng, 5)
	src.checked = time.Time{}
	if err := src.Refresh(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("refresh after the database was replaced: %v, want ErrReplaced", err)
	}
	if _, err := src.Checkpoint(filepath.Join(t.TempDir(), "cp3")); !errors.Is(err, ErrReplaced) {
		t.Fatalf("checkpoint after the database was replaced: %v, want ErrReplaced", err)
	}
}

type segmentBatch struct {
	seq   uint64
	count uint32
	data  []byte
}

// TestWALTailFlushedTwiceWhileWaiting: the reader waits at the end of a WAL
// file while the writer flushes twice (WAL_ttl_seconds moves each finished
// file to archive/), leaving in dir one newer file only, and that one
// empty. The files in between are in archive/: the reader must move on to
// them, not wait for the empty one to get data. (It waited forever.)
func TestWALTailFlushedTwiceWhileWaiting(t *testing.T) {
	rng := rand.New(rand.NewPCG(61, 62))
	w := newOptionsWriter(t, filepath.Join(t.TempDir(), "db"), "WAL_ttl_seconds=3600;write_buffer_size=67108864")
	w.writeRandom(rng, 20)
	w.flush()
	start := w.latest() + 1
	tail, err := NewWALTail(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	if err := tail.Seek(start); err != nil {
		t.Fatal(err)
	}
	// The reader looks once: the newest file is empty, nothing to read.
	if _, ok, err := tail.Next(); err != nil || ok {
		t.Fatalf("Next on an empty WAL: ok %v, %v", ok, err)
	}
	for range 2 {
		w.writeRandom(rng, 20)
		w.flush()
	}
	want := w.latest()
	got := start - 1
	for tries := 0; got < want && tries < 1000; tries++ {
		b, ok, err := tail.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			tail.now = func() time.Time { return time.Now().Add(time.Duration(tries+1) * walFinishedEvery) } // a listing is due at each look
			continue
		}
		got = b.Next() - 1
	}
	if got != want {
		t.Fatalf("the reader reached sequence %d, the writer wrote up to %d (its files moved to archive/ while it waited)", got, want)
	}
}

// TestWALTailSeesSwitchAtOnce: waiting at the live end of the newest WAL
// file with a clock that does not move (no listing is due by time), the
// tail sees the writer's next WAL file at its next look: the folder's
// mtime changed, so it lists at once. The batch written into the new file
// comes without waiting walFinishedEvery.
func TestWALTailSeesSwitchAtOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	opts.SetCreateIfMissing(true)
	opts.SetWALTtlSeconds(3600)
	db, err := grocksdb.OpenDb(opts, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	if err := db.Put(wo, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	tail := newTail(t, dir, 1)
	frozen := time.Unix(1e9, 0)
	tail.now = func() time.Time { return frozen }
	got := drainTail(t, tail, nil) // the batch, then the live end (one listing)
	if len(got) != 1 {
		t.Fatalf("read %d batches, want 1", len(got))
	}
	listings := tail.listings
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	if err := db.Flush(fo); err != nil { // the writer moves to a new WAL file
		t.Fatal(err)
	}
	if err := db.Put(wo, []byte("b"), []byte("2")); err != nil {
		t.Fatal(err)
	}
	got = drainTail(t, tail, got)
	if len(got) != 2 || filepath.Base(got[1].path) == filepath.Base(got[0].path) {
		t.Fatalf("after the switch the tail read %d batches (want 2, the second from the new WAL file), with a clock that does not move", len(got))
	}
	if tail.listings == listings {
		t.Fatalf("the tail saw the new WAL file without listing the folder?")
	}
}
