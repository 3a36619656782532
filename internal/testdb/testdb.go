// Package testdb holds what tests of several packages need of a RocksDB
// database: opening one as an application would (created if missing, old WAL
// files kept for an hour, which rockstream needs), and digesting one.
package testdb

import (
	"testing"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/rocks"
)

// Open opens dir read-write as an application would: created if missing,
// with WAL_ttl_seconds 3600. The caller closes it. The options stay alive
// with the handle, which refers to them.
func Open(tb testing.TB, dir string) *grocksdb.DB {
	tb.Helper()
	opts := grocksdb.NewDefaultOptions()
	opts.SetCreateIfMissing(true)
	opts.SetWALTtlSeconds(3600)
	db, err := grocksdb.OpenDb(opts, dir)
	if err != nil {
		tb.Fatalf("open %s: %v", dir, err)
	}
	return db
}

// Digest opens dir read-only and returns its logical digest and latest
// sequence.
func Digest(tb testing.TB, dir string) (rocks.Digest, uint64) {
	tb.Helper()
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	d, err := db.Digest()
	if err != nil {
		tb.Fatal(err)
	}
	return d, db.LatestSequence()
}
