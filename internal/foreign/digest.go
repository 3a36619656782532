package foreign

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"

	"github.com/linxGnu/grocksdb"
)

// FamilyDigest is one column family's digest, as rocks.CFDigest: sha256
// over every key and value in key order, each preceded by its length as 8
// bytes big-endian.
type FamilyDigest struct {
	Keys uint64 `json:"keys"`
	Sum  string `json:"sha256"` // hex
}

// Digest is a database's digest: one FamilyDigest per column family.
type Digest map[string]FamilyDigest

// Diff describes the first difference between d (got) and want in family
// name order, the set of families included; "" when they are equal.
func (d Digest) Diff(want Digest) string {
	all := Digest{}
	for n, v := range d {
		all[n] = v
	}
	for n, v := range want {
		all[n] = v
	}
	for _, n := range sortedKeys(all) {
		a, inD := d[n]
		b, inW := want[n]
		switch {
		case !inW:
			return fmt.Sprintf("column family %q is there, the writer had no such family", n)
		case !inD:
			return fmt.Sprintf("column family %q is missing (the writer had %d keys in it)", n, b.Keys)
		case a != b:
			return fmt.Sprintf("column family %q: %d keys, sha256 %.12s; the writer had %d keys, sha256 %.12s", n, a.Keys, a.Sum, b.Keys, b.Sum)
		}
	}
	return ""
}

// Digest reads every column family of the app.
func (a *App) Digest() (Digest, error) {
	ro := a.readOptions()
	defer ro.Destroy()
	d := Digest{}
	for _, n := range a.Families() {
		s, err := a.digestFamily(ro, a.cfs[n])
		if err != nil {
			return nil, fmt.Errorf("foreign: digest %s family %q: %w", a.dir, n, err)
		}
		d[n] = s
	}
	return d, nil
}

func (a *App) digestFamily(ro *grocksdb.ReadOptions, cf *grocksdb.ColumnFamilyHandle) (FamilyDigest, error) {
	it := a.iterator(ro, cf)
	defer it.Close()
	h := sha256.New()
	var n uint64
	for it.SeekToFirst(); it.Valid(); it.Next() {
		writeField(h, it.Key().Data())
		writeField(h, it.Value().Data())
		n++
	}
	if err := it.Err(); err != nil {
		return FamilyDigest{}, err
	}
	return FamilyDigest{Keys: n, Sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// readOptions reads the newest state (with user-defined timestamps: at the
// largest timestamp).
func (a *App) readOptions() *grocksdb.ReadOptions {
	ro := grocksdb.NewDefaultReadOptions()
	ro.SetFillCache(false)
	if a.shape.Timestamps {
		ro.SetTimestamp(timestamp(math.MaxUint64))
	}
	return ro
}

func writeField(h hash.Hash, b []byte) {
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(b)))
	h.Write(l[:])
	h.Write(b)
}

// FirstDifferences compares a (got) with want key by key, family by family,
// and describes the first difference in each family that differs.
func FirstDifferences(a, want *App) ([]string, error) {
	ro := a.readOptions()
	defer ro.Destroy()
	var out []string
	names := map[string]bool{}
	for n := range a.cfs {
		names[n] = true
	}
	for n := range want.cfs {
		names[n] = true
	}
	for _, n := range sortedKeys(names) {
		ga, wa := a.cfs[n], want.cfs[n]
		switch {
		case ga == nil:
			out = append(out, fmt.Sprintf("column family %q is missing", n))
			continue
		case wa == nil:
			out = append(out, fmt.Sprintf("column family %q is there, the writer had no such family", n))
			continue
		}
		s, err := firstDifference(a.iterator(ro, ga), want.iterator(ro, wa))
		if err != nil {
			return nil, fmt.Errorf("foreign: compare family %q: %w", n, err)
		}
		if s != "" {
			out = append(out, fmt.Sprintf("column family %q: %s", n, s))
		}
	}
	return out, nil
}

func firstDifference(got, want *grocksdb.Iterator) (string, error) {
	defer got.Close()
	defer want.Close()
	got.SeekToFirst()
	want.SeekToFirst()
	for got.Valid() || want.Valid() {
		switch {
		case !want.Valid():
			return fmt.Sprintf("key %q is there, the writer had no such key", got.Key().Data()), nil
		case !got.Valid():
			return fmt.Sprintf("key %q is missing (the writer had value %s)", want.Key().Data(), short(want.Value().Data())), nil
		}
		gk, wk := got.Key().Data(), want.Key().Data()
		switch c := bytes.Compare(gk, wk); {
		case c < 0:
			return fmt.Sprintf("key %q is there, the writer had no such key", gk), nil
		case c > 0:
			return fmt.Sprintf("key %q is missing (the writer had value %s)", wk, short(want.Value().Data())), nil
		}
		if gv, wv := got.Value().Data(), want.Value().Data(); !bytes.Equal(gv, wv) {
			return fmt.Sprintf("key %q has value %s, the writer had %s", gk, short(gv), short(wv)), nil
		}
		got.Next()
		want.Next()
	}
	if err := got.Err(); err != nil {
		return "", err
	}
	return "", want.Err()
}

func short(b []byte) string {
	if len(b) > 24 {
		return fmt.Sprintf("%q... (%d bytes)", b[:24], len(b))
	}
	return fmt.Sprintf("%q", b)
}
