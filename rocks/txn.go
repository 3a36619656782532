package rocks

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// Two-phase commit (TransactionDB, named transactions).
//
// A TransactionDB with the default WriteCommitted policy writes a
// transaction's Prepare as a WAL batch that holds its records between a
// BeginPrepare and an EndPrepare(xid) marker. That batch is logged with
// disable_memtable (utilities/transactions/pessimistic_transaction.cc:534
// WriteCommittedTxn::PrepareInternal): it uses no sequence number, though its
// header counts its records. The Commit's WAL record is the commit-time
// batch and a Commit(xid) marker, cut there by MarkWalTerminationPoint
// (pessimistic_transaction.cc:729 CommitInternal); the prepared records are
// appended after the cut and inserted into the memtables at the commit's
// sequences, so the commit uses the commit-time batch's count plus the
// prepared count. A Rollback is a batch with a Rollback(xid) marker alone,
// which uses none (RollbackInternal). Batches of several writers can share
// one WAL record (db/db_impl/db_impl_write.cc MergeBatch): the rule applies
// record by record. Recovery reads them the same way (db/write_batch.cc
// MemTableInserter: MarkBeginPrepare holds the records of a prepared
// section without advancing the sequence, MarkCommit inserts them at the
// commit's sequence, MarkRollback drops them).
//
// The WritePrepared and WriteUnprepared policies write their own markers
// (BeginPersistedPrepareXID, BeginUnprepareXID) and give every batch one
// sequence number (seq_per_batch): they are refused with ErrUnsupported.

// Transaction markers of the WriteBatch format (db/dbformat.h ValueType).
const (
	tagBeginPrepare          = 0x09 // kTypeBeginPrepareXID: WriteCommitted
	tagEndPrepare            = 0x0A // kTypeEndPrepareXID, xid
	tagCommit                = 0x0B // kTypeCommitXID, xid
	tagRollback              = 0x0C // kTypeRollbackXID, xid
	tagBeginPersistedPrepare = 0x12 // kTypeBeginPersistedPrepareXID: WritePrepared
	tagBeginUnprepare        = 0x13 // kTypeBeginUnprepareXID: WriteUnprepared
	tagCommitWithTimestamp   = 0x15 // kTypeCommitXIDAndTimestamp, timestamp, xid (0x14 is kTypeDeletionWithTimestamp, never in a WAL)
)

// record is one record of a WriteBatch.
type record struct {
	tag  byte
	raw  []byte // the whole record, tag included
	xid  []byte // of a marker that names a transaction
	data bool   // a record that uses a sequence number once inserted
}

// nextRecord decodes the record at off of a WriteBatch. It knows every
// record type of RocksDB 7.8 (db/write_batch.cc ReadRecordFromWriteBatch)
// and checks only the framing: Apply's checkBatch checks the rest of what
// it writes.
func nextRecord(data []byte, off int) (r record, next int, err error) {
	r.tag = data[off]
	p := off + 1
	slices := 0
	switch r.tag {
	case tagValue, tagMerge, tagBlobIndex, tagWideColumnEntity, tagRangeDeletion:
		slices, r.data = 2, true
	case tagDeletion, tagSingleDeletion:
		slices, r.data = 1, true
	case tagCFValue, tagCFMerge, tagCFBlobIndex, tagCFWideColumnEntity, tagCFRangeDeletion,
		tagCFDeletion, tagCFSingleDeletion:
		_, n := binary.Uvarint(data[p:])
		if n <= 0 {
			return record{}, 0, fmt.Errorf("%w: bad column family id at offset %d", ErrCorrupt, p)
		}
		p += n
		slices, r.data = 1, true
		if r.tag != tagCFDeletion && r.tag != tagCFSingleDeletion {
			slices = 2
		}
	case tagLogData, tagEndPrepare, tagCommit, tagRollback:
		slices = 1
	case tagCommitWithTimestamp:
		slices = 2
	case tagNoop, tagBeginPrepare, tagBeginPersistedPrepare, tagBeginUnprepare:
	default:
		return record{}, 0, fmt.Errorf("%w: unknown record type 0x%02x at offset %d", ErrCorrupt, r.tag, off)
	}
	var s []byte
	for range slices {
		if s, p, err = readSlice(data, p); err != nil {
			return record{}, 0, err
		}
	}
	if r.tag == tagEndPrepare || r.tag == tagCommit || r.tag == tagRollback || r.tag == tagCommitWithTimestamp {
		r.xid = s // the last slice
	}
	r.raw = data[off:p]
	return r, p, nil
}

// prepared is a prepared section: the records of a transaction's Prepare,
// held until its commit or rollback.
type prepared struct {
	records []byte // the data records, one after another as in the batch
	count   uint32
}

// Txns follows the prepared sections of a WAL's two-phase-commit
// transactions, so that it can say how many sequence numbers each batch
// uses and what recovery would insert. Feed it every batch in WAL order.
// The zero value knows no transaction.
type Txns struct {
	open map[string]prepared
	// dropped holds the transactions rolled back whose prepare was not
	// seen, until merge: their prepare, if merge brings it, is over.
	dropped map[string]bool
	// lenient takes a commit whose prepare it has not seen as using no
	// sequence, for a reader that wants only the transactions left open.
	lenient bool
}

// Pending returns the names of the transactions prepared and not yet
// committed or rolled back.
func (t *Txns) Pending() []string {
	names := make([]string, 0, len(t.open))
	for n := range t.open {
		names = append(names, n)
	}
	return names
}

// change is what one batch does to the prepared sections: a name maps to
// its section, or to nil once committed or rolled back within the batch;
// droppedKey+name to nil for a rollback whose prepare was not seen.
type change map[string]*prepared

// droppedKey prefixes the names of a change that are rollbacks of
// transactions whose prepare was not seen (a NUL: names are user strings).
const droppedKey = "\x00dropped:"

// lookup finds a section prepared and not yet done, within the batch or
// before it.
func (t *Txns) lookup(ch change, name string) (prepared, bool) {
	if p, ok := ch[name]; ok {
		if p == nil {
			return prepared{}, false
		}
		return *p, true
	}
	p, ok := t.open[name]
	return p, ok
}

// apply makes a batch's change.
func (t *Txns) apply(ch change) {
	if t.open == nil && len(ch) > 0 {
		t.open = map[string]prepared{}
	}
	for n, p := range ch {
		if d, ok := strings.CutPrefix(n, droppedKey); ok {
			if t.dropped == nil {
				t.dropped = map[string]bool{}
			}
			t.dropped[d] = true
			continue
		}
		if p == nil {
			delete(t.open, n)
		} else {
			t.open[n] = *p
			delete(t.dropped, n)
		}
	}
}

// step reads one batch: span is the number of sequence numbers it uses,
// and when build is true, plain is the batch that recovery inserts (the
// records outside prepared sections, and at each commit the committed
// section's records), with the batch's sequence and span in its header;
// nil when span is 0, data itself for a batch without transaction
// markers. ch is what the batch does to the prepared sections:
// apply it once the batch is taken. A commit of a transaction whose
// prepare it has not seen is a *NoPrepareError; a WritePrepared or
// WriteUnprepared marker is ErrUnsupported, and so is, with build, a
// commit with a timestamp.
func (t *Txns) step(data []byte, build bool) (span uint32, plain []byte, ch change, err error) {
	seq, _, err := batchHeader(data)
	if err != nil {
		return 0, nil, nil, err
	}
	var sec *prepared // the section being read
	var out []byte    // with build, the plain batch, from the first marker on
	for off := headerSize; off < len(data); {
		r, next, err := nextRecord(data, off)
		if err != nil {
			return 0, nil, nil, err
		}
		switch {
		case r.data && sec != nil:
			sec.records = append(sec.records, r.raw...)
			sec.count++
		case r.data:
			span++
			if out != nil {
				out = append(out, r.raw...)
			}
		case r.tag == tagLogData || r.tag == tagNoop: // nothing to a sequence, anywhere
		case build && r.tag == tagCommitWithTimestamp:
			return 0, nil, nil, fmt.Errorf("%w: a commit with a timestamp (user-defined timestamps) at offset %d", ErrUnsupported, off)
		default:
			if build && out == nil { // what came before is plain records, as they are
				out = append(make([]byte, 0, len(data)), data[:off]...)
			}
			var done prepared
			if ch == nil {
				ch = change{} // only for batches with markers: plain ones cost no map
			}
			if sec, done, err = t.marker(ch, sec, r, off); err != nil {
				return 0, nil, nil, err
			}
			if r.tag == tagCommit || r.tag == tagCommitWithTimestamp {
				span += done.count
				if out != nil {
					out = append(out, done.records...)
				}
			}
		}
		off = next
	}
	if sec != nil {
		return 0, nil, nil, fmt.Errorf("%w: a prepared section without its end marker", ErrCorrupt)
	}
	switch {
	case !build || span == 0:
		return span, nil, ch, nil
	case out == nil:
		return span, data, ch, nil // a plain batch: as it is
	}
	binary.LittleEndian.PutUint64(out, seq)
	binary.LittleEndian.PutUint32(out[8:], span)
	return span, out, ch, nil
}

// marker takes a transaction marker into ch. sec is the section being
// read; next is the section after the marker, and done the section that a
// commit or rollback ends.
func (t *Txns) marker(ch change, sec *prepared, r record, off int) (next *prepared, done prepared, err error) {
	switch r.tag {
	case tagBeginPrepare:
		if sec != nil {
			return nil, done, fmt.Errorf("%w: a prepare marker inside a prepared section at offset %d", ErrCorrupt, off)
		}
		return &prepared{}, done, nil
	case tagEndPrepare:
		if sec == nil {
			return nil, done, fmt.Errorf("%w: an end-of-prepare marker without its begin at offset %d", ErrCorrupt, off)
		}
		name := string(r.xid)
		if _, ok := t.lookup(ch, name); ok {
			return nil, done, fmt.Errorf("%w: transaction %q prepared again before its commit or rollback (offset %d)", ErrCorrupt, name, off)
		}
		ch[name] = sec
		return nil, done, nil
	case tagBeginPersistedPrepare:
		return nil, done, fmt.Errorf("%w: a WritePrepared transaction (TransactionDBOptions write_policy WRITE_PREPARED) at offset %d: rockstream reads the WriteCommitted policy only", ErrUnsupported, off)
	case tagBeginUnprepare:
		return nil, done, fmt.Errorf("%w: a WriteUnprepared transaction (TransactionDBOptions write_policy WRITE_UNPREPARED) at offset %d: rockstream reads the WriteCommitted policy only", ErrUnsupported, off)
	}
	if sec != nil {
		return nil, done, fmt.Errorf("%w: record type 0x%02x inside a prepared section at offset %d", ErrCorrupt, r.tag, off)
	}
	switch r.tag {
	case tagCommit, tagCommitWithTimestamp, tagRollback:
		name := string(r.xid)
		p, ok := t.lookup(ch, name)
		if !ok && r.tag != tagRollback && !t.lenient {
			return nil, done, &NoPrepareError{Name: name, Offset: off}
		}
		if !ok && r.tag == tagRollback {
			ch[droppedKey+name] = nil
		}
		// A rollback whose prepare was not read has nothing to drop and
		// uses no sequence: recovery takes it so too (MarkRollback).
		ch[name] = nil
		return sec, p, nil
	}
	return sec, done, nil
}

// NoPrepareError is the commit of a transaction whose prepare was not read:
// it is before what was read (a WAL file deleted, a base without it), so the
// number of sequences the commit uses is not known. It matches
// ErrNoPrepare.
type NoPrepareError struct {
	Name   string // the transaction's name (xid)
	Offset int    // of the commit marker in its batch
}

func (e *NoPrepareError) Error() string {
	return fmt.Sprintf("rocks: commit of transaction %q (marker at offset %d of its batch), whose prepare was not read", e.Name, e.Offset)
}

// Unwrap makes errors.Is(err, ErrNoPrepare) true.
func (e *NoPrepareError) Unwrap() error { return ErrNoPrepare }

// Span reads one batch of the WAL and returns the number of sequence
// numbers that it uses: its header's count for a batch without transaction
// markers. Feed it every batch, in WAL order.
func (t *Txns) Span(data []byte) (uint32, error) {
	span, _, ch, err := t.step(data, false)
	if err == nil {
		t.apply(ch)
	}
	return span, err
}

// merge adds the sections of o, which were prepared before the batches
// that t read, that t does not hold and did not see rolled back.
func (t *Txns) merge(o *Txns) {
	for name, p := range o.open {
		if _, ok := t.open[name]; !ok && !t.dropped[name] {
			if t.open == nil {
				t.open = map[string]prepared{}
			}
			t.open[name] = p
		}
	}
	t.dropped = nil
}
