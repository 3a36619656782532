package rocks

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
)

// ownOptions returns the options of the database in dir as its own
// OPTIONS file says (grocksdb.LoadLatestOptions for the column families;
// the [DBOptions] section through GetOptionsFromString, which grocksdb's
// LatestOptions does not expose), with wal_dir set to dir, where a
// checkpoint has its WAL. The caller destroys what it returns.
func ownOptionsOf(t *testing.T, dir string) (*grocksdb.Options, []string, []*grocksdb.Options, func()) {
	t.Helper()
	env, cache := grocksdb.NewDefaultEnv(), grocksdb.NewLRUCache(1<<20)
	lo, err := grocksdb.LoadLatestOptions(dir, env, false, cache)
	if err != nil {
		t.Fatalf("load options of %s: %v", dir, err)
	}
	path, err := newestOptionsFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := readDBOptions(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for k, v := range kv {
		if k != "wal_dir" && v != "" {
			fmt.Fprintf(&b, "%s=%s;", k, v)
		}
	}
	fmt.Fprintf(&b, "wal_dir=%s", dir)
	base := grocksdb.NewDefaultOptions()
	defer base.Destroy()
	opts, err := grocksdb.GetOptionsFromString(base, b.String())
	if err != nil {
		t.Fatalf("db options of %s: %v", dir, err)
	}
	cfs := lo.ColumnFamilyOpts()
	cfOpts := make([]*grocksdb.Options, len(cfs))
	for i := range cfs {
		cfOpts[i] = &cfs[i]
	}
	return opts, lo.ColumnFamilyNames(), cfOpts, func() { opts.Destroy(); lo.Destroy(); cache.Destroy(); env.Destroy() }
}

// openOwn opens the checkpoint in dir with the database's own options and
// returns its last sequence and digest.
func openOwnAt(t *testing.T, dir string) (uint64, Digest) {
	t.Helper()
	opts, names, cfOpts, done := ownOptionsOf(t, dir)
	defer done()
	db, hs, err := grocksdb.OpenDbColumnFamilies(opts, dir, names, cfOpts)
	if err != nil {
		t.Fatalf("open checkpoint %s with its own options: %v", dir, err)
	}
	h := &handle{dir: dir, db: db, cfs: hs}
	d, err := h.digest()
	seq := db.GetLatestSequenceNumber()
	for _, c := range hs {
		c.Destroy()
	}
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	return seq, d
}

// checkOwn checks that the checkpoint in cp opens with the database's own
// options at seq with the content want, and passes ldb checkconsistency.
func checkOwn(t *testing.T, cp string, seq uint64, want Digest) {
	t.Helper()
	got, d := openOwnAt(t, cp)
	if got != seq {
		t.Fatalf("checkpoint opens at seq %d, Checkpoint said %d", got, seq)
	}
	if want != nil {
		if diff := d.Diff(want); diff != "" {
			t.Fatalf("checkpoint differs from the source: %s", diff)
		}
	}
	ldb := requireTool(t, "ldb")
	if out := runLdb(t, ldb, "--db="+cp, "checkconsistency"); !strings.Contains(string(out), "OK") {
		t.Fatalf("ldb checkconsistency: %s", out)
	}
}

func sourceCheckpoint(t *testing.T, dbDir string) (*FollowerSource, func() (string, uint64)) {
	t.Helper()
	src, err := NewFollowerSource(dbDir, filepath.Join(t.TempDir(), "scratch"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	n := 0
	return src, func() (string, uint64) {
		t.Helper()
		n++
		cp := filepath.Join(t.TempDir(), fmt.Sprintf("cp%d", n))
		seq, err := src.Checkpoint(cp)
		if err != nil {
			t.Fatalf("checkpoint %d: %v", n, err)
		}
		return cp, seq
	}
}

// TestCheckpointTrackedWALs: a writer with track_and_verify_wals_in_manifest,
// WAL_ttl_seconds, several column families and a WAL rotated by a flush.
// Opening a checkpoint read-only with our options aborts the process
// there (db_impl_open.cc:624); FollowerSource.Checkpoint opens nothing, and
// its checkpoint opens with the database's options at exactly its sequence.
func TestCheckpointTrackedWALs(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	w := newOptionsWriter(t, filepath.Join(t.TempDir(), "db"), busyOptions, "a", "b")
	w.writeRandom(rng, 300)
	w.flushOne("a") // a WAL rotated; the others still need the old one
	w.writeRandom(rng, 100)
	_, take := sourceCheckpoint(t, w.dir)
	cp, seq := take()
	if seq != w.latest() {
		t.Fatalf("checkpoint at seq %d, writer at %d", seq, w.latest())
	}
	m, err := ReadManifest(cp)
	if err != nil || len(m.WALs) == 0 {
		t.Fatalf("the checkpoint's manifest tracks wals %v, %v; want some (the test would show nothing)", m, err)
	}
	checkOwn(t, cp, seq, liveDigest(t, w))
	w.flush()
	w.writeRandom(rng, 50)
	cp, seq = take()
	checkOwn(t, cp, seq, liveDigest(t, w))
}

// TestCheckpointWALDir: the WAL in a wal_dir of its own, with old WAL
// files in its archive/.
func TestCheckpointWALDir(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	root := t.TempDir()
	w := newOptionsWriter(t, filepath.Join(root, "db"), busyOptions+";wal_dir="+filepath.Join(root, "wal"), "a")
	w.writeRandom(rng, 200)
	w.flushOne("a")
	w.writeRandom(rng, 200)
	if logs, _ := walFiles(w.dir); len(logs) != 0 {
		t.Fatalf("wal files in the database directory: %v", logs)
	}
	_, take := sourceCheckpoint(t, w.dir)
	cp, seq := take()
	if seq != w.latest() {
		t.Fatalf("checkpoint at seq %d, writer at %d", seq, w.latest())
	}
	checkOwn(t, cp, seq, liveDigest(t, w))
}

// TestCheckpointBlobDB: an integrated BlobDB database, whose secondary
// instance crashes RocksDB 7.8.3: the checkpoint holds its blob files.
func TestCheckpointBlobDB(t *testing.T) {
	rng := rand.New(rand.NewPCG(55, 56))
	w := newOptionsWriter(t, filepath.Join(t.TempDir(), "db"),
		busyOptions+";enable_blob_files=true;min_blob_size=16;enable_blob_garbage_collection=true", "a")
	for range 4 {
		w.writeRandom(rng, 200)
		w.flush()
	}
	w.compact()
	w.writeRandom(rng, 100)
	src, take := sourceCheckpoint(t, w.dir)
	cp, seq := take()
	blobs, _ := filepath.Glob(filepath.Join(cp, "*.blob"))
	if len(blobs) == 0 {
		t.Fatal("no blob file in the checkpoint")
	}
	if seq != w.latest() {
		t.Fatalf("checkpoint at seq %d, writer at %d", seq, w.latest())
	}
	checkOwn(t, cp, seq, liveDigest(t, w))
	if src.f != nil {
		t.Fatal("a secondary instance was opened")
	}
	t.Logf("%d blob files, %d files linked", len(blobs), src.LastCheckpoint().Linked)
}

// TestCopyCheckpointEmptyDir: a directory that exists is refused; nothing
// is left behind when the source is not a database.
func TestCopyCheckpointRefuses(t *testing.T) {
	dir := t.TempDir()
	if _, err := CopyCheckpoint(dir, "", dir); err == nil {
		t.Fatal("checkpoint into an existing directory")
	}
	cp := filepath.Join(t.TempDir(), "cp")
	if _, err := CopyCheckpoint(dir, "", cp); err == nil {
		t.Fatal("checkpoint of a directory without a database")
	}
	if _, err := os.Stat(cp); !os.IsNotExist(err) {
		t.Fatalf("checkpoint left behind: %v", err)
	}
}

// TestCheckpointTransactionDB: a TransactionDB with two-phase commit
// (named transactions: one prepared and left so, one committed, one rolled
// back). A secondary instance over such a WAL aborts the process
// (write_batch.cc:601); the file checkpoint recovers with TransactionDB
// and the database's options, with the committed write and without the
// others.
func TestCheckpointTransactionDB(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "db")
	base := grocksdb.NewDefaultOptions()
	defer base.Destroy()
	opts, err := grocksdb.GetOptionsFromString(base, "create_if_missing=true;create_missing_column_families=true;allow_2pc=true;"+busyOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	tdbOpts := grocksdb.NewDefaultTransactionDBOptions()
	defer tdbOpts.Destroy()
	db, hs, err := grocksdb.OpenTransactionDbColumnFamilies(opts, tdbOpts, dir, []string{"default", "a"}, []*grocksdb.Options{opts, opts})
	if err != nil {
		t.Fatal(err)
	}
	wo, to := grocksdb.NewDefaultWriteOptions(), grocksdb.NewDefaultTransactionOptions()
	defer wo.Destroy()
	defer to.Destroy()
	txn := func(name, key string, end func(*grocksdb.Transaction) error) *grocksdb.Transaction {
		tx := db.TransactionBegin(wo, to, nil)
		if err := tx.SetName(name); err != nil {
			t.Fatal(err)
		}
		if err := tx.PutCF(hs[1], []byte(key), []byte("v-"+name)); err != nil {
			t.Fatal(err)
		}
		if err := tx.Prepare(); err != nil {
			t.Fatal(err)
		}
		if end != nil {
			if err := end(tx); err != nil {
				t.Fatal(err)
			}
		}
		return tx
	}
	for i := range 50 {
		if err := db.PutCF(wo, hs[i%2], fmt.Appendf(nil, "plain%03d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	committed := txn("c1", "committed", (*grocksdb.Transaction).Commit)
	rolled := txn("r1", "rolledback", (*grocksdb.Transaction).Rollback)
	pending := txn("p1", "pending", nil)
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	if err := db.FlushCF(hs[0], fo); err != nil { // a WAL switch, with the prepared section in the old one
		t.Fatal(err)
	}
	committed2 := txn("c2", "committed2", (*grocksdb.Transaction).Commit)

	want, err := TransactionDBSequence(db)
	if err != nil {
		t.Fatal(err)
	}
	_, take := sourceCheckpoint(t, dir)
	cp, seq := take()
	t.Logf("checkpoint at seq %d", seq)
	if seq != want {
		t.Errorf("Checkpoint says seq %d, the TransactionDB is at %d (a prepare takes no sequence, a commit its prepared records)", seq, want)
	}
	for _, tx := range []*grocksdb.Transaction{committed, rolled, committed2} {
		tx.Destroy()
	}
	_ = pending // left prepared: its WAL stays needed
	for _, h := range hs {
		h.Destroy()
	}
	db.Close()

	// The sequence, opened as a plain DB (grocksdb's TransactionDB does not
	// tell it), on a copy.
	plain := filepath.Join(t.TempDir(), "plain")
	if out, err := exec.Command("cp", "-r", cp, plain).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	if got, _ := openOwnAt(t, plain); got != seq {
		t.Errorf("checkpoint opens at seq %d, Checkpoint said %d", got, seq)
	}

	own, names, cfOpts, done := ownOptionsOf(t, cp)
	defer done()
	cdb, chs, err := grocksdb.OpenTransactionDbColumnFamilies(own, tdbOpts, cp, names, cfOpts)
	if err != nil {
		t.Fatalf("open the checkpoint as a TransactionDB with its own options: %v", err)
	}
	defer func() {
		for _, h := range chs {
			h.Destroy()
		}
		cdb.Close()
	}()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	for key, want := range map[string]bool{"committed": true, "committed2": true, "rolledback": false, "pending": false} {
		v, err := cdb.GetCF(ro, chs[1], []byte(key))
		if err != nil {
			t.Fatal(err)
		}
		if v.Exists() != want {
			t.Errorf("key %q in the checkpoint: %v, want %v", key, v.Exists(), want)
		}
		v.Free()
	}
}

// TestCheckpointBusyWriter: db_bench fillrandom at full speed, with small
// memtables (a WAL switch and a flush every 64 KiB), compactions, WAL
// retention and several column families, while checkpoints are taken back
// to back: every one succeeds (files that a compaction deletes under it are
// found again in the MANIFEST read on) and opens with the database's
// options at the sequence returned. ROCKSTREAM_LONG=1 takes 100.
func TestCheckpointBusyWriter(t *testing.T) {
	bench := requireTool(t, "db_bench")
	requireTool(t, "ldb")
	n := 20
	if os.Getenv("ROCKSTREAM_LONG") == "1" {
		n = 100
	}
	dir := filepath.Join(t.TempDir(), "db")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bench, "--benchmarks=fillrandom", "--db="+dir, "--num=100000000",
		"--write_buffer_size=65536", "--wal_ttl_seconds=3600", "--num_column_families=3",
		"--value_size=100", "--compression_type=none", "--seed=1", "--threads=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cancel(); <-exited }()
	waitForDatabase(t, dir, exited, &stderr)
	for !flushed(dir) { // wait for the first flush, so compactions come soon
		select {
		case err := <-exited:
			t.Fatalf("db_bench exited: %v: %s", err, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	src, take := sourceCheckpoint(t, dir)
	var retries []int
	var cps []string
	var seqs []uint64
	for range n {
		cp, seq := take()
		retries = append(retries, src.LastCheckpoint().Retries)
		cps, seqs = append(cps, cp), append(seqs, seq)
	}
	cancel()
	<-exited
	exited <- nil
	for i, cp := range cps {
		checkOwn(t, cp, seqs[i], nil)
	}
	t.Logf("%d checkpoints from seq %d to %d, retries per checkpoint %v", n, seqs[0], seqs[n-1], retries)
	if seqs[n-1] == seqs[0] {
		t.Fatal("db_bench wrote nothing during the checkpoints: the test shows nothing")
	}
}

// flushed says whether the database in dir has an SST file.
func flushed(dir string) bool {
	m, err := filepath.Glob(filepath.Join(dir, "*.sst"))
	return err == nil && len(m) > 0
}

// TestCheckpointFilesVanish: between the read of the MANIFEST and the
// links, the writer compacts (the SST files read are deleted) and flushes
// with WAL retention off (the WAL files read are deleted): the round is
// taken again with the MANIFEST read on, and the checkpoint is exact.
func TestCheckpointFilesVanish(t *testing.T) {
	rng := rand.New(rand.NewPCG(57, 58))
	w := newOptionsWriter(t, filepath.Join(t.TempDir(), "db"), "write_buffer_size=65536", "a")
	for range 3 {
		w.writeRandom(rng, 200)
		w.flush()
	}
	w.writeRandom(rng, 100)
	rounds := 0
	afterManifestRead = func() {
		if rounds++; rounds == 1 {
			w.writeRandom(rng, 50)
			w.compact()
			w.flush()
		}
	}
	defer func() { afterManifestRead = nil }()
	src, take := sourceCheckpoint(t, w.dir)
	cp, seq := take()
	if got := src.LastCheckpoint().Retries; got == 0 {
		t.Fatalf("no retry after %d rounds: the test shows nothing", rounds)
	}
	if seq != w.latest() {
		t.Fatalf("checkpoint at seq %d, writer at %d", seq, w.latest())
	}
	checkOwn(t, cp, seq, liveDigest(t, w))
	t.Logf("%d retries", src.LastCheckpoint().Retries)
}

// TestHeadManifestAheadOfWAL: an archiver that reads the WAL from the wrong
// folder (the writer keeps it in wal_dir, the archiver was told the
// database's folder) sees no batch at all. Once the writer flushes, the
// MANIFEST records its sequence, and the head, which the lag is measured
// against, is that sequence: the lag is never a quiet 0.
func TestHeadManifestAheadOfWAL(t *testing.T) {
	rng := rand.New(rand.NewPCG(57, 58))
	root := t.TempDir()
	w := newOptionsWriter(t, filepath.Join(root, "db"), busyOptions+";wal_dir="+filepath.Join(root, "wal"), "a")
	w.writeRandom(rng, 50)
	w.flush()
	src, err := NewFollowerSourceWAL(w.dir, w.dir, filepath.Join(root, "scratch")) // the wrong folder
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	src.fam.start(map[uint32]string{0: "default", 1: "a"}, 1, 0)
	if err := src.Seek(1); err != nil {
		t.Fatal(err)
	}
	w.writeRandom(rng, 50)
	w.flush()
	want := w.latest()
	waitFor(t, "the head to reach the flushed sequence", func() bool {
		if _, ok, err := src.Next(); err != nil || ok {
			t.Fatalf("Next over the wrong folder: ok %v, %v", ok, err)
		}
		h, err := src.Head()
		return err == nil && h.Sequence == want
	})
}
