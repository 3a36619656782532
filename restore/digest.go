package restore

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"

	"github.com/rockstream/rockstream/rocks"
)

// DigestPrefix starts every digest that FormatDigest returns.
const DigestPrefix = "sha256:"

// FormatDigest turns a logical digest of a database into the one string
// that manifest.Base.Digest holds: "sha256:" and the hex SHA-256 of, for
// each column family in byte order of its name, the name's length (8
// bytes, big-endian), the name, the number of keys (8 bytes, big-endian)
// and the column family's 32-byte sum (rocks.CFDigest). The drill computes
// digests with it; no archiver records Base.Digest yet, but one that does
// must compute it with this function for the drill to compare.
func FormatDigest(d rocks.Digest) string {
	h := sha256.New()
	var n [8]byte
	for _, name := range slices.Sorted(maps.Keys(d)) {
		cf := d[name]
		binary.BigEndian.PutUint64(n[:], uint64(len(name)))
		h.Write(n[:])
		h.Write([]byte(name))
		binary.BigEndian.PutUint64(n[:], cf.Keys)
		h.Write(n[:])
		h.Write(cf.Sum[:])
	}
	return DigestPrefix + hex.EncodeToString(h.Sum(nil))
}

// digestDir opens the database in dir read-only and digests it.
func digestDir(dir string) (rocks.Digest, error) {
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Digest()
}
