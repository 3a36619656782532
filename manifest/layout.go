package manifest

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// The fixed parts of the layout. Part of the archive format.
const (
	// ManifestKey is the key of the manifest, the one mutable object.
	ManifestKey = "manifest.json"
	// SegmentsPrefix is the prefix of every segment key, of every timeline.
	SegmentsPrefix = "segments/"
	// BasesPrefix is the prefix of every base's objects.
	BasesPrefix = "bases/"
	// SSTPrefix is the prefix of the shared, content-addressed SST files.
	SSTPrefix = "sst/"
	// FileListName is the last element of a base's file list key.
	FileListName = "files.json"
	// PrunePrefix is the prefix of the pending records of `rockstream
	// prune`: objects it will delete once their grace period is over.
	PrunePrefix = "prune/"

	segmentExt = ".seg"
	jsonExt    = ".json"
	sstExt     = ".sst"
	maxNameLen = 255
)

// SegmentKey is the key of the segment of timeline tl whose first batch
// starts at sequence first: segments/<tl 8 hex>/<first 16 hex>.seg.
func SegmentKey(tl uint32, first uint64) string {
	return fmt.Sprintf("%s%08x/%016x%s", SegmentsPrefix, tl, first, segmentExt)
}

// SegmentPrefix is the prefix of every segment key of timeline tl, to list
// one timeline in sequence order.
func SegmentPrefix(tl uint32) string {
	return fmt.Sprintf("%s%08x/", SegmentsPrefix, tl)
}

// ParseSegmentKey is the inverse of SegmentKey. It accepts only keys that
// SegmentKey gives for a timeline above zero: lower-case hex, fixed width,
// nothing before or after.
func ParseSegmentKey(key string) (tl uint32, first uint64, err error) {
	rest, ok := strings.CutPrefix(key, SegmentsPrefix)
	const n = 8 + 1 + 16
	if !ok || len(rest) != n+len(segmentExt) || rest[8] != '/' || rest[n:] != segmentExt {
		return 0, 0, &ValidationError{Field: "segment key", Reason: fmt.Sprintf("%s is not segments/<8 hex>/<16 hex>.seg", short(key))}
	}
	t, okT := parseHex(rest[:8])
	f, okF := parseHex(rest[9:n])
	if !okT || !okF || t == 0 {
		return 0, 0, &ValidationError{Field: "segment key", Reason: fmt.Sprintf("%s is not segments/<8 hex>/<16 hex>.seg with a timeline above 0", short(key))}
	}
	return uint32(t), f, nil
}

// BasePrefix is the prefix of the objects of the base of timeline tl at
// sequence seq: bases/<tl 8 hex>/<seq 16 hex>/.
func BasePrefix(tl uint32, seq uint64) string {
	return fmt.Sprintf("%s%08x/%016x/", BasesPrefix, tl, seq)
}

// FileListKey is the key of the file list of the base of timeline tl at
// sequence seq.
func FileListKey(tl uint32, seq uint64) string {
	return BasePrefix(tl, seq) + FileListName
}

// BaseFileKey is the key under which a base keeps its file name, a file of
// the RocksDB directory that is not an SST file (CURRENT, MANIFEST-*,
// OPTIONS-*, IDENTITY, *.log). The name files.json is refused: it is the
// file list's own.
func BaseFileKey(tl uint32, seq uint64, name string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if name == FileListName {
		return "", &ValidationError{Field: "file name", Reason: fmt.Sprintf("%s is the file list's own name", short(name))}
	}
	return BasePrefix(tl, seq) + name, nil
}

// ParseBaseFileKey is the inverse of BaseFileKey and FileListKey: the
// timeline, sequence and file name of a key bases/<tl 8 hex>/<seq 16
// hex>/<name>. It accepts only the layout's form (lower-case hex, fixed
// width, a timeline above 0, a name that ValidateName accepts, files.json
// included).
func ParseBaseFileKey(key string) (tl uint32, seq uint64, name string, err error) {
	bad := func() (uint32, uint64, string, error) {
		return 0, 0, "", &ValidationError{Field: "base key", Reason: fmt.Sprintf("%s is not bases/<8 hex>/<16 hex>/<name>", short(key))}
	}
	rest, ok := strings.CutPrefix(key, BasesPrefix)
	const n = 8 + 1 + 16 + 1
	if !ok || len(rest) <= n || rest[8] != '/' || rest[n-1] != '/' {
		return bad()
	}
	t, okT := parseHex(rest[:8])
	s, okS := parseHex(rest[9 : n-1])
	name = rest[n:]
	if !okT || !okS || t == 0 || s > MaxSequence || nameProblem(name) != "" {
		return bad()
	}
	return uint32(t), s, name, nil
}

// SSTKey is the shared key of an SST file whose SHA-256 is sum (64
// lower-case hex digits): sst/<sum>.sst.
func SSTKey(sum string) (string, error) {
	if !isSHA256Hex(sum) {
		return "", &ValidationError{Field: "sha256", Reason: fmt.Sprintf("%s is not 64 lower-case hex digits", short(sum))}
	}
	return SSTPrefix + sum + sstExt, nil
}

// ParseSSTKey returns the SHA-256 (hex) that an SST key names, for a
// collector that lists sst/ and looks for files that no base uses.
func ParseSSTKey(key string) (sum string, err error) {
	rest, ok := strings.CutPrefix(key, SSTPrefix)
	sum, okExt := strings.CutSuffix(rest, sstExt)
	if !ok || !okExt || !isSHA256Hex(sum) {
		return "", &ValidationError{Field: "sst key", Reason: fmt.Sprintf("%s is not sst/<64 hex>.sst", short(key))}
	}
	return sum, nil
}

// PruneRecordKey is the key of a pending record of `rockstream prune`
// created at time created, made unique by rnd: prune/<unix nanoseconds 16
// hex>-<rnd 8 hex>.json. A listing of prune/ is in order of creation.
func PruneRecordKey(created time.Time, rnd uint32) string {
	return fmt.Sprintf("%s%016x-%08x%s", PrunePrefix, uint64(created.UnixNano()), rnd, jsonExt)
}

// ParsePruneRecordKey is the inverse of PruneRecordKey: the creation time
// that a pending record's key holds.
func ParsePruneRecordKey(key string) (time.Time, error) {
	rest, ok := strings.CutPrefix(key, PrunePrefix)
	const n = 16 + 1 + 8
	if !ok || len(rest) != n+len(jsonExt) || rest[16] != '-' || rest[n:] != jsonExt {
		return time.Time{}, &ValidationError{Field: "prune record key", Reason: fmt.Sprintf("%s is not prune/<16 hex>-<8 hex>.json", short(key))}
	}
	nanos, okN := parseHex(rest[:16])
	_, okR := parseHex(rest[17:n])
	if !okN || !okR || nanos > math.MaxInt64 {
		return time.Time{}, &ValidationError{Field: "prune record key", Reason: fmt.Sprintf("%s is not prune/<16 hex>-<8 hex>.json", short(key))}
	}
	return time.Unix(0, int64(nanos)).UTC(), nil
}

// IsSST reports whether a RocksDB file name is an SST file, which a base
// stores under its content's key rather than under its own prefix.
func IsSST(name string) bool { return strings.HasSuffix(name, sstExt) }

// FileKey is the key at which a base of timeline tl at sequence seq stores
// the file name whose SHA-256 is sum: SSTKey(sum) for an SST file,
// BaseFileKey(tl, seq, name) for any other.
func FileKey(tl uint32, seq uint64, name, sum string) (string, error) {
	if err := ValidateName(name); err != nil {
		return "", err
	}
	if IsSST(name) {
		return SSTKey(sum)
	}
	return BaseFileKey(tl, seq, name)
}

// ValidateName checks a file name inside a RocksDB directory: one path
// element of 1 to 255 bytes of UTF-8, without "/", "\", ":", "..",
// control characters or NUL, and not ".".
func ValidateName(name string) error {
	if p := nameProblem(name); p != "" {
		return &ValidationError{Field: "file name", Reason: p}
	}
	return nil
}

// nameProblem says what is wrong with a file name, or "".
func nameProblem(name string) string {
	switch {
	case name == "":
		return "empty"
	case len(name) > maxNameLen:
		return fmt.Sprintf("%d bytes, more than %d", len(name), maxNameLen)
	case name == ".":
		return `"." is not a file`
	case strings.Contains(name, ".."):
		return fmt.Sprintf("%s contains \"..\"", short(name))
	case strings.ContainsAny(name, `/\:`):
		return fmt.Sprintf("%s contains a path separator (/, \\ or :)", short(name))
	}
	return textProblem(name)
}

// textProblem says why s is not printable UTF-8 text, or "".
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%s is not UTF-8", short(s))
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return fmt.Sprintf("%s contains a control character or NUL", short(s))
		}
	}
	return ""
}

// keyProblem says why a key read from the archive is unsafe to use, or "".
// A key that passes still has to equal the one the layout gives.
func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case strings.HasPrefix(key, "/"):
		return fmt.Sprintf("%s is an absolute path", short(key))
	case strings.Contains(key, ".."):
		return fmt.Sprintf("%s contains \"..\"", short(key))
	case strings.Contains(key, `\`):
		return fmt.Sprintf("%s contains a backslash", short(key))
	}
	return textProblem(key)
}

func isSHA256Hex(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// parseHex parses up to 16 lower-case hex digits.
func parseHex(s string) (uint64, bool) {
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isLowerHex(c) {
			return 0, false
		}
		if c <= '9' {
			v = v<<4 | uint64(c-'0')
		} else {
			v = v<<4 | uint64(c-'a'+10)
		}
	}
	return v, len(s) > 0
}

// short quotes s for an error message, cut to 80 bytes.
func short(s string) string {
	const n = 80
	if len(s) <= n {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:n])
}
