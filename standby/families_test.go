package standby

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
)

// famWriter is a database written in this process that creates and drops
// column families with their own options, and writes to them.
type famWriter struct {
	dir  string
	db   *grocksdb.DB
	opts *grocksdb.Options
	wo   *grocksdb.WriteOptions
	cfs  map[string]*grocksdb.ColumnFamilyHandle
	n    int
}

func newFamWriter(t *testing.T, dir string) *famWriter {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetWALTtlSeconds(3600)
	o.SetWriteBufferSize(64 << 10) // memtable switches: new WAL files
	db, hs, err := grocksdb.OpenDbColumnFamilies(o, dir, []string{"default"}, []*grocksdb.Options{o})
	if err != nil {
		t.Fatal(err)
	}
	w := &famWriter{dir: dir, db: db, opts: o, wo: grocksdb.NewDefaultWriteOptions(), cfs: map[string]*grocksdb.ColumnFamilyHandle{"default": hs[0]}}
	t.Cleanup(func() {
		for _, h := range w.cfs {
			h.Destroy()
		}
		w.db.Close()
		w.wo.Destroy()
		w.opts.Destroy()
	})
	return w
}

func (w *famWriter) create(t *testing.T, name, optStr string) {
	t.Helper()
	o, err := grocksdb.GetOptionsFromString(nil, optStr)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Destroy()
	h, err := w.db.CreateColumnFamily(o, name)
	if err != nil {
		t.Fatal(err)
	}
	w.cfs[name] = h
}

func (w *famWriter) drop(t *testing.T, name string) {
	t.Helper()
	if err := w.db.DropColumnFamily(w.cfs[name]); err != nil {
		t.Fatal(err)
	}
	w.cfs[name].Destroy()
	delete(w.cfs, name)
}

// write writes n batches, each with puts to every family named (and a
// delete now and then).
func (w *famWriter) write(t *testing.T, n int, names ...string) uint64 {
	t.Helper()
	for range n {
		wb := grocksdb.NewWriteBatch()
		for _, name := range names {
			w.n++
			k := fmt.Appendf(nil, "k%03d", w.n%300)
			wb.PutCF(w.cfs[name], k, fmt.Appendf(nil, "%s-%d-%s", name, w.n, strings.Repeat("v", w.n%200)))
			if w.n%7 == 0 {
				wb.DeleteCF(w.cfs[name], fmt.Appendf(nil, "k%03d", (w.n*13)%300))
			}
		}
		err := w.db.Write(w.wo, wb)
		wb.Destroy()
		if err != nil {
			t.Fatal(err)
		}
	}
	return w.db.GetLatestSequenceNumber()
}

// famStep is the writer's state after a step.
type famStep struct {
	what   string
	seq    uint64
	digest rocks.Digest
}

func (w *famWriter) state(t *testing.T, what string) famStep {
	t.Helper()
	return famStep{what: what, seq: w.db.GetLatestSequenceNumber(), digest: secondaryDigest(t, w.dir)}
}

func familyNames(d rocks.Digest) []string {
	var out []string
	for n := range d {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

const universalOptions = "compaction_style=kCompactionStyleUniversal;write_buffer_size=98304;level0_file_num_compaction_trigger=6"

// restoreAt restores the archive at seq (nil: the latest) into a new
// folder and returns it.
func restoreAt(t *testing.T, store objstore.Store, seq *uint64) (string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	_, err := restore.Run(context.Background(), store, restore.Options{Dir: dir, ToSeq: seq, Logger: quiet()})
	return dir, err
}

func checkRestoreAt(t *testing.T, store objstore.Store, st famStep) string {
	t.Helper()
	seq := st.seq
	dir, err := restoreAt(t, store, &seq)
	if err != nil {
		t.Fatalf("restore at %d (%s): %v", st.seq, st.what, err)
	}
	got, gotSeq := testdb.Digest(t, dir)
	if gotSeq != st.seq {
		t.Errorf("restore at %d (%s) ends at %d", st.seq, st.what, gotSeq)
	}
	if diff := got.Diff(st.digest); diff != "" {
		t.Errorf("restore at %d (%s): families %v, the writer had %v: %s", st.seq, st.what, familyNames(got), familyNames(st.digest), diff)
	}
	return dir
}

// waitFamArchived waits until the archive holds every batch up to seq.
func waitFamArchived(t *testing.T, a *runningArchiver, seq uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the archive up to %d", seq), func() bool {
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("the archiver stopped: %v", err)
		default:
		}
		return a.a.Stats().ArchivedSequence >= seq
	})
}

// TestFamilyChangesFollowed: column families created (with their own
// options) and dropped while the sidecar archives are reproduced at their
// place: a restore at each step has the writer's families and contents,
// the created family has its options, a standby follows the whole run
// without a restart, and one started afterwards bootstraps and follows.
func TestFamilyChangesFollowed(t *testing.T) {
	store, _ := fileStore(t)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	w.write(t, 20, "default")
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	sb := startStandby(t, store, filepath.Join(t.TempDir(), "standby"), 5*time.Millisecond)

	// Each change is waited for in the manifest before the writer goes on:
	// RocksDB records no sequence for it, so the archiver places it at the
	// WAL's head when it notices it (or before the first batch that writes
	// to the family); a step one batch before it checks the state before.
	var steps []famStep
	w.write(t, 30, "default")
	steps = append(steps, w.state(t, "default only"))
	w.write(t, 1, "default")
	w.create(t, "a", universalOptions)
	aOptions, _, _, err := rocks.FamilyOptions(w.dir, "a")
	if err != nil {
		t.Fatal(err)
	}
	waitRecorded(t, store, manifest.CFCreate, "a")
	steps = append(steps, w.state(t, "a created, not written"))
	w.write(t, 40, "a", "default")
	steps = append(steps, w.state(t, "a written"))
	w.write(t, 1, "default")
	w.create(t, "b", "write_buffer_size=131072")
	waitRecorded(t, store, manifest.CFCreate, "b")
	w.write(t, 30, "b")
	w.write(t, 10, "a", "b", "default")
	steps = append(steps, w.state(t, "b created and written"))
	w.write(t, 1, "default")
	w.drop(t, "a")
	waitRecorded(t, store, manifest.CFDrop, "a")
	steps = append(steps, w.state(t, "a dropped"))
	w.write(t, 30, "b", "default")
	steps = append(steps, w.state(t, "written after the drop"))
	// Created, written and dropped between two looks at the MANIFEST.
	w.write(t, 1, "default")
	w.create(t, "c", "")
	w.write(t, 3, "c", "default")
	w.drop(t, "c")
	w.write(t, 10, "default")
	steps = append(steps, w.state(t, "c created and dropped"))
	last := steps[len(steps)-1]
	waitFamArchived(t, arch, last.seq)

	for _, st := range steps {
		dir := checkRestoreAt(t, store, st)
		if st.what == "a written" || st.what == "a created, not written" {
			got, _, found, err := rocks.FamilyOptions(dir, "a")
			if err != nil || !found || got != aOptions {
				t.Errorf("the restored family a has options\n%s\nthe writer's:\n%s (%v, %v)", got, aOptions, found, err)
			}
			if !strings.Contains(got, "compaction_style=kCompactionStyleUniversal") || !strings.Contains(got, "write_buffer_size=98304") {
				t.Errorf("the restored family a lacks its options: %s", got)
			}
		}
	}
	latest, err := restoreAt(t, store, nil)
	if err != nil {
		t.Fatalf("restore the latest: %v", err)
	}
	if got, _ := testdb.Digest(t, latest); got.Diff(last.digest) != "" {
		t.Errorf("the latest restore differs from the writer: %s", got.Diff(last.digest))
	}

	waitFor(t, "the standby at the end", func() bool { return sb.sb.Status().Applied >= last.seq })
	if st := sb.sb.Status(); st.State != Following {
		t.Fatalf("the standby is %s: %s", st.State, st.Error)
	}
	if diff := secondaryDigest(t, sb.sb.opts.Dir).Diff(last.digest); diff != "" {
		t.Errorf("the standby differs from the writer: %s", diff)
	}
	late := startStandby(t, store, filepath.Join(t.TempDir(), "late"), 5*time.Millisecond)
	w.write(t, 10, "b", "default")
	end := w.state(t, "after the late standby")
	waitFamArchived(t, arch, end.seq)
	waitFor(t, "the late standby at the end", func() bool { return late.sb.Status().Applied >= end.seq })
	if diff := secondaryDigest(t, late.sb.opts.Dir).Diff(end.digest); diff != "" {
		t.Errorf("the late standby differs from the writer: %s", diff)
	}
	arch.stop(t)
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	checkRecorded(t, m, map[string]int{"create a": 1, "create b": 1, "drop a": 1, "create c": 1, "drop c": 1})
	st, err := catalog.ReadStatus(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	var shown []string
	for _, c := range st.Timelines[0].FamilyChanges {
		shown = append(shown, c.Op+" "+c.Name)
	}
	if want := []string{"create a", "create b", "drop a", "create c", "drop c"}; !slices.Equal(shown, want) {
		t.Errorf("status shows the changes %v, want %v", shown, want)
	}

	// A change whose id is not the one RocksDB gives is refused, naming both.
	if _, _, err := manifest.Update(context.Background(), store, nil, func(m *manifest.Manifest) error {
		for i, c := range m.ColumnFamilyChanges {
			if c.Name == "b" {
				m.ColumnFamilyChanges[i].ID++
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = restoreAt(t, store, nil)
	if !errors.Is(err, rocks.ErrFamilyID) || !strings.Contains(err.Error(), "the archive says id 3, RocksDB would give it id 2") {
		t.Fatalf("a restore with a wrong id: %v; want ErrFamilyID naming ids 3 and 2", err)
	}
}

// waitRecorded waits until the manifest records the change.
func waitRecorded(t *testing.T, store objstore.Store, op, name string) {
	t.Helper()
	waitFor(t, op+" "+name+" in the manifest", func() bool {
		m, _, err := manifest.Load(context.Background(), store)
		if err != nil {
			return false
		}
		for _, c := range m.ColumnFamilyChanges {
			if c.Op == op && c.Name == name {
				return true
			}
		}
		return false
	})
}

// checkRecorded checks how many times each change ("create a") is in m.
func checkRecorded(t *testing.T, m *manifest.Manifest, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, c := range m.ColumnFamilyChanges {
		got[c.Op+" "+c.Name]++
		t.Logf("recorded: %s %q id %d after %d", c.Op, c.Name, c.ID, c.After)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%q recorded %d times, want %d", k, got[k], n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
}

// TestFamilyChangesArchiverRestarted: a family created while no archiver
// ran (restarted before the first write to it), and one dropped while none
// ran (restarted before the next write), are recorded once each at the
// restart, and restores at each step equal the writer.
func TestFamilyChangesArchiverRestarted(t *testing.T) {
	store, _ := fileStore(t)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	w.write(t, 20, "default")
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	var steps []famStep
	steps = append(steps, w.state(t, "before"))
	waitFamArchived(t, arch, steps[0].seq)
	arch.stop(t)

	w.write(t, 1, "default")
	w.create(t, "a", universalOptions)
	steps = append(steps, w.state(t, "a created while stopped"))
	arch = startArchiver(t, w.dir, store, 20*time.Millisecond)
	waitRecorded(t, store, manifest.CFCreate, "a")
	w.write(t, 20, "a", "default")
	steps = append(steps, w.state(t, "a written"))
	waitFamArchived(t, arch, steps[2].seq)
	arch.stop(t)

	w.write(t, 1, "default")
	w.drop(t, "a")
	steps = append(steps, w.state(t, "a dropped while stopped"))
	arch = startArchiver(t, w.dir, store, 20*time.Millisecond)
	waitRecorded(t, store, manifest.CFDrop, "a")
	w.write(t, 20, "default")
	steps = append(steps, w.state(t, "written after the drop"))
	last := steps[len(steps)-1]
	waitFamArchived(t, arch, last.seq)
	arch.stop(t)
	// Once more, with nothing changed: nothing more is recorded.
	arch = startArchiver(t, w.dir, store, 20*time.Millisecond)
	w.write(t, 5, "default")
	end := w.state(t, "end")
	waitFamArchived(t, arch, end.seq)
	arch.stop(t)
	steps = append(steps, end)

	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	checkRecorded(t, m, map[string]int{"create a": 1, "drop a": 1})
	for _, st := range steps {
		checkRestoreAt(t, store, st)
	}
	// A hand-off restore never opens the database: a change within it is
	// refused, naming the family.
	_, err = restore.Run(context.Background(), store, restore.Options{Dir: filepath.Join(t.TempDir(), "handoff"), HandOff: true, Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), `column family "a"`) || !strings.Contains(err.Error(), "hand-off") {
		t.Fatalf("a hand-off restore across the changes: %v; want a refusal naming the family", err)
	}
}

// TestFamilyChangesLibraryMode: the archiver in the program's process, over
// its own handle (rocks.Primary), records the changes as the sidecar does.
func TestFamilyChangesLibraryMode(t *testing.T) {
	store, _ := fileStore(t)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	w.write(t, 20, "default")
	src, err := rocks.NewPrimary(w.db, w.dir)
	if err != nil {
		t.Fatal(err)
	}
	a, err := archive.New(src, store, archive.Options{WorkDir: filepath.Join(t.TempDir(), "work"), WriterID: "lib",
		SegmentSize: 16 << 10, SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("archiver: %v", err)
		}
		src.Close()
	}()
	waitFor(t, "the first base", func() bool { return a.Stats().Bases > 0 })

	var steps []famStep
	steps = append(steps, w.state(t, "before"))
	w.write(t, 1, "default")
	w.create(t, "a", universalOptions)
	waitRecorded(t, store, manifest.CFCreate, "a")
	w.write(t, 20, "a", "default")
	steps = append(steps, w.state(t, "a written"))
	w.write(t, 1, "default")
	w.drop(t, "a")
	waitRecorded(t, store, manifest.CFDrop, "a")
	w.write(t, 10, "default")
	steps = append(steps, w.state(t, "after the drop"))
	waitFor(t, "the archive at the end", func() bool { return a.Stats().ArchivedSequence >= steps[2].seq })
	for _, st := range steps {
		checkRestoreAt(t, store, st)
	}
}

// TestFamilyCreateLearnedFromBatch: a standby whose periodic manifest reads
// are far apart learns of a creation when a batch writes to the family it
// lacks, and applies it there.
func TestFamilyCreateLearnedFromBatch(t *testing.T) {
	store, _ := fileStore(t)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	w.write(t, 20, "default")
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	sb := startStandbyOpts(t, store, Options{Dir: filepath.Join(t.TempDir(), "standby"), Poll: 5 * time.Millisecond,
		MaxPoll: 100 * time.Millisecond, ManifestCheck: time.Hour})
	first := w.state(t, "before")
	waitFamArchived(t, arch, first.seq)
	waitFor(t, "the standby at the start", func() bool { return sb.sb.Status().Applied >= first.seq })
	w.write(t, 1, "default")
	w.create(t, "a", universalOptions)
	waitRecorded(t, store, manifest.CFCreate, "a")
	w.write(t, 20, "a", "default")
	end := w.state(t, "a written")
	waitFamArchived(t, arch, end.seq)
	standbyAtEnd(t, sb, end)
}

// TestFamilyChangeLostAnswer: the manifest write that records a change
// lands but its answer is lost; the archiver writes again and the change
// is recorded once.
func TestFamilyChangeLostAnswer(t *testing.T) {
	inner, _ := fileStore(t)
	store := faultstore.New(inner)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	w.write(t, 20, "default")
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	before := w.state(t, "before")
	waitFamArchived(t, arch, before.seq)
	puts := store.Calls(faultstore.Put)
	store.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: manifest.ManifestKey, Nth: 1, AfterPut: true,
		Err: errors.New("connection reset by peer")})
	w.write(t, 1, "default")
	w.create(t, "a", universalOptions)
	waitRecorded(t, inner, manifest.CFCreate, "a")
	w.write(t, 20, "a", "default")
	end := w.state(t, "a written")
	waitFamArchived(t, arch, end.seq)
	arch.stop(t)
	if store.Injected() != 1 {
		t.Fatalf("%d faults injected (puts before: %d), want 1", store.Injected(), puts)
	}
	m, _, err := manifest.Load(context.Background(), inner)
	if err != nil {
		t.Fatal(err)
	}
	checkRecorded(t, m, map[string]int{"create a": 1})
	checkRestoreAt(t, inner, before)
	checkRestoreAt(t, inner, end)
}

// TestFamilyChangesBusy: a writer that creates, writes to and drops column
// families in a random order without waiting for the archiver, with small
// memtables (WAL switches, flushes): a restore at every recorded change
// replays (no batch names a family the restore lacks), the latest restore
// and a standby that followed the run equal the writer.
func TestFamilyChangesBusy(t *testing.T) {
	store, _ := fileStore(t)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	for i := range 4 {
		w.create(t, fmt.Sprintf("init%d", i), "write_buffer_size=65536")
	}
	w.write(t, 20, "default", "init0")
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	sb := startStandby(t, store, filepath.Join(t.TempDir(), "standby"), 5*time.Millisecond)
	rng := rand.New(rand.NewPCG(1, 2))
	live := []string{"default", "init0", "init1", "init2", "init3"}
	made := 0
	var want []string // the changes made, "create f1"
	for step := range 200 {
		switch r := rng.IntN(20); {
		case r == 0 && len(live) < 10:
			made++
			name := fmt.Sprintf("f%d", made)
			w.create(t, name, fmt.Sprintf("write_buffer_size=%d", 65536*(1+made%3)))
			live = append(live, name)
			want = append(want, manifest.CFCreate+" "+name)
		case r == 1 && len(live) > 2:
			i := 1 + rng.IntN(len(live)-1)
			w.drop(t, live[i])
			want = append(want, manifest.CFDrop+" "+live[i])
			live = slices.Delete(live, i, i+1)
		default:
			names := []string{live[rng.IntN(len(live))], live[rng.IntN(len(live))]}
			w.write(t, 1+step%3, names...)
		}
	}
	end := w.state(t, "end")
	waitFamArchived(t, arch, end.seq)
	// The last changes may come after the last batch: the archiver records
	// them when it notices them.
	for _, c := range want {
		op, name, _ := strings.Cut(c, " ")
		waitRecorded(t, store, op, name)
	}
	arch.stop(t)
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.ColumnFamilyChanges) != len(want) {
		t.Fatalf("%d changes recorded, %d made", len(m.ColumnFamilyChanges), len(want))
	}
	// A restore at each place where changes sit (the replay goes past the
	// earlier ones).
	done := map[uint64]bool{}
	for _, c := range m.ColumnFamilyChanges {
		if seq := c.After; !done[seq] && seq <= end.seq {
			done[seq] = true
			if _, err := restoreAt(t, store, &seq); err != nil {
				t.Fatalf("restore at %d (%s %s after %d): %v", seq, c.Op, c.Name, c.After, err)
			}
		}
	}
	t.Logf("%d changes, restored at %d places", len(m.ColumnFamilyChanges), len(done))
	latest, err := restoreAt(t, store, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := testdb.Digest(t, latest); got.Diff(end.digest) != "" {
		t.Errorf("the latest restore differs from the writer: %s", got.Diff(end.digest))
	}
	standbyAtEnd(t, sb, end)
}

// TestFamilyDropAppliedAtPromotion: a standby whose periodic manifest reads
// are far apart has not learned of a drop (no batch tells it); a promotion
// reads the manifest and applies it, so the promoted database lacks the
// family, as the primary did.
func TestFamilyDropAppliedAtPromotion(t *testing.T) {
	store, _ := fileStore(t)
	w := newFamWriter(t, filepath.Join(t.TempDir(), "db"))
	w.create(t, "a", "")
	w.write(t, 20, "default", "a")
	arch := startArchiver(t, w.dir, store, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	sb := startStandbyOpts(t, store, Options{Dir: dir, Poll: 5 * time.Millisecond, MaxPoll: 100 * time.Millisecond,
		ManifestCheck: time.Hour, WriterID: "promoted"})
	waitFor(t, "the standby", func() bool { return sb.sb.Status().State == Following })
	w.write(t, 1, "default")
	w.drop(t, "a")
	waitRecorded(t, store, manifest.CFDrop, "a")
	w.write(t, 10, "default")
	end := w.state(t, "end")
	waitFamArchived(t, arch, end.seq)
	waitFor(t, "the standby at the end", func() bool { return sb.sb.Status().Applied >= end.seq })
	if d := secondaryDigest(t, dir); !slices.Contains(familyNames(d), "a") {
		t.Fatalf("the standby learned of the drop before the promotion: the test shows nothing (families %v)", familyNames(d))
	}
	arch.stop(t)
	if _, err := sb.sb.Promote(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	got, _ := testdb.Digest(t, dir)
	if diff := got.Diff(end.digest); diff != "" {
		t.Errorf("the promoted database differs from the writer: %s", diff)
	}
}

// standbyAtEnd waits until the standby has applied the writer's state end
// (or failed), and checks that it follows and that a secondary instance of
// its folder holds that state.
func standbyAtEnd(t *testing.T, sb *runningStandby, end famStep) {
	t.Helper()
	waitFor(t, "the standby at the end", func() bool {
		st := sb.sb.Status()
		return st.Applied >= end.seq || st.State == Failed
	})
	if st := sb.sb.Status(); st.State != Following {
		t.Fatalf("the standby is %s: %s", st.State, st.Error)
	}
	if diff := secondaryDigest(t, sb.sb.opts.Dir).Diff(end.digest); diff != "" {
		t.Errorf("the standby differs from the writer: %s", diff)
	}
}
