package rocks

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// mergeSource is a database written as an application with merge
// operators writes it: family "add" with uint64add, "app" with
// stringappend, "plain" with none; small memtables, so that it flushes,
// and WAL kept for an hour, so that WALTail reads all of it.
type mergeSource struct {
	t    *testing.T
	dir  string
	db   *grocksdb.DB
	cfs  []*grocksdb.ColumnFamilyHandle
	opts []*grocksdb.Options
	wo   *grocksdb.WriteOptions
	rng  *rand.Rand
}

var mergeFamilies = []string{"default", "add", "app", "plain"}

// newMergeSource opens it, with extra DBOptions (an option string).
func newMergeSource(t *testing.T, dir, extra string) *mergeSource {
	t.Helper()
	base, err := grocksdb.GetOptionsFromString(nil, "create_if_missing=true;create_missing_column_families=true;"+
		"WAL_ttl_seconds=3600;write_buffer_size=65536;"+extra)
	if err != nil {
		t.Fatal(err)
	}
	s := &mergeSource{t: t, dir: dir, wo: grocksdb.NewDefaultWriteOptions(), rng: rand.New(rand.NewPCG(3, 4))}
	for _, o := range []string{"", "merge_operator=uint64add", "merge_operator=stringappend", ""} {
		if o == "" {
			s.opts = append(s.opts, base)
			continue
		}
		m, err := grocksdb.GetOptionsFromString(base, o)
		if err != nil {
			t.Fatal(err)
		}
		s.opts = append(s.opts, m)
	}
	s.db, s.cfs, err = grocksdb.OpenDbColumnFamilies(base, dir, mergeFamilies, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s
}

// write writes n batches of 1 to 5 operations: merges in "add" and "app",
// puts and deletes everywhere.
func (s *mergeSource) write(n int) {
	s.t.Helper()
	for range n {
		wb := grocksdb.NewWriteBatch()
		for range 1 + s.rng.IntN(5) {
			i := s.rng.IntN(len(s.cfs))
			key := fmt.Appendf(nil, "k%03d", s.rng.IntN(200))
			switch r := s.rng.IntN(10); {
			case i == 1 && r < 8:
				wb.MergeCF(s.cfs[i], key, u64(uint64(s.rng.IntN(1000))))
			case i == 2 && r < 8:
				wb.MergeCF(s.cfs[i], key, fmt.Appendf(nil, "v%d", s.rng.IntN(1000)))
			case r < 9:
				if i == 1 {
					wb.PutCF(s.cfs[i], key, u64(7))
				} else {
					wb.PutCF(s.cfs[i], key, fmt.Appendf(nil, "p%d-%x", s.rng.IntN(1000), make([]byte, s.rng.IntN(200))))
				}
			default:
				wb.DeleteCF(s.cfs[i], key)
			}
		}
		if err := s.db.Write(s.wo, wb); err != nil {
			s.t.Fatal(err)
		}
		wb.Destroy()
	}
}

// checkpoint copies the database into dir and returns its sequence.
func (s *mergeSource) checkpoint(dir string) uint64 {
	s.t.Helper()
	cp, err := s.db.NewCheckpoint()
	if err != nil {
		s.t.Fatal(err)
	}
	defer cp.Destroy()
	if err := cp.CreateCheckpoint(dir, math.MaxUint64); err != nil {
		s.t.Fatal(err)
	}
	return s.db.GetLatestSequenceNumber()
}

func (s *mergeSource) close() {
	if s.db == nil {
		return
	}
	for _, cf := range s.cfs {
		cf.Destroy()
	}
	s.db.Close()
	s.wo.Destroy()
	s.db = nil
	// The options are not destroyed: the merge operators' are freed twice
	// by grocksdb v1.7.15 (see writeCustom).
}

// batchesAfter reads the source's batches after seq up to to.
func batchesAfter(t *testing.T, dir string, seq, to uint64) []Batch {
	t.Helper()
	var out []Batch
	for _, b := range drainTail(t, newTail(t, dir, seq+1), nil) {
		if b.Next()-1 <= to {
			out = append(out, b.Batch)
		}
	}
	if len(out) == 0 || out[len(out)-1].Next()-1 != to {
		t.Fatalf("the source's WAL has no batches from %d up to %d", seq+1, to)
	}
	return out
}

func dirDigest(t *testing.T, dir string) (Digest, uint64) {
	t.Helper()
	db, err := OpenReadOnly(dir)
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

// TestReplayerMerges replays a database's merges (uint64add and
// stringappend), by each path (written directly; by recovery, in chunks
// of 64 KiB), from a checkpoint to a mid-point and to the end: each result
// equals the source's own checkpoint at that sequence, family by family;
// no WAL file of the replay is left behind.
func TestReplayerMerges(t *testing.T) {
	for _, c := range []struct{ name, extra string }{
		{"defaults", ""},
		// db_impl_open.cc:624 asserts when such a database is opened
		// with options that do not track WALs.
		{"track_and_verify_wals_in_manifest", "track_and_verify_wals_in_manifest=true"},
		// Merges combined at write time read the memtable: the direct
		// path keeps the families' own memtables (ownOptions.bulkLoad).
		{"max_successive_merges", "max_successive_merges=3"},
	} {
		for _, path := range []struct {
			name string
			opts ReplayOptions
		}{{"direct", ReplayOptions{}}, {"recovery", ReplayOptions{Recovery: true, ChunkBytes: 64 << 10}}} {
			t.Run(c.name+"/"+path.name, func(t *testing.T) { replayMerges(t, c.extra, path.opts) })
		}
	}
}

func replayMerges(t *testing.T, extra string, opts ReplayOptions) {
	tmp := t.TempDir()
	src := newMergeSource(t, filepath.Join(tmp, "src"), extra)
	src.write(500)
	baseSeq := src.checkpoint(filepath.Join(tmp, "base"))
	baseOpts := memtableOptions(t, filepath.Join(tmp, "base"))
	src.write(1500)
	midSeq := src.checkpoint(filepath.Join(tmp, "mid"))
	src.write(1500)
	endSeq := src.checkpoint(filepath.Join(tmp, "end"))
	src.close()
	for _, c := range []struct {
		name string
		to   uint64
	}{{"mid", midSeq}, {"end", endSeq}} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(tmp, "replay-"+c.name)
			copyDir(t, filepath.Join(tmp, "base"), dir)
			r, err := NewReplayer(dir, opts)
			if err != nil {
				t.Fatal(err)
			}
			if r.Sequence() != baseSeq {
				t.Fatalf("the base opens at %d, want %d", r.Sequence(), baseSeq)
			}
			for _, b := range batchesAfter(t, src.dir, baseSeq, c.to) {
				if err := r.Add(b.Data); err != nil {
					failReplay(t, dir, err)
				}
			}
			if err := r.Finish(c.to); err != nil {
				failReplay(t, dir, err)
			}
			got, seq := dirDigest(t, dir)
			want, _ := dirDigest(t, filepath.Join(tmp, c.name))
			if d := got.Diff(want); d != "" || seq != c.to {
				t.Fatalf("replayed to %d (want %d): %s", seq, c.to, d)
			}
			if got["add"].Keys == 0 || got["app"].Keys == 0 {
				t.Fatalf("no merged keys: %+v", got)
			}
			checkNoReplayWAL(t, dir, r, opts.Recovery)
			if got := memtableOptions(t, dir); got != baseOpts {
				t.Fatalf("after the replay the newest OPTIONS file says %s, the base's said %s", got, baseOpts)
			}
		})
	}
}

// memtableOptions are the options of the newest OPTIONS file in dir that
// the direct path changes while it has the database open
// (ownOptions.bulkLoad), in one string.
func memtableOptions(t *testing.T, dir string) string {
	t.Helper()
	path, err := newestOptionsFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = scanOptionsFile(path, func(section, key, value string) {
		switch key {
		case "memtable_factory", "allow_concurrent_memtable_write", "unordered_write":
			out = append(out, section+"."+key+"="+value)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 3 {
		t.Fatalf("%s: memtable options not found: %q", path, out)
	}
	return strings.Join(out, " ")
}

// checkNoReplayWAL: the WAL files that r wrote (several chunks when by
// recovery, none when direct) are gone, from archive/ too.
func checkNoReplayWAL(t *testing.T, dir string, r *Replayer, recovery bool) {
	t.Helper()
	if recovery && len(r.chunks) < 2 {
		t.Fatalf("%d WAL files written, want several (chunks)", len(r.chunks))
	}
	if !recovery && len(r.chunks) != 0 {
		t.Fatalf("%d WAL files written by the direct path", len(r.chunks))
	}
	for _, n := range r.chunks {
		for _, d := range []string{dir, filepath.Join(dir, "archive")} {
			if _, err := os.Stat(WALPath(d, n)); err == nil {
				t.Errorf("a WAL file of the replay is left: %s", WALPath(d, n))
			}
		}
	}
}

// TestReplayerRefusesBeforeWriting: a merge in a family without a merge
// operator, an unknown column family, a gap: refused, nothing written.
func TestReplayerRefusesBeforeWriting(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	w := newWriter(t, dir, 0, "one")
	w.write(func(wb *grocksdb.WriteBatch) { wb.Put([]byte("a"), []byte("1")) })
	w.close()
	r, err := NewReplayer(dir, ReplayOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	merge := grocksdb.NewWriteBatch()
	merge.Merge([]byte("a"), []byte("x"))
	cases := map[string]struct {
		data []byte
		is   error
	}{
		"merge without operator": {withSeq(merge.Data(), 2), ErrUnsupported},
		"unknown family":         {cfPutAt(7, 2), ErrUnsupported},
		"gap":                    {cfPutAt(1, 3), ErrGap},
	}
	for name, c := range cases {
		if err := r.Add(c.data); !errors.Is(err, c.is) {
			t.Errorf("%s: %v, want %v", name, err, c.is)
		}
	}
	if r.w != nil || r.direct != nil {
		t.Fatal("a refused batch started a WAL file or opened the database")
	}
	if err := r.Add(cfPutAt(1, 2)); err != nil {
		t.Fatal(err)
	}
	if err := r.Finish(2); err != nil {
		t.Fatal(err)
	}
}

// withSeq sets a batch's sequence.
func withSeq(data []byte, seq uint64) []byte {
	out := append([]byte(nil), data...)
	for i := range 8 {
		out[i] = byte(seq >> (8 * i))
	}
	return out
}

// cfPutAt is a batch of one put into column family id, at seq.
func cfPutAt(id uint32, seq uint64) []byte {
	b := withSeq(make([]byte, headerSize), seq)
	b[8] = 1
	b = append(b, tagCFValue, byte(id), 1, 'k', 1, 'v')
	return b
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.CopyFS(to, os.DirFS(from)); err != nil {
		t.Fatal(err)
	}
}

// failReplay fails with the end of the database's LOG.
func failReplay(t *testing.T, dir string, err error) {
	t.Helper()
	log, _ := os.ReadFile(filepath.Join(dir, "LOG"))
	t.Fatalf("%v\nLOG:\n%s", err, tailLines(string(log), 40))
}

func tailLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestReplayerCustomComparator: a column family ordered by a comparator of
// the application's own is a finding, and a replay is refused before
// anything is written (the restore then needs --hand-off).
func TestReplayerCustomComparator(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	rev := grocksdb.NewComparator("test.Reverse", func(a, b []byte) int { return bytes.Compare(b, a) })
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	ro := grocksdb.NewDefaultOptions()
	ro.SetComparator(rev)
	db, cfs, err := grocksdb.OpenDbColumnFamilies(o, src, []string{"default", "rev"}, []*grocksdb.Options{o, ro})
	if err != nil {
		t.Fatal(err)
	}
	for _, cf := range cfs {
		cf.Destroy()
	}
	db.Close()
	want := Finding{Family: "rev", Kind: "comparator", Name: "test.Reverse"}
	if fs, _, err := InspectOptions(src, nil); err != nil || len(fs) != 1 || fs[0] != want {
		t.Fatalf("findings %v (%v), want [%v]", fs, err, want)
	}
	if _, err := NewReplayer(src, ReplayOptions{}); !errors.Is(err, ErrForeignOptions) || !strings.Contains(err.Error(), "test.Reverse") {
		t.Fatalf("replay: %v, want ErrForeignOptions naming the comparator", err)
	}
}
