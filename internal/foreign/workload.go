package foreign

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/linxGnu/grocksdb"
)

// Sizes are the writer's knobs; every choice comes from Seed, so that a
// shape, its sizes and its seed always write the same batches.
type Sizes struct {
	Seed      uint64
	Keys      int // distinct keys per family
	ValueSize int // mean value size in bytes
	Ops       int // most operations per batch
}

// workload is the writer's state between batches.
type workload struct {
	r     *rand.Rand
	sizes Sizes
}

func newWorkload(s Sizes) *workload {
	return &workload{r: rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15)), sizes: s}
}

func (w *workload) key() []byte {
	return fmt.Appendf(nil, "k%07d", w.r.IntN(w.sizes.Keys))
}

func (w *workload) value() []byte {
	n := w.sizes.ValueSize/2 + w.r.IntN(w.sizes.ValueSize+1)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + w.r.IntN(26))
	}
	return b
}

func (w *workload) ops() int { return 1 + w.r.IntN(w.sizes.Ops) }

// pick returns one of the app's families at random (sorted, so the choice
// is deterministic).
func (w *workload) pick(a *App) (string, *grocksdb.ColumnFamilyHandle) {
	names := a.Families()
	n := names[w.r.IntN(len(names))]
	return n, a.cfs[n]
}

// Step writes batch number i.
func (a *App) Step(w *workload, i int) error {
	if err := a.shape.step(a, w, i); err != nil {
		return fmt.Errorf("foreign: %s batch %d: %w", a.shape.Name, i, err)
	}
	return nil
}

// Finish writes what the shape leaves at the end (txn: a prepared
// transaction).
func (a *App) Finish(w *workload) error {
	if a.shape.finish == nil {
		return nil
	}
	return a.shape.finish(a, w)
}

// writePlain: puts and deletes over every family of the app.
func writePlain(a *App, w *workload, _ int) error {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for range w.ops() {
		_, cf := w.pick(a)
		if w.r.IntN(7) == 0 {
			wb.DeleteCF(cf, w.key())
		} else {
			wb.PutCF(cf, w.key(), w.value())
		}
	}
	return a.write(wb)
}

// unloggedEvery: the unlogged shape writes batch i without the WAL when
// i%unloggedEvery == unloggedEvery/2 (never the last batches of a run).
const unloggedEvery = 40

// writeUnlogged: writePlain, with one batch in unloggedEvery written with
// WriteOptions.DisableWAL: it consumes sequence numbers but never reaches
// the WAL.
func writeUnlogged(a *App, w *workload, i int) error {
	if i%unloggedEvery != unloggedEvery/2 {
		return writePlain(a, w, i)
	}
	a.wo.DisableWAL(true)
	defer a.wo.DisableWAL(false)
	return writePlain(a, w, i)
}

// writeTimestamped: puts and deletes, each with the batch's number as its
// timestamp (8 bytes little-endian, as u64ts encodes it).
func writeTimestamped(a *App, w *workload, i int) error {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	ts := timestamp(uint64(i) + 1)
	for range w.ops() {
		_, cf := w.pick(a)
		if w.r.IntN(7) == 0 {
			wb.DeleteCFWithTS(cf, w.key(), ts)
		} else {
			wb.PutCFWithTS(cf, w.key(), ts, w.value())
		}
	}
	return a.write(wb)
}

func timestamp(n uint64) []byte {
	return binary.LittleEndian.AppendUint64(nil, n)
}

// writeHomeserver: a batch per event touching a few maps, most of them the
// hot ones (events, state), the WAL flushed by hand every 8 batches.
func writeHomeserver(a *App, w *workload, i int) error {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for range w.ops() {
		cf := a.cfs[homeserverHot[w.r.IntN(len(homeserverHot))]]
		if w.r.IntN(10) < 3 {
			_, cf = w.pick(a)
		}
		if w.r.IntN(9) == 0 {
			wb.DeleteCF(cf, w.key())
		} else {
			wb.PutCF(cf, w.key(), w.value())
		}
	}
	if err := a.write(wb); err != nil {
		return err
	}
	if i%8 == 7 {
		return a.FlushWAL()
	}
	return nil
}

// writeMerge: uint64add and stringappend merges, with puts and deletes.
func writeMerge(a *App, w *workload, _ int) error {
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	for range w.ops() {
		switch w.r.IntN(10) {
		case 0, 1, 2, 3:
			var n [8]byte
			binary.LittleEndian.PutUint64(n[:], uint64(1+w.r.IntN(100)))
			wb.MergeCF(a.cfs["counters"], w.key(), n[:])
		case 4:
			var n [8]byte
			binary.LittleEndian.PutUint64(n[:], uint64(w.r.IntN(1000)))
			wb.PutCF(a.cfs["counters"], w.key(), n[:])
		case 5, 6, 7:
			wb.MergeCF(a.cfs["log"], w.key(), w.value()[:4])
		case 8:
			wb.DeleteCF(a.cfs["log"], w.key())
		default:
			wb.PutCF(a.cfs["default"], w.key(), w.value())
		}
	}
	return a.write(wb)
}

// churnEvery is how many batches apart cfchurn creates or drops a family.
const churnEvery = 25

// writeChurn: every churnEvery batches, creates churn-N (N cycles over 4
// names) or drops it when it exists; writes to every live family between.
func writeChurn(a *App, w *workload, i int) error {
	// Half-way between two multiples of churnEvery, never right after a
	// mark (marks fall on multiples of 5): a family created or dropped with
	// no write since a mark shares the mark's sequence, and a restore to
	// that sequence may hold either state (both are the database at it).
	if i%churnEvery == churnEvery/2 {
		name := fmt.Sprintf("churn-%d", (i/churnEvery)%4)
		if err := a.churn(name); err != nil {
			return err
		}
	}
	return writePlain(a, w, i)
}

// isChurnFamily says whether cfchurn creates and drops the family.
func isChurnFamily(name string) bool { return strings.HasPrefix(name, "churn-") }

func (a *App) churn(name string) error {
	if h, ok := a.cfs[name]; ok {
		if err := a.db.DropColumnFamily(h); err != nil {
			return fmt.Errorf("drop column family %q: %w", name, err)
		}
		h.Destroy()
		delete(a.cfs, name)
		return nil
	}
	o, err := parseOptions(a.shape.familyOptions(name))
	if err != nil {
		return err
	}
	a.opts = append(a.opts, o)
	h, err := a.db.CreateColumnFamily(o, name)
	if err != nil {
		return fmt.Errorf("create column family %q: %w", name, err)
	}
	a.cfs[name] = h
	return nil
}

// txnState is the txn shape's transaction left prepared across batches.
type txnState struct {
	pending *grocksdb.Transaction
	n       int // transactions named so far
}

// writeTxn interleaves plain batches, named transactions committed or
// rolled back after Prepare, a transaction that stays prepared across a few
// batches (and marks), and unnamed ones committed without Prepare.
func writeTxn(a *App, w *workload, _ int) error {
	switch k := w.r.IntN(10); {
	case k < 4:
		return writePlain(a, w, 0)
	case k < 7:
		return a.txnRun(w, true, true)
	case k == 7:
		return a.txnRun(w, true, false)
	case k == 8:
		if a.txn.pending != nil {
			return a.commitPending()
		}
		return a.prepareOne(w)
	default:
		return a.txnRun(w, false, true)
	}
}

// txnRun writes one transaction: named and prepared or not, then committed
// or rolled back.
func (a *App) txnRun(w *workload, prepare, commit bool) error {
	t, err := a.begin(w, prepare, false)
	if err != nil {
		return err
	}
	defer t.Destroy()
	if prepare {
		if err := t.Prepare(); err != nil {
			return fmt.Errorf("prepare %s: %w", t.GetName(), err)
		}
	}
	if commit {
		return t.Commit()
	}
	return t.Rollback()
}

// begin starts a transaction with a few puts over the families. Keys of a
// transaction that stays prepared are its own (pending-N-J), so that it
// holds no lock another write needs.
func (a *App) begin(w *workload, named, own bool) (*grocksdb.Transaction, error) {
	to := grocksdb.NewDefaultTransactionOptions()
	defer to.Destroy()
	t := a.tdb.TransactionBegin(a.wo, to, nil)
	a.txn.n++
	if named {
		if err := t.SetName(fmt.Sprintf("txn-%06d", a.txn.n)); err != nil {
			t.Destroy()
			return nil, fmt.Errorf("name transaction %d: %w", a.txn.n, err)
		}
	}
	names := a.Families()
	for j := range w.ops() {
		key := w.key()
		if own {
			key = fmt.Appendf(nil, "pending-%06d-%02d", a.txn.n, j)
		}
		if err := t.PutCF(a.cfs[names[w.r.IntN(len(names))]], key, w.value()); err != nil {
			t.Destroy()
			return nil, fmt.Errorf("put in transaction %d: %w", a.txn.n, err)
		}
	}
	return t, nil
}

func (a *App) prepareOne(w *workload) error {
	t, err := a.begin(w, true, true)
	if err != nil {
		return err
	}
	if err := t.Prepare(); err != nil {
		t.Destroy()
		return fmt.Errorf("prepare %s: %w", t.GetName(), err)
	}
	a.txn.pending = t
	return nil
}

func (a *App) commitPending() error {
	t := a.txn.pending
	a.txn.pending = nil
	defer t.Destroy()
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit %s: %w", t.GetName(), err)
	}
	return nil
}

// leavePrepared ends the txn shape with one transaction prepared and never
// committed: RocksDB recovers it as prepared when the database opens.
func leavePrepared(a *App, w *workload) error {
	if a.txn.pending != nil {
		return nil
	}
	return a.prepareOne(w)
}

// sortedKeys is for tests and diffs.
func sortedKeys[M ~map[string]V, V any](m M) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
