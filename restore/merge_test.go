package restore

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/internal/testops"
	"github.com/rockstream/rockstream/rocks"
)

// family is a column family of an application's database and its
// options, as an option string.
type family struct{ name, opts string }

// appFamilies are the families of a database with per-family options:
// merge operators (uint64add, stringappend), universal compaction with
// zstd, FIFO with a long TTL, another block size.
var appFamilies = []family{
	{"default", ""},
	{"add", "merge_operator=uint64add"},
	{"app", "merge_operator=stringappend;compaction_style=kCompactionStyleUniversal;compression=kZSTD"},
	{"fifo", "compaction_style=kCompactionStyleFIFO;ttl=31536000;compaction_options_fifo={max_table_files_size=1073741824;allow_compaction=false}"},
	{"blk", "block_based_table_factory={block_size=16384}"},
}

// appDB is a database that a Go application writes with its own options.
// Its options are never destroyed: grocksdb v1.7.15 frees a Go merge
// operator twice.
type appDB struct {
	t   *testing.T
	dir string
	db  *grocksdb.DB
	cfs []*grocksdb.ColumnFamilyHandle
	wo  *grocksdb.WriteOptions
	rng *rand.Rand
}

func openApp(t *testing.T, dir string, fams []family, custom map[string]grocksdb.MergeOperator) *appDB {
	t.Helper()
	base, err := grocksdb.GetOptionsFromString(nil, "create_if_missing=true;create_missing_column_families=true;"+
		"WAL_ttl_seconds=3600;max_open_files=-1;write_buffer_size=65536")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var opts []*grocksdb.Options
	for _, f := range fams {
		o := base
		if f.opts != "" {
			if o, err = grocksdb.GetOptionsFromString(base, f.opts); err != nil {
				t.Fatalf("%s: %v", f.name, err)
			}
		}
		if op, ok := custom[f.name]; ok {
			if o, err = grocksdb.GetOptionsFromString(base, ""); err != nil {
				t.Fatal(err)
			}
			o.SetMergeOperator(op)
		}
		names, opts = append(names, f.name), append(opts, o)
	}
	a := &appDB{t: t, dir: dir, wo: grocksdb.NewDefaultWriteOptions(), rng: rand.New(rand.NewPCG(5, 6))}
	if a.db, a.cfs, err = grocksdb.OpenDbColumnFamilies(base, dir, names, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.close)
	return a
}

// write writes n batches of 1 to 5 operations: merges in the families
// with a merge operator, puts and deletes everywhere.
func (a *appDB) write(n int, merges map[int]func(rng *rand.Rand) []byte) {
	a.t.Helper()
	for range n {
		wb := grocksdb.NewWriteBatch()
		for range 1 + a.rng.IntN(5) {
			i := a.rng.IntN(len(a.cfs))
			key := fmt.Appendf(nil, "k%03d", a.rng.IntN(300))
			r := a.rng.IntN(10)
			switch mk, ok := merges[i]; {
			case ok && r < 8:
				wb.MergeCF(a.cfs[i], key, mk(a.rng))
			case ok && r < 9 && i == 1: // uint64add needs 8-byte values
				wb.PutCF(a.cfs[i], key, binary.LittleEndian.AppendUint64(nil, 3))
			case r < 9:
				wb.PutCF(a.cfs[i], key, fmt.Appendf(nil, "p%d-%x", a.rng.IntN(1000), make([]byte, a.rng.IntN(200))))
			default:
				wb.DeleteCF(a.cfs[i], key)
			}
		}
		if err := a.db.Write(a.wo, wb); err != nil {
			a.t.Fatal(err)
		}
		wb.Destroy()
	}
}

func (a *appDB) latest() uint64 { return a.db.GetLatestSequenceNumber() }

// checkpoint copies the database into dir (the oracle of a restore to
// its sequence).
func (a *appDB) checkpoint(dir string) uint64 {
	a.t.Helper()
	cp, err := a.db.NewCheckpoint()
	if err != nil {
		a.t.Fatal(err)
	}
	defer cp.Destroy()
	if err := cp.CreateCheckpoint(dir, math.MaxUint64); err != nil {
		a.t.Fatal(err)
	}
	return a.latest()
}

func (a *appDB) close() {
	if a.db == nil {
		return
	}
	for _, cf := range a.cfs {
		cf.Destroy()
	}
	a.db.Close()
	a.db = nil
}

var appMerges = map[int]func(rng *rand.Rand) []byte{
	1: func(rng *rand.Rand) []byte { return binary.LittleEndian.AppendUint64(nil, uint64(rng.IntN(100))) },
	2: func(rng *rand.Rand) []byte { return fmt.Appendf(nil, "v%d", rng.IntN(100)) },
}

// archiveApp writes an application's database while archiving it: 200
// batches, a base, then 1500 batches twice, with a checkpoint of the
// source after each as the oracle. It returns the store's folder and the
// checkpoints by sequence.
func archiveApp(t *testing.T, root string, fams []family, custom map[string]grocksdb.MergeOperator, merges map[int]func(*rand.Rand) []byte) (string, map[uint64]string) {
	t.Helper()
	bucket, oracles, _ := archiveAppStats(t, root, fams, custom, merges)
	return bucket, oracles
}

// archiveAppStats is archiveApp that also gives the archiver's last Stats.
func archiveAppStats(t *testing.T, root string, fams []family, custom map[string]grocksdb.MergeOperator, merges map[int]func(*rand.Rand) []byte) (string, map[uint64]string, archive.Stats) {
	t.Helper()
	app := openApp(t, filepath.Join(root, "db"), fams, custom)
	app.write(200, merges)
	bucket := filepath.Join(root, "bucket")
	arch := startArchiver(t, app.dir, fileStore(t, bucket), filepath.Join(root, "work"))
	waitFor(t, "the first base", func() bool { return arch.a.Stats().Bases >= 1 })
	oracles := map[uint64]string{}
	for i := range 2 {
		app.write(1500, merges)
		dir := filepath.Join(root, fmt.Sprintf("oracle-%d", i))
		seq := app.checkpoint(dir)
		oracles[seq] = dir
		waitFor(t, "the archive", func() bool { return arch.a.Stats().LastSequence >= seq })
	}
	arch.stop(t)
	return bucket, oracles, arch.a.Stats()
}

// TestRestoreOwnOptions restores a database with merge operators and
// per-family options at a mid-point and at the end, by each path (batches
// written directly; by recovery, in WAL chunks of 64 KiB): each equals
// the source's checkpoint at that sequence, family by family, and the
// restored OPTIONS file keeps every option of the source's.
func TestRestoreOwnOptions(t *testing.T) {
	t.Run("direct", func(t *testing.T) { restoreOwnOptions(t) })
	t.Run("recovery", func(t *testing.T) {
		defer func(n int64, r bool) { replayChunkBytes, replayRecovery = n, r }(replayChunkBytes, replayRecovery)
		replayChunkBytes, replayRecovery = 64<<10, true
		restoreOwnOptions(t)
	})
}

func restoreOwnOptions(t *testing.T) {
	root := t.TempDir()
	bucket, oracles, stats := archiveAppStats(t, root, appFamilies, nil, appMerges)
	if len(stats.ReplayNeeds) != 0 {
		t.Fatalf("built-in merge operators reported as needing the application: %q", stats.ReplayNeeds)
	}
	for seq, oracle := range oracles {
		dir := filepath.Join(root, fmt.Sprintf("restored-%d", seq))
		res, err := Run(context.Background(), fileStore(t, bucket), Options{Dir: dir, ToSeq: seqp(seq), Logger: quiet()})
		if err != nil {
			t.Fatalf("restore to %d: %v", seq, err)
		}
		if res.Sequence != seq || res.Batches == 0 {
			t.Fatalf("restored to %d with %d batches, want %d", res.Sequence, res.Batches, seq)
		}
		sameDigest(t, dir, oracle, nil)
		sameOptions(t, dir, oracle)
	}
}

// sameDigest compares two databases, family by family, each opened with
// its own options.
func sameDigest(t *testing.T, got, want string, ops *rocks.Operators) {
	t.Helper()
	g, gs := digestWith(t, got, ops)
	w, ws := digestWith(t, want, ops)
	if d := g.Diff(w); d != "" || gs != ws {
		t.Fatalf("%s (sequence %d) differs from %s (sequence %d): %s", got, gs, want, ws, d)
	}
	for name, cf := range w {
		if cf.Keys == 0 {
			t.Fatalf("column family %q of %s is empty: the comparison shows little", name, want)
		}
	}
}

func digestWith(t *testing.T, dir string, ops *rocks.Operators) (rocks.Digest, uint64) {
	t.Helper()
	db, err := rocks.OpenReadOnlyWith(dir, ops)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	d, err := db.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d, db.LatestSequence()
}

// overridden are the DBOptions that a restore opens the database with
// other than the source's (rocks.loadOwnOptions localize).
var overridden = map[string]bool{"create_if_missing": true, "create_missing_column_families": true,
	"avoid_flush_during_recovery": true, "wal_dir": true, "db_log_dir": true}

// sameOptions compares the newest OPTIONS files of two databases, option
// by option, section by section.
func sameOptions(t *testing.T, got, want string) {
	t.Helper()
	g, w := readOptions(t, got), readOptions(t, want)
	n := 0
	for key, wv := range w {
		if gv, ok := g[key]; (!ok || gv != wv) && !overridden[strings.SplitN(key, "\x00", 2)[1]] {
			t.Errorf("OPTIONS of %s: %s = %q, the source has %q", got, strings.ReplaceAll(key, "\x00", " "), gv, wv)
		}
		n++
	}
	if n < 100 || len(g) != len(w) {
		t.Fatalf("OPTIONS: %d options, the source's %d", len(g), len(w))
	}
	for _, want := range []string{"[CFOptions \"fifo\"]\x00compaction_style", "[CFOptions \"app\"]\x00merge_operator", "[TableOptions/BlockBasedTable \"blk\"]\x00block_size"} {
		if _, ok := g[want]; !ok {
			t.Fatalf("OPTIONS of %s has no %q", got, want)
		}
	}
}

// readOptions reads the newest OPTIONS file of dir as "section\x00key" to
// value.
func readOptions(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	newest := ""
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "OPTIONS-") && !strings.HasSuffix(e.Name(), ".dbtmp") && (newest == "" || optionsNum(e.Name()) > optionsNum(newest)) {
			newest = e.Name()
		}
	}
	f, err := os.Open(filepath.Join(dir, newest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out, section := map[string]string{}, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section != "[Version]":
			k, v, _ := strings.Cut(line, "=")
			out[section+"\x00"+k] = v
		}
	}
	return out
}

func optionsNum(name string) int {
	var n int
	fmt.Sscanf(strings.TrimPrefix(name, "OPTIONS-"), "%d", &n)
	return n
}

// TestRestoreHandOff: a database whose options name a merge operator of
// the application's own is refused before anything is written, with a
// message that names --hand-off; with HandOff, the base and the batches
// are written as WAL, and the application, opening the folder with its
// operator, gets the source's state.
func TestRestoreHandOff(t *testing.T) {
	root := t.TempDir()
	fams := []family{{"default", ""}, {"m", ""}}
	custom := map[string]grocksdb.MergeOperator{"m": testops.Concat{}}
	merges := map[int]func(*rand.Rand) []byte{1: func(rng *rand.Rand) []byte { return fmt.Appendf(nil, "c%d", rng.IntN(50)) }}
	bucket, oracles, stats := archiveAppStats(t, root, fams, custom, merges)
	ops := &rocks.Operators{Merge: map[string]grocksdb.MergeOperator{testops.ConcatName: testops.Concat{}}}
	// Known at archive time, and in status, not first at restore time.
	if len(stats.ReplayNeeds) != 1 || !strings.Contains(stats.ReplayNeeds[0], testops.ConcatName) {
		t.Fatalf("the archiver's ReplayNeeds: %q, want the operator %q", stats.ReplayNeeds, testops.ConcatName)
	}
	st, err := catalog.ReadStatusWith(context.Background(), fileStore(t, bucket), ReplayNeeds)
	if err != nil || len(st.Bases) == 0 || len(st.Problems) != 0 {
		t.Fatalf("status: %v, %d bases, problems %q", err, len(st.Bases), st.Problems)
	}
	for _, b := range st.Bases {
		if len(b.ReplayNeeds) != 1 || !strings.Contains(b.ReplayNeeds[0], testops.ConcatName) {
			t.Fatalf("status of the base at %d: replay needs %q, want the operator %q", b.Sequence, b.ReplayNeeds, testops.ConcatName)
		}
	}
	for seq, oracle := range oracles {
		dir := filepath.Join(root, fmt.Sprintf("restored-%d", seq))
		_, err := Run(context.Background(), fileStore(t, bucket), Options{Dir: dir, ToSeq: seqp(seq), Logger: quiet()})
		if !errors.Is(err, rocks.ErrForeignOptions) || !strings.Contains(err.Error(), "--hand-off") || !strings.Contains(err.Error(), testops.ConcatName) {
			t.Fatalf("restore without the operator: %v, want a refusal that names the operator and --hand-off", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("the refused restore left %s: %v", dir, err)
		}
		res, err := Run(context.Background(), fileStore(t, bucket), Options{Dir: dir, ToSeq: seqp(seq), HandOff: true, Logger: quiet()})
		if err != nil || res.Sequence != seq || len(res.HandOffFiles) == 0 {
			t.Fatalf("hand-off restore to %d: %v (sequence %d, %d WAL files)", seq, err, res.Sequence, len(res.HandOffFiles))
		}
		app := openApp(t, dir, fams, custom)
		if got := app.latest(); got != seq {
			t.Fatalf("the application opened the handed-off folder at sequence %d, want %d", got, seq)
		}
		app.close()
		sameDigest(t, dir, oracle, ops)
	}
}

// TestRestoreDBBenchMerges archives what db_bench writes with
// --benchmarks=mergerandom --merge_operator=uint64add (another process,
// merges in every batch), and restores a mid-point and the latest state:
// each equals a copy of the source taken at that sequence.
func TestRestoreDBBenchMerges(t *testing.T) {
	dbBench := testenv.RequireTool(t, "db_bench")
	root := t.TempDir()
	db := filepath.Join(root, "db")
	run := func(existing bool, n int) uint64 {
		t.Helper()
		args := []string{"--db=" + db, "--benchmarks=mergerandom", "--merge_operator=uint64add", "--wal_ttl_seconds=3600",
			"--write_buffer_size=65536", "--value_size=8", "--threads=1", fmt.Sprintf("--num=%d", n), "--seed=7",
			fmt.Sprintf("--use_existing_db=%v", existing)}
		if out, err := exec.Command(dbBench, args...).CombinedOutput(); err != nil {
			t.Fatalf("db_bench: %v: %s", err, out)
		}
		_, seq := digestWith(t, db, nil)
		return seq
	}
	run(false, 2000)
	bucket := filepath.Join(root, "bucket")
	arch := startArchiver(t, db, fileStore(t, bucket), filepath.Join(root, "work"))
	waitFor(t, "the first base", func() bool { return arch.a.Stats().Bases >= 1 })
	oracles := map[uint64]string{}
	for i := range 2 {
		seq := run(true, 5000)
		oracle := filepath.Join(root, fmt.Sprintf("oracle-%d", i))
		if err := os.CopyFS(oracle, os.DirFS(db)); err != nil {
			t.Fatal(err)
		}
		oracles[seq] = oracle
		waitFor(t, "the archive", func() bool { return arch.a.Stats().LastSequence >= seq })
	}
	arch.stop(t)
	for seq, oracle := range oracles {
		dir := filepath.Join(root, fmt.Sprintf("restored-%d", seq))
		res, err := Run(context.Background(), fileStore(t, bucket), Options{Dir: dir, ToSeq: seqp(seq), Logger: quiet()})
		if err != nil || res.Sequence != seq || res.Batches < 5000 {
			t.Fatalf("restore to %d: %v (sequence %d, %d batches)", seq, err, res.Sequence, res.Batches)
		}
		sameDigest(t, dir, oracle, nil)
	}
}
