package manifest

import (
	"crypto/rand"
	"encoding/hex"
)

// probePrefix holds the short-lived objects of `rockstream check`.
const probePrefix = "probe/"

// NewProbeKey returns a fresh key for `rockstream check` to write, read and
// delete: probe/<32 hex>. No archive object lives under probe/.
func NewProbeKey() string {
	var b [16]byte
	rand.Read(b[:])
	return probePrefix + hex.EncodeToString(b[:])
}
