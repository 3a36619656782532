// Package filestore is an objstore.Store on a local folder: the embedded
// default location (file:///PATH) that needs no server.
//
// An object is a plain file at PATH/KEY, so a person can look at an archive
// with ls. Puts are atomic: the bytes go to a temporary file under
// PATH/.objstore/tmp, which is synced, renamed into place, and its folder
// synced. Every put and delete holds an exclusive flock(2) on one of 256 lock
// files under PATH/.objstore/locks (chosen by a hash of the key), so that
// conditional puts stay correct when several goroutines or processes race
// on one key: exactly one create-only put wins.
//
// The ETag of an object is the hex MD5 of its bytes, as S3 gives for a
// single-part upload, hashed as the put writes them. The put records it in
// an extended attribute (user.rockstream.etag) with the file's size and
// modification time; when the attribute is missing or stale (a file copied
// in by hand, a file system without user attributes) the ETag is computed
// by reading the file.
//
// Limits: a key cannot also be a folder of other keys ("a" and "a/b"), a
// path element cannot be longer than 255 bytes, and keys whose first element
// is ".objstore" are reserved.
package filestore

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"iter"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rockstream/rockstream/objstore"
)

const (
	internalDir = ".objstore"
	lockStripes = 256
	etagXattr   = "user.rockstream.etag"
	maxNameLen  = 255 // NAME_MAX of Linux file systems
)

// testHookAfterCheck, set by tests, runs between the check of a put's
// condition and the rename: it widens the window that the lock must guard.
var testHookAfterCheck func()

// Store is a folder that holds objects as files.
type Store struct {
	root string
}

var _ objstore.Store = (*Store)(nil)

// New opens the folder root as a store, creating it if needed. root must be
// an absolute path.
func New(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("file store %q: the path must be absolute", root)
	}
	root = filepath.Clean(root)
	for _, d := range []string{root, filepath.Join(root, internalDir, "tmp"), filepath.Join(root, internalDir, "locks")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("file store %s: %w", root, err)
		}
	}
	removeStaleTemp(filepath.Join(root, internalDir, "tmp"))
	return &Store{root: root}, nil
}

// staleTemp is the age after which a temporary file is taken as the
// leftover of a put that crashed: no put takes that long to write.
const staleTemp = time.Hour

// removeStaleTemp removes the temporary files of crashed puts.
func removeStaleTemp(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		info, err := e.Info()
		if err == nil && strings.HasPrefix(e.Name(), "put-") && time.Since(info.ModTime()) > staleTemp {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// Root is the folder of the store.
func (s *Store) Root() string { return s.root }

// String is the store's URL.
func (s *Store) String() string {
	// An @ in the path is written %40, as location.Parse takes it.
	return strings.ReplaceAll((&url.URL{Scheme: "file", Path: s.root}).String(), "@", "%40")
}

func (s *Store) fail(op, key string, err error) error {
	return &objstore.Error{Op: op, Location: s.String(), Key: key, Err: err}
}

func (s *Store) checkKey(key string) error {
	if err := objstore.ValidateKey(key); err != nil {
		return err
	}
	for _, elem := range strings.Split(key, "/") {
		if len(elem) > maxNameLen {
			return fmt.Errorf("%w: a file store cannot hold a path element of %d bytes (at most %d)", objstore.ErrInvalidKey, len(elem), maxNameLen)
		}
	}
	if key == internalDir || strings.HasPrefix(key, internalDir+"/") {
		return fmt.Errorf("%w: %q is reserved by the file store", objstore.ErrInvalidKey, key)
	}
	return nil
}

func (s *Store) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

// Put writes key atomically, honouring opts' conditions.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := s.checkKey(key); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	if err := opts.Validate(); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	tmp, etag, n, err := s.writeTemp(ctx, body, size)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	defer os.Remove(tmp) // a no-op once renamed
	unlock, err := s.lock(key)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	defer unlock()
	if err := s.checkCondition(key, opts); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	if testHookAfterCheck != nil {
		testHookAfterCheck()
	}
	if err := s.install(tmp, key); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	fi, err := os.Stat(s.path(key))
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	return objstore.ObjectInfo{Key: key, Size: n, ETag: etag, ModTime: fi.ModTime()}, nil
}

// writeTemp copies body into a synced temporary file and returns its path,
// its ETag and its size.
func (s *Store) writeTemp(ctx context.Context, body io.Reader, size int64) (string, string, int64, error) {
	f, err := os.CreateTemp(filepath.Join(s.root, internalDir, "tmp"), "put-*")
	if err != nil {
		return "", "", 0, err
	}
	name := f.Name()
	fail := func(err error) (string, string, int64, error) {
		f.Close()
		os.Remove(name)
		return "", "", 0, err
	}
	h := md5.New()
	n, err := copyBody(ctx, io.MultiWriter(f, h), body)
	if err != nil {
		return fail(fmt.Errorf("write: %w", err))
	}
	if size >= 0 && n != size {
		return fail(fmt.Errorf("body has %d bytes, %d were announced", n, size))
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	etag := hex.EncodeToString(h.Sum(nil))
	if err := setETag(f, etag); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(name)
		return "", "", 0, err
	}
	return name, etag, n, nil
}

// checkCondition holds the key's lock and tests opts against what is there.
func (s *Store) checkCondition(key string, opts objstore.PutOptions) error {
	if !opts.IfNoneMatch && opts.IfMatch == "" {
		return nil
	}
	cur, err := s.stat(key)
	switch {
	case objstore.IsNotFound(err) && opts.IfMatch != "":
		return fmt.Errorf("%w: if-match %s but the object does not exist", objstore.ErrPreconditionFailed, opts.IfMatch)
	case objstore.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case opts.IfNoneMatch:
		return fmt.Errorf("%w: the object exists and the put is create-only", objstore.ErrPreconditionFailed)
	case cur.ETag != opts.IfMatch:
		return fmt.Errorf("%w: if-match %s but the object is at %s", objstore.ErrPreconditionFailed, opts.IfMatch, cur.ETag)
	}
	return nil
}

// install renames tmp to key's path and syncs the folders it touched.
func (s *Store) install(tmp, key string) error {
	dst := s.path(key)
	for attempt := 0; ; attempt++ {
		if err := s.mkdirAll(filepath.Dir(dst)); err != nil {
			return err
		}
		err := os.Rename(tmp, dst)
		if err == nil {
			break
		}
		// A concurrent delete may have removed the folder in between.
		if !errors.Is(err, fs.ErrNotExist) || attempt >= 3 {
			if fi, serr := os.Stat(dst); serr == nil && fi.IsDir() {
				return fmt.Errorf("%w: the key is a folder of other keys", objstore.ErrInvalidKey)
			}
			return err
		}
	}
	return syncDir(filepath.Dir(dst))
}

// mkdirAll creates dir and its missing parents, syncing each parent whose
// entries changed, so that a new folder survives a crash.
func (s *Store) mkdirAll(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%w: %s is an object, not a folder", objstore.ErrInvalidKey, dir)
		}
		return nil
	}
	if dir == s.root {
		return os.MkdirAll(dir, 0o755)
	}
	parent := filepath.Dir(dir)
	if err := s.mkdirAll(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}

// lock takes the exclusive flock that guards key and returns its release.
func (s *Store) lock(key string) (func(), error) {
	h := fnv.New32a()
	h.Write([]byte(key))
	name := filepath.Join(s.root, internalDir, "locks", fmt.Sprintf("%02x", h.Sum32()%lockStripes))
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", name, err)
	}
	return func() {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		f.Close()
	}, nil
}

// copyBody copies body to w, the file and its ETag's hash in one pass. A
// body in memory (a *bytes.Reader: the archiver's segments) goes in one
// write, rather than through a copy buffer 32 KiB at a time.
func copyBody(ctx context.Context, w io.Writer, body io.Reader) (int64, error) {
	if r, ok := body.(*bytes.Reader); ok {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.WriteTo(w)
	}
	return io.Copy(w, ctxReader{ctx, body})
}

// ctxReader stops a copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Head returns the size and ETag of key.
func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := s.checkKey(key); err != nil {
		return objstore.ObjectInfo{}, s.fail("head", key, err)
	}
	info, err := s.stat(key)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("head", key, err)
	}
	return info, nil
}

// stat returns the info of key, computing its ETag if need be.
func (s *Store) stat(key string) (objstore.ObjectInfo, error) {
	f, err := s.open(key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	defer f.Close()
	return fileInfo(f, key)
}

func (s *Store) open(key string) (*os.File, error) {
	f, err := os.Open(s.path(key))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil, objstore.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, objstore.ErrNotFound
	}
	return f, nil
}

func fileInfo(f *os.File, key string) (objstore.ObjectInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	etag, err := etagOf(f, fi)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	return objstore.ObjectInfo{Key: key, Size: fi.Size(), ETag: etag, ModTime: fi.ModTime()}, nil
}

// Get opens key, or the range of it that opts names.
func (s *Store) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if err := s.checkKey(key); err != nil {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	f, err := s.open(key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	info, err := fileInfo(f, key)
	if err == nil {
		err = checkGet(info, opts)
	}
	if err != nil {
		f.Close()
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	n := info.Size - opts.Offset
	if opts.Length > 0 && opts.Length < n {
		n = opts.Length
	}
	r := io.NewSectionReader(f, opts.Offset, n)
	return readCloser{Reader: r, Closer: f}, info, nil
}

// checkGet applies a Get's condition and range to the object's info.
func checkGet(info objstore.ObjectInfo, opts objstore.GetOptions) error {
	if opts.IfNoneMatch != "" && opts.IfNoneMatch == info.ETag {
		return objstore.ErrNotModified
	}
	if opts.Offset < 0 || (opts.Offset > 0 && opts.Offset >= info.Size) {
		return fmt.Errorf("%w: offset %d of an object of %d bytes", objstore.ErrInvalidRange, opts.Offset, info.Size)
	}
	return nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// Delete removes key; a missing key is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := s.checkKey(key); err != nil {
		return s.fail("delete", key, err)
	}
	unlock, err := s.lock(key)
	if err != nil {
		return s.fail("delete", key, err)
	}
	defer unlock()
	p := s.path(key)
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		return nil // a folder of other keys, not an object
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
		return nil
	}
	if err != nil {
		return s.fail("delete", key, err)
	}
	// A concurrent delete of the folder's last other key may have removed
	// the folder already: our entry is gone with it.
	if err := syncDir(filepath.Dir(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return s.fail("delete", key, err)
	}
	s.pruneDirs(filepath.Dir(p))
	return nil
}

// pruneDirs removes the empty folders above a deleted object, best effort.
func (s *Store) pruneDirs(dir string) {
	for dir != s.root && strings.HasPrefix(dir, s.root) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// List yields the objects under prefix after startAfter, in key order.
func (s *Store) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		if err := objstore.ValidatePrefix(prefix); err != nil {
			yield(objstore.ObjectInfo{}, s.fail("list", prefix, err))
			return
		}
		w := walker{s: s, ctx: ctx, prefix: prefix, after: startAfter, yield: yield}
		if err := w.dir(""); err != nil && err != errStop {
			yield(objstore.ObjectInfo{}, s.fail("list", prefix, err))
		}
	}
}
