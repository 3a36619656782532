package rocks

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/linxGnu/grocksdb"
)

// txnWriter is a TransactionDB (WriteCommitted, the default policy) that a
// test writes to, recording for each WAL batch it writes the sequence it
// starts at and the number of sequences it used, as the database counts
// them (TransactionDBSequence before and after).
type txnWriter struct {
	t     testing.TB
	dir   string
	db    *grocksdb.TransactionDB
	opts  *grocksdb.Options
	tdbo  *grocksdb.TransactionDBOptions
	wo    *grocksdb.WriteOptions
	to    *grocksdb.TransactionOptions
	list  []*grocksdb.ColumnFamilyHandle
	want  []Batch // Seq and Count of every WAL batch written, Data nil
	open  map[string]*grocksdb.Transaction
	n     int                // transactions begun, for names
	state map[string]cfState // what a reader must find, per column family
	held  map[string][]txnOp // the writes of each prepared transaction
	gone  map[string]bool    // keys written only by rolled back or left-prepared transactions
}

type cfState map[string]string

type txnOp struct {
	cf       int
	key, val string // val "" is a delete
}

// newTxnWriter creates a TransactionDB in dir with column families
// default, a and b, a small write buffer and WAL_ttl_seconds ttl (0 keeps
// only the WAL files that RocksDB needs).
func newTxnWriter(t testing.TB, dir string, ttl uint64) *txnWriter {
	t.Helper()
	o := grocksdb.NewDefaultOptions()
	o.SetCreateIfMissing(true)
	o.SetCreateIfMissingColumnFamilies(true)
	o.SetWALTtlSeconds(ttl)
	o.SetWriteBufferSize(64 << 10)
	names := []string{"default", "a", "b"}
	cfOpts := []*grocksdb.Options{o, o, o}
	tdbo := grocksdb.NewDefaultTransactionDBOptions()
	db, hs, err := grocksdb.OpenTransactionDbColumnFamilies(o, tdbo, dir, names, cfOpts)
	if err != nil {
		t.Fatalf("open transaction db %s: %v", dir, err)
	}
	w := &txnWriter{t: t, dir: dir, db: db, opts: o, tdbo: tdbo, wo: grocksdb.NewDefaultWriteOptions(),
		to: grocksdb.NewDefaultTransactionOptions(), list: hs, open: map[string]*grocksdb.Transaction{},
		state: map[string]cfState{}, held: map[string][]txnOp{}, gone: map[string]bool{}}
	for _, n := range names {
		w.state[n] = cfState{}
	}
	t.Cleanup(w.close)
	return w
}

func (w *txnWriter) seq() uint64 {
	w.t.Helper()
	s, err := TransactionDBSequence(w.db)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// logged runs op, which writes one WAL batch, and records it.
func (w *txnWriter) logged(what string, op func() error) {
	w.t.Helper()
	before := w.seq()
	if err := op(); err != nil {
		w.t.Fatalf("%s: %v", what, err)
	}
	w.want = append(w.want, Batch{Seq: before + 1, Count: uint32(w.seq() - before)})
}

var cfNames = []string{"default", "a", "b"}

func (w *txnWriter) record(op txnOp) {
	if op.val == "" {
		delete(w.state[cfNames[op.cf]], op.key)
	} else {
		w.state[cfNames[op.cf]][op.key] = op.val
	}
}

// plain writes a batch of puts and deletes with db.Write.
func (w *txnWriter) plain(rng *rand.Rand) {
	w.t.Helper()
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	var ops []txnOp
	for range 1 + rng.IntN(4) {
		op := randomTxnOp(rng, "plain")
		if op.val == "" {
			wb.DeleteCF(w.list[op.cf], []byte(op.key))
		} else {
			wb.PutCF(w.list[op.cf], []byte(op.key), []byte(op.val))
		}
		ops = append(ops, op)
	}
	w.logged("write", func() error { return w.db.Write(w.wo, wb) })
	for _, op := range ops {
		w.record(op)
	}
}

func randomTxnOp(rng *rand.Rand, prefix string) txnOp {
	op := txnOp{cf: rng.IntN(3), key: fmt.Sprintf("%s%03d", prefix, rng.IntN(200))}
	if rng.IntN(5) != 0 {
		op.val = fmt.Sprintf("v%x-%s", rng.Uint64(), make([]byte, rng.IntN(40)))
	}
	return op
}

// prepare begins a named transaction, writes to it and prepares it. Its
// keys are its own (prefix name/), so that what a reader must find does
// not depend on the order of commits.
func (w *txnWriter) prepare(rng *rand.Rand) string {
	w.t.Helper()
	w.n++
	name := fmt.Sprintf("txn%04d", w.n)
	txn := w.db.TransactionBegin(w.wo, w.to, nil)
	if err := txn.SetName(name); err != nil {
		w.t.Fatalf("set name: %v", err)
	}
	var ops []txnOp
	for range 1 + rng.IntN(5) {
		op := randomTxnOp(rng, name+"/")
		var err error
		if op.val == "" {
			err = txn.DeleteCF(w.list[op.cf], []byte(op.key))
		} else {
			err = txn.PutCF(w.list[op.cf], []byte(op.key), []byte(op.val))
		}
		if err != nil {
			w.t.Fatalf("write in %s: %v", name, err)
		}
		ops = append(ops, op)
	}
	w.logged("prepare "+name, txn.Prepare)
	w.open[name], w.held[name] = txn, ops
	return name
}

// commit commits a prepared transaction.
func (w *txnWriter) commit(name string) {
	w.t.Helper()
	w.logged("commit "+name, w.open[name].Commit)
	for _, op := range w.held[name] {
		w.record(op)
	}
	w.end(name)
}

// rollback rolls a prepared transaction back.
func (w *txnWriter) rollback(name string) {
	w.t.Helper()
	w.logged("rollback "+name, w.open[name].Rollback)
	w.forget(name)
	w.end(name)
}

// forget marks the keys of a transaction as never to be found.
func (w *txnWriter) forget(name string) {
	for _, op := range w.held[name] {
		w.gone[cfNames[op.cf]+"/"+op.key] = true
	}
}

func (w *txnWriter) end(name string) {
	w.open[name].Destroy()
	delete(w.open, name)
	delete(w.held, name)
}

// unnamed commits a transaction without a prepare.
func (w *txnWriter) unnamed(rng *rand.Rand) {
	w.t.Helper()
	txn := w.db.TransactionBegin(w.wo, w.to, nil)
	defer txn.Destroy()
	op := randomTxnOp(rng, "unnamed")
	if op.val == "" {
		op.val = "x"
	}
	if err := txn.PutCF(w.list[op.cf], []byte(op.key), []byte(op.val)); err != nil {
		w.t.Fatal(err)
	}
	w.logged("commit unnamed", txn.Commit)
	w.record(op)
}

// flush flushes every column family: a new WAL file. The files that hold a
// prepare not yet committed stay.
func (w *txnWriter) flush() {
	w.t.Helper()
	flushFamilies(w.t, w.db, w.list)
}

// workload interleaves plain writes, transactions prepared then committed,
// prepared then rolled back, unnamed ones and WAL switches, for rounds
// rounds, and leaves one transaction prepared at the end.
func (w *txnWriter) workload(rng *rand.Rand, rounds int) {
	w.t.Helper()
	var names []string
	for i := range rounds {
		names = w.step(rng, names, i)
	}
	w.finish(rng, names)
}

// step does one round of workload: names are the transactions prepared.
func (w *txnWriter) step(rng *rand.Rand, names []string, i int) []string {
	w.t.Helper()
	switch r := rng.IntN(10); {
	case r < 3:
		w.plain(rng)
	case r < 6 || len(names) == 0:
		names = append(names, w.prepare(rng))
	case r < 7:
		w.unnamed(rng)
	default:
		k := rng.IntN(len(names))
		if rng.IntN(3) == 0 {
			w.rollback(names[k])
		} else {
			w.commit(names[k])
		}
		names = append(names[:k], names[k+1:]...)
	}
	if i%17 == 16 {
		w.flush()
	}
	return names
}

// finish commits the transactions prepared, then prepares one that it
// leaves so, and writes a plain batch.
func (w *txnWriter) finish(rng *rand.Rand, names []string) {
	w.t.Helper()
	for _, n := range names {
		w.commit(n)
	}
	left := w.prepare(rng)
	w.forget(left)
	w.plain(rng)
}

// digest digests the writer's column families as Digest does.
func (w *txnWriter) digest() Digest {
	w.t.Helper()
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	d := Digest{}
	for i, cf := range w.list {
		it := w.db.NewIteratorCF(ro, cf)
		s, err := digestIterator(it)
		it.Close()
		if err != nil {
			w.t.Fatal(err)
		}
		d[cfNames[i]] = s
	}
	return d
}

// checkpoint writes a checkpoint of the writer into dir and returns its
// sequence.
func (w *txnWriter) checkpoint(dir string) uint64 {
	w.t.Helper()
	cp, err := w.db.NewCheckpoint()
	if err != nil {
		w.t.Fatal(err)
	}
	defer cp.Destroy()
	seq := w.seq()
	if err := cp.CreateCheckpoint(dir, 0); err != nil {
		w.t.Fatal(err)
	}
	if after := w.seq(); after != seq {
		w.t.Fatalf("the checkpoint moved the sequence from %d to %d", seq, after)
	}
	return seq
}

func (w *txnWriter) close() {
	if w.db == nil {
		return
	}
	for _, txn := range w.open {
		txn.Destroy()
	}
	for _, h := range w.list {
		h.Destroy()
	}
	w.db.Close()
	w.wo.Destroy()
	w.to.Destroy()
	w.tdbo.Destroy()
	w.opts.Destroy()
	w.db = nil
}
