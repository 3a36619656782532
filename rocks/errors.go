package rocks

import (
	"errors"
	"fmt"
)

// Errors of this package, checked with errors.Is.
var (
	// ErrNotDatabase: a directory is missing or holds no RocksDB database
	// (no CURRENT file).
	ErrNotDatabase = errors.New("rocks: not a rocksdb database")
	// ErrGap: the WAL does not continue where it must. Returned as a *GapError.
	ErrGap = errors.New("rocks: sequence gap")
	// ErrCorrupt: a write batch is malformed.
	ErrCorrupt = errors.New("rocks: corrupt write batch")
	// ErrUnsupported: a write batch holds a record that Apply cannot replay
	// (merge, blob index, wide columns, a WritePrepared or WriteUnprepared
	// transaction, a commit with a timestamp, or a column family that the
	// database does not have).
	ErrUnsupported = errors.New("rocks: unsupported write batch")
	// ErrUnflushed: the database holds writes that are in neither its WAL
	// nor its SST files yet (written with WriteOptions.disableWAL, not yet
	// flushed), so a checkpoint taken now would lack them while opening at
	// a later sequence. Wait for the writer to flush and take it again.
	ErrUnflushed = errors.New("rocks: writes made without the WAL are not flushed yet")
	// ErrReplaced: the followed database was deleted, or replaced by another.
	ErrReplaced = errors.New("rocks: database replaced")
	// ErrNoPrepare: a batch commits a two-phase-commit transaction whose
	// prepare was not read. Returned as a
	// *NoPrepareError.
	ErrNoPrepare = errors.New("rocks: transaction prepare not read")
	// ErrClosed: the Follower, DB or Updates was closed.
	ErrClosed = errors.New("rocks: closed")
	// ErrTxnMarkers: a Replayer told to stop at transaction markers
	// (ReplayOptions.StopAtTxn) was given a batch that holds some; it took
	// nothing of it.
	ErrTxnMarkers = errors.New("rocks: the batch holds two-phase-commit markers")
)

// GapError says which sequence number was expected and which was found.
// It matches ErrGap.
type GapError struct {
	Dir      string // database directory
	Expected uint64 // the sequence the next batch must start at (or cover)
	Got      uint64 // the first sequence of the batch found; 0: none found
	Latest   uint64 // the database's latest sequence when it was found; 0: not known (WALTail)
	File     string // the WAL file where the batch found is (WALTail); "": not known
	// Unlogged is true when no WAL file is missing between the batch
	// before and the batch found (WALTail): the sequences between were
	// written without the WAL (WriteOptions.disableWAL), not lost with a
	// deleted WAL file.
	Unlogged bool
}

func (e *GapError) Error() string {
	var where, latest string
	if e.File != "" {
		where = " in " + e.File
	}
	if e.Latest != 0 {
		latest = fmt.Sprintf(" (latest seq %d)", e.Latest)
	}
	if e.Got == 0 {
		return fmt.Sprintf("rocks: sequence gap in %s: expected batch at seq %d, wal has none%s",
			e.Dir, e.Expected, latest)
	}
	cause := ""
	if e.Unlogged {
		cause = fmt.Sprintf(": sequences %d..%d were written without the WAL (WriteOptions.disableWAL)", e.Expected, e.Got-1)
	}
	return fmt.Sprintf("rocks: sequence gap in %s: expected batch at seq %d, got seq %d%s%s%s",
		e.Dir, e.Expected, e.Got, where, latest, cause)
}

// Unwrap makes errors.Is(err, ErrGap) true.
func (e *GapError) Unwrap() error { return ErrGap }
