package rocks

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"maps"
	"slices"

	"github.com/linxGnu/grocksdb"
)

// Digest is a logical digest of a database: one CFDigest per column family,
// by name. Two databases with the same keys and values in every column
// family have equal digests, whatever their files, sequence numbers or
// compaction state. Compare with maps.Equal or Diff.
type Digest map[string]CFDigest

// CFDigest is the digest of one column family: sha256 over every key and
// value in key order, each preceded by its length as 8 bytes big-endian, so
// that ("ab","c") and ("a","bc") differ.
type CFDigest struct {
	Keys uint64
	Sum  [32]byte
}

// Diff describes the first difference between d and o in column family
// name order; "" when they are equal.
func (d Digest) Diff(o Digest) string {
	names := maps.Clone(d)
	maps.Copy(names, o)
	for _, n := range slices.Sorted(maps.Keys(names)) {
		a, inD := d[n]
		b, inO := o[n]
		switch {
		case !inD || !inO:
			return fmt.Sprintf("column family %q: present %v vs %v", n, inD, inO)
		case a != b:
			return fmt.Sprintf("column family %q: %d keys, sum %x vs %d keys, sum %x", n, a.Keys, a.Sum[:6], b.Keys, b.Sum[:6])
		}
	}
	return ""
}

// digest reads every column family of h. It must not run concurrently with
// writes to h (the callers hold their lock), so that the column families are
// read at one state.
func (h *handle) digest() (Digest, error) {
	ro := grocksdb.NewDefaultReadOptions()
	defer ro.Destroy()
	ro.SetFillCache(false)
	d := Digest{}
	for _, cf := range h.cfs {
		s, err := digestCF(h.db, ro, cf)
		if err != nil {
			return nil, fmt.Errorf("rocks: digest %s column family %q: %w", h.dir, cf.Name(), err)
		}
		d[cf.Name()] = s
	}
	return d, nil
}

func digestCF(db *grocksdb.DB, ro *grocksdb.ReadOptions, cf *grocksdb.ColumnFamilyHandle) (CFDigest, error) {
	it := db.NewIteratorCF(ro, cf)
	defer it.Close()
	return digestIterator(it)
}

// DigestIterator digests what it reads from the start, as Digest digests a
// column family: for a database that this package did not open (a
// TransactionDB, say). It does not close it.
func DigestIterator(it *grocksdb.Iterator) (CFDigest, error) { return digestIterator(it) }

// digestIterator digests what it reads from the start.
func digestIterator(it *grocksdb.Iterator) (CFDigest, error) {
	h := sha256.New()
	var n uint64
	for it.SeekToFirst(); it.Valid(); it.Next() {
		k, v := it.Key(), it.Value()
		writeField(h, k.Data())
		writeField(h, v.Data())
		k.Free()
		v.Free()
		n++
	}
	if err := it.Err(); err != nil {
		return CFDigest{}, err
	}
	var s CFDigest
	s.Keys = n
	h.Sum(s.Sum[:0])
	return s, nil
}

func writeField(h hash.Hash, b []byte) {
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(b)))
	h.Write(l[:])
	h.Write(b)
}
