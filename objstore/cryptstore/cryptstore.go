// Package cryptstore is an objstore.Store that encrypts what it writes
// and decrypts and authenticates what it reads (package crypt), over any
// other Store: every object of an encrypted archive but the manifest and
// the store probe's objects, which stay plaintext (docs/ENCRYPTION.md says
// why and what that leaves visible). Content-addressed SST files are
// stored under keyed names (crypt.Key.Name of their SHA-256), so that dedupe
// still works within an archive and their names tell nothing of their
// content. Sizes in ObjectInfo are the plaintext's, so callers that check
// a size against a file list need not know.
//
// A read of an object that is not encrypted, encrypted under a key the
// keyring lacks, or changed in any way fails with crypt's errors (wrapped
// in an *objstore.Error naming the object); nothing unauthenticated is
// ever returned.
package cryptstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"slices"
	"strings"
	"sync"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/objstore"
)

// The objects that stay plaintext, and the content-addressed prefix
// (manifest's ManifestKey, probe prefix and SSTPrefix; a test checks them
// against the manifest package).
const (
	manifestKey = "manifest.json"
	probePrefix = "probe/"
	sstPrefix   = "sst/"
	sstExt      = ".sst"
)

// Store encrypts the objects of an inner Store.
type Store struct {
	inner objstore.Store
	ring  *crypt.Keyring // as the key file gives it
	// bound is ring bound to the archive (crypt.Keyring.Bind) whose id is
	// archive: set by Bind, or at the first use from the manifest, or
	// drawn anew when there is no manifest yet (a new archive, which its
	// creator marks with ArchiveID).
	mu      sync.Mutex
	archive string
	bound   *crypt.Keyring
}

// New returns a Store that keeps its objects in inner, encrypted with the
// keyring's current key and read with whichever key an object names.
func New(inner objstore.Store, ring *crypt.Keyring) *Store {
	return &Store{inner: inner, ring: ring}
}

// ArchiveID is the id of the archive the keys are bound to: the
// manifest's (encryption.archive_id), or, when the location has no
// manifest yet, one drawn at random, which the archiver that creates the
// archive records in it (objstore.Encrypting).
func (s *Store) ArchiveID(ctx context.Context) (string, error) {
	if _, err := s.keys(ctx); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.archive, nil
}

// Bind binds the keys to the archive id that a manifest just read
// records: an archiver that lost the race to create an archive takes the
// winner's (objstore.Encrypting).
func (s *Store) Bind(archive string) error {
	b, err := s.ring.Bind(archive)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.archive, s.bound = archive, b
	return nil
}

// keys is the keyring bound to the archive, read from the manifest at the
// first use.
func (s *Store) keys(ctx context.Context) (*crypt.Keyring, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bound != nil {
		return s.bound, nil
	}
	archive, err := s.readArchiveID(ctx)
	if err != nil {
		return nil, err
	}
	if s.bound, err = s.ring.Bind(archive); err != nil {
		return nil, err
	}
	s.archive = archive
	return s.bound, nil
}

// maxManifest bounds the manifest read for its archive id
// (manifest.MaxManifestSize).
const maxManifest = 64 << 20

// readArchiveID reads the archive id of the manifest, or draws a new one
// when there is no manifest.
func (s *Store) readArchiveID(ctx context.Context) (string, error) {
	id, _, err := s.readManifest(ctx)
	if objstore.IsNotFound(err) {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		return hex.EncodeToString(b[:]), nil
	}
	return id, err
}

// readManifest reads the archive id and the key ids of the manifest.
func (s *Store) readManifest(ctx context.Context) (string, []string, error) {
	rc, _, err := s.inner.Get(ctx, manifestKey, objstore.GetOptions{})
	if objstore.IsNotFound(err) {
		return "", nil, err
	}
	if err != nil {
		return "", nil, fmt.Errorf("read the archive id of the encrypted archive: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err != nil {
		return "", nil, fmt.Errorf("read the archive id of the encrypted archive: %w", err)
	}
	var head struct {
		Encryption *struct {
			ArchiveID string   `json:"archive_id"`
			KeyIDs    []string `json:"key_ids"`
		} `json:"encryption"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", nil, s.fail("get", manifestKey, fmt.Errorf("%w: %v", ErrNoArchiveID, err))
	}
	if head.Encryption == nil || head.Encryption.ArchiveID == "" {
		return "", nil, s.fail("get", manifestKey, fmt.Errorf("%w: the manifest says the archive is not encrypted", ErrNoArchiveID))
	}
	return head.Encryption.ArchiveID, head.Encryption.KeyIDs, nil
}

// opened classifies an error of opening an encrypted object: a key that
// the keyring lacks is a key to give (crypt.MissingKeyError) only when
// the archive's manifest lists it; a key id that neither the manifest (read
// again: a rotation may have added one since) nor the keyring knows is a
// header that was changed (crypt.ErrTampered).
func (s *Store) opened(ctx context.Context, err error) error {
	var mk *crypt.MissingKeyError
	if !errors.As(err, &mk) {
		return err
	}
	_, ids, rerr := s.readManifest(ctx)
	if rerr != nil || slices.Contains(ids, mk.ID.String()) {
		return err
	}
	return fmt.Errorf("%s: its header names key %s, which the archive never used (it lists %v): %w",
		mk.Object, mk.ID, ids, crypt.ErrTampered)
}

// ErrNoArchiveID is a manifest without the archive id of an encrypted
// archive: the store cannot read or write that archive's objects.
var ErrNoArchiveID = errors.New("no encryption archive id")

// Inner is the store the objects are kept in.
func (s *Store) Inner() objstore.Store { return s.inner }

// KeyIDs are the ids of the keyring's keys, the current one first
// (objstore.Encrypting).
func (s *Store) KeyIDs() []string { return s.ring.IDs() }

// HasCurrent says whether key is stored encrypted with the keyring's
// current key: for an SST file, whether its keyed name under that key
// exists (after a rotation it may be stored under an older key's name
// only); any other object's name does not depend on the key, and is
// reported as there. A base that reuses SST files asks it, so that what
// it names needs only the current key.
func (s *Store) HasCurrent(ctx context.Context, key string) (bool, error) {
	if _, ok := sstSum(key); !ok || Plaintext(key) {
		return true, nil
	}
	names, err := s.names(ctx, key)
	if err != nil {
		return false, err
	}
	_, err = s.inner.Head(ctx, names[0])
	if objstore.IsNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Keyring is the keyring it uses.
func (s *Store) Keyring() *crypt.Keyring { return s.ring }

// Plaintext says whether key is stored as it is: the manifest and the
// store probe's objects.
func Plaintext(key string) bool {
	return key == manifestKey || strings.HasPrefix(key, probePrefix)
}

func (s *Store) String() string { return s.inner.String() + " (encrypted)" }

// names are the names under which key may be stored: itself, or for an
// SST file its keyed name under each key of the ring, the current key's
// first.
func (s *Store) names(ctx context.Context, key string) ([]string, error) {
	sum, ok := sstSum(key)
	if !ok {
		return []string{key}, nil
	}
	ring, err := s.keys(ctx)
	if err != nil {
		return nil, s.fail("name", key, err)
	}
	out := make([]string, 0, len(ring.Keys()))
	for _, k := range ring.Keys() {
		out = append(out, sstPrefix+k.Name(sum)+sstExt)
	}
	return out, nil
}

// sstSum is the SHA-256 that an SST key sst/<64 hex>.sst names.
func sstSum(key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, sstPrefix)
	if !ok {
		return "", false
	}
	sum, ok := strings.CutSuffix(rest, sstExt)
	return sum, ok && isSum(sum)
}

// isSum says whether s is 64 lower-case hex digits, as the manifest
// package's SST keys are.
func isSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// notFound names the key asked for in a not-found error about one of its
// stored names (an SST file's keyed name).
func (s *Store) notFound(op, key string, err error) error {
	if _, ok := sstSum(key); ok {
		return s.fail(op, key, err)
	}
	return err
}

// fail is a failed operation on key.
func (s *Store) fail(op, key string, err error) error {
	return &objstore.Error{Op: op, Location: s.String(), Key: key, Err: err}
}

// failNamed is a failed operation whose error comes from crypt's reading
// of the object (Open, OpenRange, ParseHeader and their readers), which
// names the object itself.
func (s *Store) failNamed(op string, err error) error {
	return &objstore.Error{Op: op, Location: s.String(), Err: err}
}

// Put encrypts body with the current key and writes it.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if Plaintext(key) {
		return s.inner.Put(ctx, key, body, size, opts)
	}
	if err := opts.Validate(); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	ring, err := s.keys(ctx)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	names, err := s.names(ctx, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if opts.IfNoneMatch {
		// An SST file kept under an older key's name exists too: Head
		// and Get find it.
		for _, name := range names[1:] {
			_, err := s.inner.Head(ctx, name)
			if err == nil {
				return objstore.ObjectInfo{}, s.fail("put", key, fmt.Errorf("%w: it exists (encrypted with an older key)", objstore.ErrPreconditionFailed))
			}
			if !objstore.IsNotFound(err) {
				return objstore.ObjectInfo{}, err
			}
		}
	}
	k := ring.Current()
	n := int64(-1)
	if size >= 0 {
		n = crypt.SealedSize(size)
	}
	var sealed io.Reader
	if at, ok := readerAt(body); ok && size >= 0 {
		// In memory or in a file already (segments, base files): sealed
		// block by block as the store reads it, and again the same after
		// a seek (an S3 client reads a body to sign it, then to send it),
		// with two blocks of memory.
		sr, err := k.SealAt(key, at, size)
		if err != nil {
			return objstore.ObjectInfo{}, s.fail("put", key, err)
		}
		sealed = sr
	} else {
		var err error
		if sealed, err = k.Seal(key, body); err != nil {
			return objstore.ObjectInfo{}, s.fail("put", key, err)
		}
	}
	info, err := s.inner.Put(ctx, names[0], sealed, n, opts)
	if err != nil {
		return info, err
	}
	return s.plainInfo(key, info)
}

// plainInfo is info of a stored object with key's name and its
// plaintext's size.
func (s *Store) plainInfo(key string, info objstore.ObjectInfo) (objstore.ObjectInfo, error) {
	info.Key = key
	n, err := crypt.PlainSize(info.Size)
	if err != nil {
		return info, s.fail("read", key, err)
	}
	info.Size = n
	return info, nil
}

// Get reads and decrypts key, or a range of its plaintext.
func (s *Store) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if Plaintext(key) {
		return s.inner.Get(ctx, key, opts)
	}
	ring, err := s.keys(ctx)
	if err != nil {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	names, err := s.names(ctx, key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	var last error
	for _, name := range names {
		rc, info, err := s.get(ctx, ring, key, name, opts)
		if objstore.IsNotFound(err) {
			last = err
			continue
		}
		return rc, info, err
	}
	return nil, objstore.ObjectInfo{}, s.notFound("get", key, last)
}

// maxRange is the longest range whose sealed extent is computed (a
// longer one is read to the end, which is no longer, and is not let
// overflow).
const maxRange = 1 << 50

// rangeAttempts bounds the reads of a range whose object is replaced
// between the get of its header and the get of its blocks.
const rangeAttempts = 3

// errChanged is an object replaced between two gets of one range.
var errChanged = errors.New("the object changed while its range was read")

func (s *Store) get(ctx context.Context, ring *crypt.Keyring, key, name string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if opts.Offset < 0 {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, fmt.Errorf("%w: offset %d", objstore.ErrInvalidRange, opts.Offset))
	}
	if opts.Offset == 0 && opts.Length <= 0 {
		rc, info, err := s.inner.Get(ctx, name, objstore.GetOptions{IfNoneMatch: opts.IfNoneMatch})
		if err != nil {
			return nil, info, err
		}
		// The header first: an object that is not encrypted says so,
		// whatever its size.
		plain, err := ring.Open(key, &exactly{r: rc, left: info.Size})
		if err != nil {
			rc.Close()
			return nil, objstore.ObjectInfo{}, s.failNamed("get", s.opened(ctx, err))
		}
		if info, err = s.plainInfo(key, info); err != nil {
			rc.Close()
			return nil, info, err
		}
		return &readCloser{s: s, r: plain, c: rc}, info, nil
	}
	for attempt := 1; ; attempt++ {
		rc, info, err := s.getRange(ctx, ring, key, name, opts)
		if errors.Is(err, errChanged) && attempt < rangeAttempts && ctx.Err() == nil {
			continue
		}
		if errors.Is(err, errChanged) {
			err = s.fail("get", key, fmt.Errorf("%w (%d times)", err, attempt))
		}
		return rc, info, err
	}
}

// getRange reads a range: the header, with the blocks that hold the range
// when they are the first ones; else the header, then the blocks, which
// must be of the same version of the object (errChanged).
func (s *Store) getRange(ctx context.Context, ring *crypt.Keyring, key, name string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	first := opts.Offset / crypt.BlockSize
	req := objstore.GetOptions{Length: crypt.HeaderSize, IfNoneMatch: opts.IfNoneMatch}
	if first == 0 {
		req.Length = 0 // to the end
		if opts.Length > 0 && opts.Length <= maxRange {
			last := (opts.Offset + opts.Length - 1) / crypt.BlockSize
			req.Length = crypt.HeaderSize + (last+1)*(crypt.BlockSize+crypt.TagSize)
		}
	}
	rc, info, err := s.inner.Get(ctx, name, req)
	if errors.Is(err, objstore.ErrInvalidRange) {
		// A range from offset 0 of an empty object, which S3 refuses:
		// not an encrypted object, which is never empty.
		return nil, objstore.ObjectInfo{}, s.fail("get", key, fmt.Errorf("an empty object: %w", crypt.ErrNotEncrypted))
	}
	if err != nil {
		return nil, info, err
	}
	hdr := make([]byte, crypt.HeaderSize)
	if n, err := io.ReadFull(rc, hdr); err != nil {
		rc.Close()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			err = crypt.ErrNotEncrypted
			if crypt.IsEncrypted(hdr[:n]) {
				err = fmt.Errorf("its header is cut: %w", crypt.ErrTampered)
			}
		}
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	if _, err := crypt.ParseHeader(key, hdr); err != nil {
		rc.Close()
		return nil, objstore.ObjectInfo{}, s.failNamed("get", err)
	}
	if info, err = s.plainInfo(key, info); err != nil {
		rc.Close()
		return nil, info, err
	}
	if opts.Offset > 0 && opts.Offset >= info.Size {
		rc.Close()
		return nil, info, s.fail("get", key, fmt.Errorf("%w: offset %d of an object of %d bytes", objstore.ErrInvalidRange, opts.Offset, info.Size))
	}
	off, n := crypt.RangeOf(opts.Offset, opts.Length, info.Size)
	if first > 0 {
		rc.Close()
		var got objstore.ObjectInfo
		rc, got, err = s.inner.Get(ctx, name, objstore.GetOptions{Offset: off, Length: n})
		switch {
		case errors.Is(err, objstore.ErrInvalidRange):
			return nil, info, errChanged // replaced by a shorter one
		case err != nil:
			return nil, info, err
		case got.ETag != info.ETag:
			rc.Close()
			return nil, info, errChanged
		}
	}
	plain, err := ring.OpenRange(key, hdr, info.Size, opts.Offset, opts.Length, &exactly{r: rc, left: n})
	if err != nil {
		rc.Close()
		return nil, info, s.failNamed("get", s.opened(ctx, err))
	}
	return &readCloser{s: s, r: plain, c: rc}, info, nil
}

// readCloser gives decrypted bytes; a read error names the object.
type readCloser struct {
	s *Store
	r io.Reader
	c io.Closer
}

func (r *readCloser) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		var oe *objstore.Error
		if !errors.As(err, &oe) {
			err = r.s.failNamed("read", err)
		}
	}
	return n, err
}

func (r *readCloser) Close() error { return r.c.Close() }

// Head returns key's ETag and its plaintext's size.
func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if Plaintext(key) {
		return s.inner.Head(ctx, key)
	}
	names, err := s.names(ctx, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	var last error
	for _, name := range names {
		info, err := s.inner.Head(ctx, name)
		if objstore.IsNotFound(err) {
			last = err
			continue
		}
		if err != nil {
			return info, err
		}
		return s.plainInfo(key, info)
	}
	return objstore.ObjectInfo{}, s.notFound("head", key, last)
}

// List lists the stored objects with their plaintext sizes. SST files
// are listed under their keyed names, which only Get, Head and Delete of
// their sst/<SHA-256>.sst keys find.
func (s *Store) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		for info, err := range s.inner.List(ctx, prefix, startAfter) {
			if err == nil && !Plaintext(info.Key) {
				info, err = s.plainInfo(info.Key, info)
			}
			if !yield(info, err) || err != nil {
				return
			}
		}
	}
}

// Delete removes key (an SST file under the name of each key of the ring).
func (s *Store) Delete(ctx context.Context, key string) error {
	if Plaintext(key) {
		return s.inner.Delete(ctx, key)
	}
	names, err := s.names(ctx, key)
	if err != nil {
		return err
	}
	for _, name := range names {
		if err := s.inner.Delete(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

// exactly reads the left bytes that a get announced, and no more: a body
// that ends before them is a transfer that broke off (errShortBody, which
// readers try again), not an object cut short, which the framing reports
// as tampered.
type exactly struct {
	r    io.Reader
	left int64
}

// errShortBody is a body that ended before the bytes its get announced.
var errShortBody = errors.New("the transfer ended before the object's end")

func (e *exactly) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		err = fmt.Errorf("%w (%d bytes short)", errShortBody, e.left)
	}
	if err == io.EOF {
		err = nil // the next read says io.EOF
	}
	return n, err
}

// readerAt is body as an io.ReaderAt from its start, when it is one (a
// bytes.Reader, a file) positioned at its start.
func readerAt(body io.Reader) (io.ReaderAt, bool) {
	at, ok := body.(io.ReaderAt)
	sk, ok2 := body.(io.Seeker)
	if !ok || !ok2 {
		return nil, false
	}
	pos, err := sk.Seek(0, io.SeekCurrent)
	return at, err == nil && pos == 0
}
