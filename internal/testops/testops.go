// Package testops holds a merge operator of an application's own, for the
// tests of several packages (rocks, restore): a name that RocksDB does not
// know, which rockstream cannot replay without it. It imports nothing of
// rockstream, so that package rocks's own tests can use it.
package testops

// ConcatName is the name that Concat gives RocksDB, and that an OPTIONS
// file then records.
const ConcatName = "test.Concat"

// Concat is a merge operator that joins the operands with "+"
// (grocksdb.MergeOperator).
type Concat struct{}

// Name is ConcatName.
func (Concat) Name() string { return ConcatName }

// FullMerge joins the existing value and the operands with "+".
func (Concat) FullMerge(key, existing []byte, ops [][]byte) ([]byte, bool) {
	out := append([]byte(nil), existing...)
	for _, op := range ops {
		if len(out) > 0 {
			out = append(out, '+')
		}
		out = append(out, op...)
	}
	return out, true
}
