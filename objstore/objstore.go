// Package objstore is the one interface through which rockstream keeps every
// byte: segments, bases, the manifest. Two implementations sit in packages of
// their own: s3store (AWS S3, MinIO and other S3-compatible servers over
// aws-sdk-go-v2) and filestore (a folder on a local disk, the embedded
// default). The location package turns a URL into one of them. faultstore
// wraps any Store to inject failures in tests, and storetest is the
// conformance suite that every implementation passes.
//
// # Semantics
//
// Keys are slash-separated UTF-8 strings; the manifest package is the only
// code that builds them. Objects are written whole: a reader never sees a
// partly written object. A Put may be conditional:
//
//   - IfNoneMatch: create only. Fails with ErrPreconditionFailed when the key
//     exists.
//   - IfMatch: replace only the version whose ETag is given. Fails with
//     ErrPreconditionFailed when the object is missing or has another ETag.
//
// Among any number of concurrent conditional puts on one key that all name
// the same precondition, at most one succeeds. The manifest's
// compare-and-swap, and so the fencing of a second writer, rests on this.
//
// A conditional put that fails with ErrPreconditionFailed after the client
// retried a timed-out attempt may in fact have been applied by that earlier
// attempt (the retry then sees its own write). Callers of compare-and-swap
// that must know read the object back and compare it with what they wrote.
//
// ETags are opaque strings; two different versions of a key never share one
// unless their bytes are equal.
package objstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"strings"
	"time"
	"unicode/utf8"
)

// Store is an object store: S3, MinIO or a local folder.
type Store interface {
	// Put writes the object key with the bytes of body. size is the length of
	// body, or -1 when it is not known in advance. It returns the new
	// object's info (at least Key, Size and ETag).
	Put(ctx context.Context, key string, body io.Reader, size int64, opts PutOptions) (ObjectInfo, error)

	// Get opens the object key, or the byte range of it that opts names.
	// The caller closes the reader. It fails with ErrNotFound when the key
	// does not exist, ErrNotModified when opts.IfNoneMatch equals the
	// current ETag, and ErrInvalidRange when opts.Offset is past the end.
	Get(ctx context.Context, key string, opts GetOptions) (io.ReadCloser, ObjectInfo, error)

	// Head returns the size and ETag of key, or ErrNotFound.
	Head(ctx context.Context, key string) (ObjectInfo, error)

	// List yields the objects whose key starts with prefix and sorts after
	// startAfter (byte-wise, as S3 orders keys), in key order. An error
	// ends the sequence.
	List(ctx context.Context, prefix, startAfter string) iter.Seq2[ObjectInfo, error]

	// Delete removes key. Deleting a key that does not exist is not an
	// error.
	Delete(ctx context.Context, key string) error

	// String describes the location for people: never a secret.
	String() string
}

// Encrypting is a Store that encrypts what it writes (objstore/cryptstore):
// KeyIDs are the ids of its keys, the one it writes with first; its keys
// are bound to one archive, whose id the manifest records (ArchiveID: the
// manifest's, or a new one for a location without a manifest; Bind: the
// one a manifest just read records).
type Encrypting interface {
	Store
	KeyIDs() []string
	ArchiveID(ctx context.Context) (string, error)
	Bind(archive string) error
}

// KeyIDs are the key ids of s when it encrypts, or nil.
func KeyIDs(s Store) []string {
	if e, ok := s.(Encrypting); ok {
		return e.KeyIDs()
	}
	return nil
}

// PutOptions makes a Put conditional. At most one of the two may be set.
type PutOptions struct {
	// IfNoneMatch makes the put create-only.
	IfNoneMatch bool
	// IfMatch makes the put replace only the version with this ETag.
	IfMatch string
}

// Validate reports a PutOptions that sets both conditions.
func (o PutOptions) Validate() error {
	if o.IfNoneMatch && o.IfMatch != "" {
		return fmt.Errorf("put options: IfNoneMatch and IfMatch are exclusive")
	}
	return nil
}

// GetOptions selects a byte range and makes a Get conditional.
type GetOptions struct {
	// Offset is the first byte to read.
	Offset int64
	// Length is the number of bytes to read; zero or less reads to the end.
	// A range that runs past the end is cut at the end.
	Length int64
	// IfNoneMatch, when set, makes Get fail with ErrNotModified if the
	// object's ETag still equals it: a cheap "has it changed?" poll.
	IfNoneMatch string
}

// ObjectInfo describes one object.
type ObjectInfo struct {
	Key     string
	Size    int64
	ETag    string
	ModTime time.Time
}

// Errors that every Store returns, wrapped in an *Error, for errors.Is.
var (
	ErrNotFound           = errors.New("object not found")
	ErrPreconditionFailed = errors.New("precondition failed")
	ErrNotModified        = errors.New("not modified")
	ErrInvalidRange       = errors.New("invalid range")
	ErrAccessDenied       = errors.New("access denied (check the credentials)")
	ErrNoBucket           = errors.New("bucket does not exist")
	ErrUnreachable        = errors.New("store unreachable")
	ErrInvalidKey         = errors.New("invalid key")
	// ErrRejected is a request that the store refuses for good (an HTTP
	// 4xx other than 408, 409 and 429, or 501): trying again cannot help.
	ErrRejected = errors.New("the store rejected the request")
)

// Error is a failed store operation: what was done, to which key, and why.
type Error struct {
	Op       string // "put", "get", "head", "list", "delete", "open"
	Location string // the store, as its String method gives it
	Key      string
	Err      error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("%s %s: %v", e.Op, e.Location, e.Err)
	}
	return fmt.Sprintf("%s %s: %s: %v", e.Op, e.Location, e.Key, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// IsNotFound reports whether err means that the object does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// IsPreconditionFailed reports whether err is a failed conditional put.
func IsPreconditionFailed(err error) bool { return errors.Is(err, ErrPreconditionFailed) }

// MaxKeyLen is the longest key a Store accepts (S3's limit).
const MaxKeyLen = 1024

// ValidateKey reports a key that no Store accepts: empty, longer than
// MaxKeyLen, not UTF-8, with a NUL or a backslash, starting or ending with a
// slash, or with an empty, "." or ".." path element. Every Store checks
// keys with it, so a key that escapes a folder is refused everywhere.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: key of %d bytes is longer than %d", ErrInvalidKey, len(key), MaxKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: %q is not UTF-8", ErrInvalidKey, key)
	case strings.ContainsAny(key, "\x00\\"):
		return fmt.Errorf("%w: %q holds a NUL or a backslash", ErrInvalidKey, key)
	}
	for _, elem := range strings.Split(key, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return fmt.Errorf("%w: %q has an empty, \".\" or \"..\" path element", ErrInvalidKey, key)
		}
	}
	return nil
}

// ValidatePrefix is ValidateKey for a list prefix, which may be empty or end
// with a slash.
func ValidatePrefix(prefix string) error {
	p := strings.TrimSuffix(prefix, "/")
	if p == "" && prefix == "" {
		return nil
	}
	if p == "" {
		return fmt.Errorf("%w: prefix %q", ErrInvalidKey, prefix)
	}
	return ValidateKey(p)
}
