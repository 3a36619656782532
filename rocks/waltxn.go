package rocks

import (
	"errors"
	"fmt"
)

// walTxns is what a WALTail knows of the two-phase-commit transactions of
// the WAL, to give each batch the number of sequences it uses (txn.go).
type walTxns struct {
	txns     Txns
	first    uint64 // the number of the first WAL file read since Seek; 0: none yet
	complete bool   // every WAL file before first was read too
}

// span returns the number of sequences that the batch just read from
// t.cur uses. The commit of a transaction prepared before the first file
// read since Seek makes it read the older WAL files first, once per Seek:
// RocksDB keeps every WAL file that holds a prepare not yet committed
// (min_log_number_to_keep_2pc, db/logs_with_prep_tracker.h). Reading them
// only then costs nothing to a database without transactions. A commit
// whose prepare is in no WAL file left is a gap: the sequences it uses
// are not known.
func (t *WALTail) span(payload []byte) (uint32, error) {
	if t.txns.first == 0 {
		t.txns.first = t.cur.num
	}
	span, err := t.txns.txns.Span(payload)
	if errors.Is(err, ErrNoPrepare) && !t.txns.complete {
		if err = t.readOlder(); err == nil {
			span, err = t.txns.txns.Span(payload)
		}
	}
	switch {
	case errors.Is(err, ErrNoPrepare):
		return 0, fmt.Errorf("rocks: read wal %s at offset %d: %w: %w (no WAL file left holds its prepare)", t.cur.path, t.cur.recOff, ErrGap, err)
	case err != nil:
		return 0, fmt.Errorf("rocks: read wal %s at offset %d: %w", t.cur.path, t.cur.recOff, err)
	}
	return span, nil
}

// readOlder reads the WAL files before the first one read since Seek, all
// of them, for the transactions they prepared and did not end. Those files
// are finished: the writer writes only the newest file.
func (t *WALTail) readOlder() error {
	logs, err := t.list()
	if err != nil {
		return err
	}
	older := Txns{lenient: true} // a commit whose prepare is older still ends nothing that counts
	for _, l := range logs {
		if l.num >= t.txns.first {
			break
		}
		if err := t.readPrepares(l, &older); err != nil {
			return err
		}
	}
	// Nothing read since Seek ended a transaction that it did not know (the
	// first such commit brings us here), so the two sets add up.
	t.txns.txns.merge(&older)
	t.txns.complete = true
	return nil
}

// readPrepares reads the batches of a finished WAL file into txns.
func (t *WALTail) readPrepares(l walLog, txns *Txns) error {
	f, err := t.open(l)
	if err != nil || f == nil {
		return err // gone meanwhile: what it prepared was committed and flushed
	}
	defer f.f.Close()
	f.buf = make([]byte, 0, walReadChunk) // t.buf belongs to t.cur
	f.finished = true
	for {
		payload, _, res, err := f.read()
		if err != nil || res != readRecord {
			return err
		}
		if _, err := txns.Span(payload); err != nil {
			return fmt.Errorf("rocks: read wal %s at offset %d: %w", f.path, f.recOff, err)
		}
	}
}
