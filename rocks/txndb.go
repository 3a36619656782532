package rocks

// #include <stdlib.h>
// #include "rocksdb/c.h"
import "C"

import (
	"errors"
	"unsafe"

	"github.com/linxGnu/grocksdb"
)

// TransactionDBSequence returns the latest sequence number of a
// TransactionDB, which grocksdb v1.7.15 does not expose (RocksDB 7.8's C API
// has no rocksdb_transactiondb_get_base_db): it takes a snapshot and reads
// the property rocksdb.oldest-snapshot-sequence, so the answer holds only
// while no other snapshot of db exists. The tests use it to check the
// sequence numbers that Txns computes against a real TransactionDB.
func TransactionDBSequence(db *grocksdb.TransactionDB) (uint64, error) {
	snap := db.NewSnapshot()
	defer db.ReleaseSnapshot(snap)
	// grocksdb's TransactionDB holds its C handle as its first field.
	c := *(**C.rocksdb_transactiondb_t)(unsafe.Pointer(db))
	name := C.CString("rocksdb.oldest-snapshot-sequence")
	defer C.free(unsafe.Pointer(name))
	var seq C.uint64_t
	if C.rocksdb_transactiondb_property_int(c, name, &seq) != 0 {
		return 0, errors.New("rocks: a TransactionDB without the property rocksdb.oldest-snapshot-sequence")
	}
	return uint64(seq), nil
}
