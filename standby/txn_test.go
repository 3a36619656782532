package standby

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// txnSource is a TransactionDB (WriteCommitted) with column families
// default, a and b, written in this process.
type txnSource struct {
	t    *testing.T
	dir  string
	db   *grocksdb.TransactionDB
	opts *grocksdb.Options
	tdbo *grocksdb.TransactionDBOptions
	wo   *grocksdb.WriteOptions
	to   *grocksdb.TransactionOptions
	cfs  []*grocksdb.ColumnFamilyHandle
	rng  *rand.Rand
	mu   sync.Mutex // held by each write, and by a base: its sequence is exact
	n    int
	open map[string]*grocksdb.Transaction
	gone []string        // "cf/key" of transactions rolled back or left prepared
	keep map[string]bool // transactions that round leaves prepared
}

var txnCFs = []string{"default", "a", "b"}

func newTxnSource(t *testing.T, dir string) *txnSource {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	o.SetWALTtlSeconds(3600)
	o.SetWriteBufferSize(64 << 10)
	tdbo := grocksdb.NewDefaultTransactionDBOptions()
	db, cfs, err := grocksdb.OpenTransactionDbColumnFamilies(o, tdbo, dir, txnCFs, []*grocksdb.Options{o, o, o})
	if err != nil {
		t.Fatal(err)
	}
	s := &txnSource{t: t, dir: dir, db: db, opts: o, tdbo: tdbo, wo: grocksdb.NewDefaultWriteOptions(),
		to: grocksdb.NewDefaultTransactionOptions(), cfs: cfs, rng: rand.New(rand.NewPCG(13, 13)), open: map[string]*grocksdb.Transaction{}}
	t.Cleanup(s.close)
	return s
}

func (s *txnSource) latest() uint64 {
	seq, err := rocks.TransactionDBSequence(s.db)
	if err != nil {
		s.t.Fatal(err)
	}
	return seq
}

func (s *txnSource) plain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for range 1 + s.rng.IntN(3) {
		wb.PutCF(s.cfs[s.rng.IntN(3)], fmt.Appendf(nil, "plain%03d", s.rng.IntN(100)), fmt.Appendf(nil, "v%d", s.rng.Int64()))
	}
	if err := s.db.Write(s.wo, wb); err != nil {
		s.t.Fatal(err)
	}
}

func (s *txnSource) prepare() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	name := fmt.Sprintf("txn%04d", s.n)
	txn := s.db.TransactionBegin(s.wo, s.to, nil)
	if err := txn.SetName(name); err != nil {
		s.t.Fatal(err)
	}
	for i := range 1 + s.rng.IntN(4) {
		if err := txn.PutCF(s.cfs[i%3], fmt.Appendf(nil, "%s/%d", name, i), fmt.Appendf(nil, "v%d", s.rng.Int64())); err != nil {
			s.t.Fatal(err)
		}
	}
	if err := txn.Prepare(); err != nil {
		s.t.Fatal(err)
	}
	s.open[name] = txn
	return name
}

func (s *txnSource) end(name string, commit bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	txn := s.open[name]
	var err error
	if commit {
		err = txn.Commit()
	} else {
		err = txn.Rollback()
		s.forget(name)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	txn.Destroy()
	delete(s.open, name)
}

func (s *txnSource) forget(name string) {
	for i := range 4 {
		s.gone = append(s.gone, fmt.Sprintf("%s/%s/%d", txnCFs[i%3], name, i))
	}
}

// round prepares a few transactions, ends some of the open ones, writes
// plain batches, and ends with a plain batch (a segment of prepares only
// stays open in the archiver until a batch that uses a sequence).
func (s *txnSource) round() {
	for name := range s.open {
		if s.rng.IntN(2) == 0 && !s.keep[name] {
			s.end(name, s.rng.IntN(3) != 0)
		}
	}
	for range 3 {
		s.prepare()
		s.plain()
	}
	s.flush()
	s.plain()
}

func (s *txnSource) flush() {
	s.mu.Lock()
	defer s.mu.Unlock()
	fo := grocksdb.NewDefaultFlushOptions()
	defer fo.Destroy()
	fo.SetWait(true)
	if err := s.db.FlushCF(s.cfs[s.rng.IntN(3)], fo); err != nil {
		s.t.Fatal(err)
	}
}

// txnArchiveSource is an archive.Source over a TransactionDB, as a program
// that owns one would write it: the WAL through a WALTail, bases with the
// TransactionDB's own checkpoint (a secondary instance aborts over a WAL
// with prepares), taken only when allowed (allow), with no write meanwhile.
type txnArchiveSource struct {
	src   *txnSource
	tail  *rocks.WALTail
	mu    sync.Mutex
	bases int // checkpoints allowed
}

func (s *txnArchiveSource) allow() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bases++
}

func (s *txnArchiveSource) Identity() (string, error) { return rocks.ReadIdentity(s.src.dir) }
func (s *txnArchiveSource) Refresh() error            { return nil }
func (s *txnArchiveSource) Seek(seq uint64) error     { return s.tail.Seek(seq) }

func (s *txnArchiveSource) Next() (segments.Batch, bool, error) {
	b, ok, err := s.tail.Next()
	if errors.Is(err, rocks.ErrGap) {
		return segments.Batch{}, false, fmt.Errorf("%w: %w", archive.ErrGap, err)
	}
	return segments.Batch{Seq: b.Seq, Count: b.Count, Data: b.Data}, ok, err
}

func (s *txnArchiveSource) Checkpoint(dir string) (uint64, error) {
	s.mu.Lock()
	if s.bases == 0 {
		s.mu.Unlock()
		return 0, errors.New("no base allowed now")
	}
	s.bases--
	s.mu.Unlock()
	s.src.mu.Lock()
	defer s.src.mu.Unlock()
	cp, err := s.src.db.NewCheckpoint()
	if err != nil {
		return 0, err
	}
	defer cp.Destroy()
	if err := cp.CreateCheckpoint(dir, 0); err != nil {
		return 0, err
	}
	id, err := os.ReadFile(filepath.Join(s.src.dir, "IDENTITY"))
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "IDENTITY"), id, 0o644)
	}
	if err != nil {
		return 0, err
	}
	return rocks.TransactionDBSequence(s.src.db)
}

// startTxnArchiver archives src through a txnArchiveSource, which allows
// the first base.
func startTxnArchiver(t *testing.T, src *txnSource, store objstore.Store) (*archive.Archiver, *txnArchiveSource) {
	t.Helper()
	tail, err := rocks.NewWALTail(src.dir)
	if err != nil {
		t.Fatal(err)
	}
	as := &txnArchiveSource{src: src, tail: tail, bases: 1}
	work := t.TempDir()
	a, err := archive.New(as, store, archive.Options{
		SegmentSize: 16 << 10, SegmentAge: 20 * time.Millisecond, Poll: 5 * time.Millisecond,
		FenceCheck: time.Second, RetryMax: 20 * time.Millisecond, DrainTimeout: 20 * time.Second,
		BaseInterval: time.Millisecond, // every base it may take: when allowed
		WriterID:     "test:" + src.dir, WorkDir: filepath.Join(work, "ckpt"), Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("archiver: %v", err)
		}
		tail.Close()
	})
	waitBases(t, store, 1)
	return a, as
}

func waitBases(t *testing.T, store objstore.Store, n int) manifest.Base {
	t.Helper()
	var last manifest.Base
	waitFor(t, fmt.Sprintf("%d bases", n), func() bool {
		m, _, err := manifest.Load(context.Background(), store)
		if err != nil || len(m.Bases) < n {
			return false
		}
		for _, b := range m.Bases {
			if b.Sequence >= last.Sequence {
				last = b
			}
		}
		return true
	})
	return last
}

func (s *txnSource) digest() rocks.Digest {
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	d := rocks.Digest{}
	for i, cf := range s.cfs {
		it := s.db.NewIteratorCF(ro, cf)
		cd, err := rocks.DigestIterator(it)
		it.Close()
		if err != nil {
			s.t.Fatal(err)
		}
		d[txnCFs[i]] = cd
	}
	return d
}

func (s *txnSource) close() {
	if s.db == nil {
		return
	}
	for _, txn := range s.open {
		txn.Destroy()
	}
	for _, cf := range s.cfs {
		cf.Destroy()
	}
	s.db.Close()
	s.wo.Destroy()
	s.to.Destroy()
	s.tdbo.Destroy()
	s.opts.Destroy()
	s.db = nil
}

// TestStandbyTransactions follows a TransactionDB whose transactions stay
// prepared across the standby's bootstrap, across a base and across a
// restart: the first commit, in a run, of one prepared before the run makes
// the standby read what was prepared then, from the segments after the
// first base (the bootstrapped run) and from the WAL copies of a base taken
// while transactions were prepared (the restarted run). The standby ends
// with the source's contents and sequence; no key of a rolled-back or
// still-prepared transaction is in it.
func TestStandbyTransactions(t *testing.T) {
	store, _ := fileStore(t)
	src := newTxnSource(t, filepath.Join(t.TempDir(), "db"))
	src.plain()
	arch, as := startTxnArchiver(t, src, store) // its first base: before any transaction
	for range 3 {
		src.round()
	}
	// The bootstrap restores these rounds, and so applies prepares that the
	// standby's run does not see.
	waitFor(t, "the archive", func() bool { return arch.Stats().ArchivedSequence == src.latest() })
	dir := filepath.Join(t.TempDir(), "standby")
	var logs syncBuffer
	opts := Options{Dir: dir, Poll: 5 * time.Millisecond, MaxPoll: 200 * time.Millisecond, ManifestCheck: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	sb := startStandbyOpts(t, store, opts)
	for range 3 {
		src.round()
	}
	waitApplied(t, sb, src.latest())
	if n := strings.Count(logs.String(), readingPrepared); n != 1 {
		t.Fatalf("the bootstrapped standby read the transactions prepared before it %d times, want once:\n%s", n, logs.String())
	}
	// A base while transactions are prepared: its WAL copies hold them,
	// and the one kept is committed only in the restarted run.
	src.keep = map[string]bool{src.prepare(): true}
	src.plain()
	as.allow()
	base := waitBases(t, store, 2)
	src.round()
	waitApplied(t, sb, src.latest())
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		src.round()
	}
	sb = startStandbyOpts(t, store, opts)
	src.round()
	for name := range src.open {
		src.end(name, true)
	}
	src.forget(src.prepare())
	src.plain()
	waitApplied(t, sb, src.latest())
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), readingPrepared); n != 2 {
		t.Fatalf("the restarted standby read the transactions prepared before it %d times in all, want twice:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "base="+base.FileList) {
		t.Fatalf("the restarted standby did not read the base %s:\n%s", base.FileList, logs.String())
	}
	if diff := src.digest().Diff(secondaryDigest(t, dir)); diff != "" {
		t.Fatalf("the standby differs from the source: %s", diff)
	}
	checkAbsent(t, dir, src.gone)
}

// readingPrepared is what the standby logs when it reads the transactions
// prepared before its run.
const readingPrepared = "reading the transactions prepared before this run"

func waitApplied(t *testing.T, sb *runningStandby, seq uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("the standby at %d", seq), func() bool {
		st := sb.sb.Status()
		if st.State == Failed {
			t.Fatalf("standby failed: %s", st.Error)
		}
		return st.Applied == seq
	})
}

// checkAbsent checks that no key of keys ("cf/key") is in the database in
// dir, through a read-only open.
func checkAbsent(t *testing.T, dir string, keys []string) {
	t.Helper()
	if len(keys) == 0 {
		t.Fatal("no key of a transaction that never committed to look for")
	}
	o := grocksdb.NewDefaultOptions()
	defer o.Destroy()
	db, cfs, err := grocksdb.OpenDbForReadOnlyColumnFamilies(o, dir, txnCFs, []*grocksdb.Options{o, o, o}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	for _, k := range keys {
		var cf int
		for i, n := range txnCFs {
			if len(k) > len(n) && k[:len(n)+1] == n+"/" {
				cf = i
			}
		}
		v, err := db.GetCF(ro, cfs[cf], []byte(k[len(txnCFs[cf])+1:]))
		if err != nil {
			t.Fatal(err)
		}
		if v.Exists() {
			t.Errorf("%s, of a transaction that never committed, is in the standby", k)
		}
		v.Free()
	}
	for _, cf := range cfs {
		cf.Destroy()
	}
}
