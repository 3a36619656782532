package foreign

import (
	"fmt"
	"math"

	"github.com/linxGnu/grocksdb"
)

// Verify opens dir with shape's options as the application would, and
// returns its state as a Mark named "verify" (Seq 0 for a TransactionDB
// opened read-write: grocksdb v1.7.15 cannot read its sequence). In
// ReadWrite mode it also writes one batch after reading, as an application
// that goes on from there does.
func Verify(shape *Shape, dir string, mode Mode) (Mark, error) {
	a, err := Open(shape, dir, mode)
	if err != nil {
		return Mark{}, err
	}
	defer a.Close()
	d, err := a.Digest()
	if err != nil {
		return Mark{}, err
	}
	seq, _ := a.Sequence()
	m := Mark{Name: "verify", Seq: seq, Families: d}
	if mode != ReadWrite {
		return m, nil
	}
	wb := grocksdb.NewWriteBatch()
	defer wb.Destroy()
	if shape.Timestamps {
		wb.PutCFWithTS(a.cfs["default"], []byte("verify-write"), timestamp(math.MaxUint64-1), []byte("the application goes on"))
	} else {
		wb.PutCF(a.cfs["default"], []byte("verify-write"), []byte("the application goes on"))
	}
	if err := a.write(wb); err != nil {
		return Mark{}, fmt.Errorf("foreign: write to %s after opening it: %w", dir, err)
	}
	return m, a.FlushWAL()
}

// Diff compares the database in got (opened read-only) with the one in
// want (a writer's checkpoint, opened read-write: a checkpoint of a
// database with track_and_verify_wals_in_manifest cannot be opened
// read-only by RocksDB 7.8.3) key by key, and describes the first
// difference of each family that differs.
func Diff(shape *Shape, got, want string) ([]string, error) {
	g, err := Open(shape, got, ReadOnly)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	cp := *shape
	cp.WALDir = false // a checkpoint holds its WAL files
	w, err := Open(&cp, want, ReadWrite)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return FirstDifferences(g, w)
}
