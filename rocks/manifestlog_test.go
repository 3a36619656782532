package rocks

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// ldbManifest is what `ldb manifest_dump --hex` prints of a MANIFEST: the
// oracle that ReadManifest is compared with.
type ldbManifest struct {
	families                                      []Family
	nextFile, lastSeq, prevLog, minLog, maxFamily uint64
}

var (
	ldbFamilyRE = regexp.MustCompile(`^-+ Column family "(.*)"  \(ID (\d+)\) -+$`)
	ldbLevelRE  = regexp.MustCompile(`^--- level (\d+) --- version# \d+ ---$`)
	ldbFileRE   = regexp.MustCompile(`^ (\d+):(\d+)\[(\d+) \.\. (\d+)\]\[.*\]( blob_file:(\d+))?$`)
	ldbBlobRE   = regexp.MustCompile(`^blob_file_number: (\d+) total_blob_count: (\d+) total_blob_bytes: (\d+) .* garbage_blob_count: (\d+) garbage_blob_bytes: (\d+)$`)
	ldbTotalsRE = regexp.MustCompile(`^next_file_number (\d+) last_sequence (\d+)  prev_log_number (\d+) max_column_family (\d+) min_log_number_to_keep (\d+)$`)
)

func parseLdbManifest(t *testing.T, out []byte) ldbManifest {
	t.Helper()
	var m ldbManifest
	var fam *Family
	level := 0
	u := func(s string) uint64 {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ldb manifest_dump: %q: %v", s, err)
		}
		return n
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if g := ldbFamilyRE.FindStringSubmatch(line); g != nil {
			m.families = append(m.families, Family{Name: g[1], ID: uint32(u(g[2]))})
			fam = &m.families[len(m.families)-1]
		} else if n, ok := bytes.CutPrefix([]byte(line), []byte("log number: ")); ok {
			fam.LogNumber = u(string(n))
		} else if c, ok := bytes.CutPrefix([]byte(line), []byte("comparator: ")); ok {
			fam.Comparator = string(c)
		} else if g := ldbLevelRE.FindStringSubmatch(line); g != nil {
			level = int(u(g[1]))
		} else if g := ldbFileRE.FindStringSubmatch(line); g != nil {
			f := TableFile{Level: level, Number: u(g[1]), Size: u(g[2]), SmallestSeq: u(g[3]), LargestSeq: u(g[4])}
			if g[6] != "" {
				f.OldestBlob = u(g[6])
			}
			fam.Files = append(fam.Files, f)
		} else if g := ldbBlobRE.FindStringSubmatch(line); g != nil {
			fam.Blobs = append(fam.Blobs, BlobFile{Number: u(g[1]), TotalCount: u(g[2]), TotalBytes: u(g[3]), GarbageCount: u(g[4]), GarbageBytes: u(g[5])})
		} else if g := ldbTotalsRE.FindStringSubmatch(line); g != nil {
			m.nextFile, m.lastSeq, m.prevLog, m.maxFamily, m.minLog = u(g[1]), u(g[2]), u(g[3]), u(g[4]), u(g[5])
		}
	}
	if len(m.families) == 0 || m.nextFile == 0 {
		t.Fatalf("ldb manifest_dump: nothing parsed from:\n%.2000s", out)
	}
	return m
}

// checkManifestWithLdb compares ReadManifest(dir) with ldb manifest_dump.
func checkManifestWithLdb(t *testing.T, dir string) *Manifest {
	t.Helper()
	ldb := requireTool(t, "ldb")
	// The writer's background compactions may go on: compare a state that
	// stayed the same while ldb read it.
	var got *Manifest
	var want ldbManifest
	for attempt := 0; ; attempt++ {
		before, err := ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		want = parseLdbManifest(t, runLdb(t, ldb, "manifest_dump", "--hex", "--db="+dir))
		if got, err = ReadManifest(dir); err != nil {
			t.Fatal(err)
		}
		if got.Size == before.Size {
			break
		}
		if attempt == 100 {
			t.Fatal("the manifest changed during each of 100 reads by ldb")
		}
	}
	totals := []uint64{got.NextFileNumber, got.LastSequence, got.PrevLogNumber, uint64(got.MaxColumnFamily), got.MinLogNumberToKeep}
	// ldb prints the version set's next file number, which recovery sets to
	// the MANIFEST's plus one (the number of the MANIFEST it writes next).
	if w := []uint64{want.nextFile - 1, want.lastSeq, want.prevLog, want.maxFamily, want.minLog}; !reflect.DeepEqual(totals, w) {
		t.Errorf("next file, last seq, prev log, max cf, min log to keep: got %v, ldb says %v", totals, w)
	}
	gotFams := make([]Family, len(got.Families))
	for i, f := range got.Families {
		gotFams[i] = f
		gotFams[i].Files = nil
		for l := 0; l < 100; l++ { // ldb lists a level's files newest first
			for j := len(f.Files) - 1; j >= 0; j-- {
				if f.Files[j].Level == l {
					gotFams[i].Files = append(gotFams[i].Files, f.Files[j])
				}
			}
		}
	}
	sortLdbLevels(want.families)
	sortLdbLevels(gotFams)
	if !reflect.DeepEqual(gotFams, want.families) {
		t.Errorf("column families differ:\ngot %+v\nldb %+v", gotFams, want.families)
	}
	files, blobs := 0, 0
	for _, f := range got.Families {
		files += len(f.Files)
		blobs += len(f.Blobs)
	}
	t.Logf("%s: %d bytes, %d families, %d sst files, %d blob files, %d wals tracked, %d family edits, last seq %d: as ldb says",
		got.File, got.Size, len(got.Families), files, blobs, len(got.WALs), len(got.FamilyEdits), got.LastSequence)
	return got
}

// sortLdbLevels orders each family's files by level then number: ldb's
// order within a level (L0 by age, others by key) is not ours.
func sortLdbLevels(fams []Family) {
	for _, f := range fams {
		for i := range f.Files {
			for j := i + 1; j < len(f.Files); j++ {
				a, b := f.Files[i], f.Files[j]
				if b.Level < a.Level || (b.Level == a.Level && b.Number < a.Number) {
					f.Files[i], f.Files[j] = b, a
				}
			}
		}
	}
}

// newOptionsWriter is newWriter with options given as a RocksDB options
// string (for those that grocksdb has no setter for).
func newOptionsWriter(t testing.TB, dir, optStr string, cfNames ...string) *writer {
	t.Helper()
	base := grocksdb.NewDefaultOptions()
	defer base.Destroy()
	o, err := grocksdb.GetOptionsFromString(base, "create_if_missing=true;create_missing_column_families=true;"+optStr)
	if err != nil {
		t.Fatalf("options %q: %v", optStr, err)
	}
	return openWriter(t, dir, o, cfNames...)
}

// busyOptions make a writer shaped like a Matrix homeserver's, small:
// WAL tracking, WAL retention, small memtables (frequent WAL switches and
// flushes) and compactions.
const busyOptions = "track_and_verify_wals_in_manifest=true;WAL_ttl_seconds=3600;write_buffer_size=65536;" +
	"level0_file_num_compaction_trigger=2;max_bytes_for_level_base=262144;target_file_size_base=65536"

// dropFamily drops a column family of the writer.
func (w *writer) dropFamily(name string) {
	w.t.Helper()
	h := w.cfs[name]
	if err := w.db.DropColumnFamily(h); err != nil {
		w.t.Fatal(err)
	}
	delete(w.cfs, name)
	for i, x := range w.list {
		if x == h {
			w.list = append(w.list[:i], w.list[i+1:]...)
		}
	}
	h.Destroy()
}

// addFamily creates a column family in the writer.
func (w *writer) addFamily(name string) {
	w.t.Helper()
	h, err := w.db.CreateColumnFamily(w.opts, name)
	if err != nil {
		w.t.Fatal(err)
	}
	w.cfs[name] = h
	w.list = append(w.list, h)
}

func (w *writer) compact() {
	for _, h := range w.list {
		w.db.CompactRangeCF(h, grocksdb.Range{})
	}
}

// TestReadManifestLdb compares ReadManifest with ldb manifest_dump on real
// databases: several column families, flushes, compactions, families
// dropped and added, WAL tracking, blob files.
func TestReadManifestLdb(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	dir := filepath.Join(t.TempDir(), "db")
	if d := os.Getenv("ROCKS_KEEP_DB"); d != "" {
		dir = d
	}
	w := newOptionsWriter(t, dir, busyOptions, "a", "b", "c")
	for range 5 {
		w.writeRandom(rng, 400)
		w.flush()
	}
	w.compact()
	before := w.latest()
	w.dropFamily("b")
	w.writeRandom(rng, 300)
	addedAt := w.latest()
	w.addFamily("d")
	w.writeRandom(rng, 300)
	w.flush()
	w.writeRandom(rng, 50)
	closed := liveWALs(t, w.dir)
	w.flushOne("a") // a new WAL; the other families still need the old one
	m := checkManifestWithLdb(t, w.dir)
	checkTrackedWALs(t, w.dir, m, closed)
	// A family edit carries the MANIFEST's last sequence when it was
	// written, at most the database's.
	names := fmt.Sprint(m.FamilyEdits)
	if len(m.FamilyEdits) != 5 || !m.FamilyEdits[3].Drop || m.FamilyEdits[3].Name != "b" || m.FamilyEdits[3].LastSequence > before ||
		m.FamilyEdits[4].Name != "d" || m.FamilyEdits[4].LastSequence < m.FamilyEdits[3].LastSequence || m.FamilyEdits[4].LastSequence > addedAt {
		t.Errorf("family edits %s; want a, b, c added, b dropped at or before seq %d, d added after, at or before %d", names, before, addedAt)
	}
	t.Logf("family edits: %s", names)

	t.Run("blob", func(t *testing.T) {
		w := newOptionsWriter(t, filepath.Join(t.TempDir(), "db"),
			busyOptions+";enable_blob_files=true;min_blob_size=16;enable_blob_garbage_collection=true;blob_garbage_collection_age_cutoff=0.5", "a")
		for range 6 {
			w.writeRandom(rng, 300)
			w.flush()
		}
		w.compact()
		m := checkManifestWithLdb(t, w.dir)
		blobs := 0
		for _, f := range m.Families {
			blobs += len(f.Blobs)
		}
		if blobs == 0 {
			t.Error("no blob file")
		}
	})
}

// flushOne flushes one column family, which starts a new WAL file.
func (w *writer) flushOne(name string) {
	w.t.Helper()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	if err := w.db.FlushCF(w.cfs[name], fo); err != nil {
		w.t.Fatalf("flush: %v", err)
	}
}

// liveWALs returns the WAL files of dir (not archive/) and their sizes.
func liveWALs(t *testing.T, dir string) map[uint64]int64 {
	t.Helper()
	paths, err := walFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]int64{}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := walNumber(filepath.Base(p))
		out[n] = fi.Size()
	}
	return out
}

// checkTrackedWALs checks that the WAL files that were live before a WAL
// switch are tracked with their size as synced size (RocksDB syncs a WAL
// file when it closes it, with WAL tracking on).
func checkTrackedWALs(t *testing.T, dir string, m *Manifest, closed map[uint64]int64) {
	t.Helper()
	if len(closed) == 0 {
		t.Fatal("no wal file before the switch")
	}
	for n, size := range closed {
		i := slices.IndexFunc(m.WALs, func(w TrackedWAL) bool { return w.Number == n })
		if i < 0 || !m.WALs[i].Synced || int64(m.WALs[i].SyncedSize) != size {
			t.Errorf("wal %d of %d bytes, closed by a flush: tracked %+v", n, size, m.WALs)
		}
	}
	t.Logf("wals tracked: %+v", m.WALs)
}

// FuzzManifest: a hostile MANIFEST is an error, never a panic or a huge
// allocation. The seeds are MANIFESTs of real databases (with WAL
// tracking, families dropped and blob files), whole and cut.
func FuzzManifest(f *testing.F) {
	for _, seed := range manifestSeeds(f) {
		f.Add(seed)
		f.Add(seed[:len(seed)/2])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "CURRENT"), []byte("MANIFEST-000005\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "MANIFEST-000005"), data, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ReadManifest(dir)
		if err == nil && m.Size > int64(len(data)) {
			t.Fatalf("read %d bytes of a %d-byte manifest", m.Size, len(data))
		}
		// Each edit is also decoded alone, as a record of its own.
		decodeVersionEdit(data)
	})
}

// manifestSeeds writes small real databases and returns their MANIFESTs.
func manifestSeeds(t testing.TB) [][]byte {
	rng := rand.New(rand.NewPCG(61, 62))
	var seeds [][]byte
	for _, o := range []string{busyOptions, busyOptions + ";enable_blob_files=true;min_blob_size=16"} {
		w := newOptionsWriter(t, filepath.Join(t.TempDir(), "db"), o, "a", "b")
		w.writeRandom(rng, 200)
		w.flushOne("a")
		w.dropFamily("b")
		w.writeRandom(rng, 200)
		w.flush()
		w.compact()
		m, err := ReadManifest(w.dir)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(w.dir, m.File))
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	return seeds
}
