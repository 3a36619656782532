package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/rockstream/rockstream/objstore"
)

// maxUpdateAttempts bounds the retries of Update under contention.
const maxUpdateAttempts = 50

// Load reads and validates the manifest and returns it with its ETag, for
// a later Commit. It fails with ErrNoArchive when there is none.
func Load(ctx context.Context, s objstore.Store) (*Manifest, string, error) {
	return load(ctx, s, "")
}

// Reload is Load for a poller that holds the manifest with ETag etag: it
// returns a nil manifest and the same etag when the manifest has not
// changed, with one conditional GET.
func Reload(ctx context.Context, s objstore.Store, etag string) (*Manifest, string, error) {
	m, tag, err := load(ctx, s, etag)
	if etag != "" && errors.Is(err, objstore.ErrNotModified) {
		return nil, etag, nil
	}
	return m, tag, err
}

func load(ctx context.Context, s objstore.Store, ifNoneMatch string) (*Manifest, string, error) {
	data, info, err := readObject(ctx, s, ManifestKey, ifNoneMatch, MaxManifestSize)
	if objstore.IsNotFound(err) {
		return nil, "", fmt.Errorf("load manifest %s from %s: %w", ManifestKey, s, ErrNoArchive)
	}
	if err != nil {
		return nil, "", fmt.Errorf("load manifest %s: %w", ManifestKey, err)
	}
	m, err := Parse(data)
	if err != nil {
		return nil, "", fmt.Errorf("load manifest %s from %s: %w", ManifestKey, s, err)
	}
	return m, info.ETag, nil
}

// readObject reads key whole, refusing an object of more than limit bytes
// without reading past limit+1.
func readObject(ctx context.Context, s objstore.Store, key, ifNoneMatch string, limit int64) ([]byte, objstore.ObjectInfo, error) {
	for attempt := 1; ; attempt++ {
		data, info, broken, err := readOnce(ctx, s, key, ifNoneMatch, limit)
		if !broken || attempt == readAttempts || ctx.Err() != nil {
			return data, info, err
		}
	}
}

// readAttempts bounds the gets of one object whose transfer breaks off (a
// connection reset in the middle of the body, which the S3 SDK does not
// retry).
const readAttempts = 3

// readOnce is one get of readObject. broken reports a transfer that
// stopped before the object's end, returned as an *objstore.Error: a
// failure of the store, not of what it holds.
func readOnce(ctx context.Context, s objstore.Store, key, ifNoneMatch string, limit int64) ([]byte, objstore.ObjectInfo, bool, error) {
	r, info, err := s.Get(ctx, key, objstore.GetOptions{IfNoneMatch: ifNoneMatch})
	if err != nil {
		return nil, info, false, err
	}
	defer r.Close()
	tooBig := invalid("size", "the object is larger than %d bytes", limit)
	if info.Size > limit {
		return nil, info, false, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err == nil && int64(len(data)) < info.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, info, true, &objstore.Error{Op: "get", Location: s.String(), Key: key,
			Err: fmt.Errorf("the transfer stopped after %d of %d bytes: %w", len(data), info.Size, err)}
	}
	if int64(len(data)) > limit {
		return nil, info, false, tooBig
	}
	return data, info, false, nil
}

// Create writes m as the manifest of a new archive, only if there is none
// (if-none-match), and returns its ETag. It sets m.Revision. It fails with
// ErrExists when a manifest is already there.
func Create(ctx context.Context, s objstore.Store, m *Manifest) (string, error) {
	c := *m
	c.Revision = newRevision()
	data, err := c.encode()
	if err != nil {
		return "", fmt.Errorf("create manifest %s: %w", ManifestKey, err)
	}
	info, err := s.Put(ctx, ManifestKey, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfNoneMatch: true})
	if objstore.IsPreconditionFailed(err) {
		cur, tag, lerr := Load(ctx, s)
		if lerr == nil && cur.Revision == c.Revision {
			m.Revision = c.Revision
			return tag, nil // an earlier attempt of this put was applied
		}
		return "", fmt.Errorf("create manifest %s in %s: %w", ManifestKey, s, ErrExists)
	}
	if err != nil {
		return "", fmt.Errorf("create manifest %s: %w", ManifestKey, err)
	}
	m.Revision = c.Revision
	return info.ETag, nil
}

// Commit replaces the manifest whose ETag is etag with m (if-match) and
// returns the new ETag. It sets m.Revision.
//
// When the store refuses the condition, Commit reads the manifest back: if
// it carries the revision just written, an earlier attempt of the same put
// was applied and Commit succeeds. Otherwise another write came first and
// Commit fails with ErrFenced when the stored writer outranks m.Writer (a
// higher epoch, or the same epoch with another timeline or id), else with
// ErrConflict. A caller that is not a writer leaves m.Writer as it loaded
// it, or nil; one that takes over sets a higher epoch.
func Commit(ctx context.Context, s objstore.Store, etag string, m *Manifest) (string, error) {
	if etag == "" {
		return "", fmt.Errorf("commit manifest %s: no etag of the version to replace", ManifestKey)
	}
	c := *m
	c.Revision = newRevision()
	data, err := c.encode()
	if err != nil {
		return "", fmt.Errorf("commit manifest %s: %w", ManifestKey, err)
	}
	info, err := s.Put(ctx, ManifestKey, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfMatch: etag})
	if objstore.IsPreconditionFailed(err) {
		return resolveConflict(ctx, s, m, c.Revision)
	}
	if err != nil {
		return "", fmt.Errorf("commit manifest %s: %w", ManifestKey, err)
	}
	m.Revision = c.Revision
	return info.ETag, nil
}

// resolveConflict reads the manifest after a refused commit of m with
// revision rev and tells which kind of refusal it was.
func resolveConflict(ctx context.Context, s objstore.Store, m *Manifest, rev string) (string, error) {
	cur, tag, err := Load(ctx, s)
	switch {
	case err != nil:
		return "", fmt.Errorf("commit manifest %s: refused, then: %w", ManifestKey, err)
	case cur.Revision == rev:
		m.Revision = rev
		return tag, nil
	case outranks(cur.Writer, m.Writer):
		return "", fmt.Errorf("commit manifest %s: %w: %s", ManifestKey, ErrFenced, describe(cur.Writer))
	}
	return "", fmt.Errorf("commit manifest %s: %w", ManifestKey, ErrConflict)
}

// outranks reports whether writer a fences writer b.
func outranks(a, b *Writer) bool {
	if a == nil || b == nil {
		return false
	}
	return a.Epoch > b.Epoch || a.Epoch == b.Epoch && !sameWriter(a, b)
}

// sameWriter reports whether a and b are the same writer: same timeline,
// epoch and id.
func sameWriter(a, b *Writer) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Timeline == b.Timeline && a.Epoch == b.Epoch && a.ID == b.ID
}

func describe(w *Writer) string {
	if w == nil {
		return "the archive has no writer now"
	}
	return fmt.Sprintf("writer %s on %s holds epoch %d on timeline %d since %s",
		short(w.ID), short(w.Host), w.Epoch, w.Timeline, w.Since.Format(time.RFC3339))
}

// Update applies fn to the current manifest and commits the result,
// loading again and calling fn again when another write came first. It
// returns the committed manifest and its ETag.
//
// as is the writer the caller is, or nil for a caller that is not the
// archive's writer (a promotion that takes over, a tool). When as is set
// and the stored writer is not as (timeline, epoch, id), Update fails with
// ErrFenced before calling fn. An error from fn ends Update with that
// error. After a failure that the store cannot make unambiguous, fn may
// see a manifest that already holds its change: fn must then leave it be
// (for example, not add a base that is already listed).
func Update(ctx context.Context, s objstore.Store, as *Writer, fn func(*Manifest) error) (*Manifest, string, error) {
	for attempt := 1; ; attempt++ {
		m, etag, err := Load(ctx, s)
		if err != nil {
			return nil, "", err
		}
		if as != nil && !sameWriter(m.Writer, as) {
			return nil, "", fmt.Errorf("update manifest %s: %w: %s", ManifestKey, ErrFenced, describe(m.Writer))
		}
		if err := fn(m); err != nil {
			return nil, "", err
		}
		tag, err := Commit(ctx, s, etag, m)
		if err == nil {
			return m, tag, nil
		}
		retry := errors.Is(err, ErrConflict) || errors.Is(err, ErrFenced)
		if !retry || attempt == maxUpdateAttempts {
			return nil, "", err
		}
		if err := pause(ctx, attempt); err != nil {
			return nil, "", fmt.Errorf("update manifest %s: %w", ManifestKey, err)
		}
	}
}

// pause waits a random time that grows with attempt, up to 100 ms.
func pause(ctx context.Context, attempt int) error {
	limit := min(time.Millisecond<<min(attempt, 7), 100*time.Millisecond)
	t := time.NewTimer(rand.N(limit))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// LoadFileList reads and validates the file list of base b of manifest m,
// and checks that it matches b and m's identity.
func LoadFileList(ctx context.Context, s objstore.Store, m *Manifest, b Base) (*FileList, error) {
	key := b.FileList
	if err := checkKey("file_list", key, FileListKey(b.Timeline, b.Sequence)); err != nil {
		return nil, fmt.Errorf("load file list %s: %w", key, err)
	}
	fl, _, err := readFileList(ctx, s, key)
	if err == nil {
		err = fl.match(m.Identity, b)
	}
	if err != nil {
		return nil, fmt.Errorf("load file list %s from %s: %w", key, s, err)
	}
	return fl, nil
}

// ReadFileList reads and validates the file list at key, which a manifest
// need not name (a base being uploaded, or dropped), checks that it is the
// list of the base its key names, and returns it with its ETag. It does
// not check the identity: the caller compares fl.Identity with its own.
// A list that is not there matches objstore.ErrNotFound; one that breaks
// the format, ErrInvalid.
func ReadFileList(ctx context.Context, s objstore.Store, key string) (*FileList, string, error) {
	tl, seq, name, err := ParseBaseFileKey(key)
	if err == nil && name != FileListName {
		err = invalid("file_list", "%s is not a %s key", short(key), FileListName)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read file list %s: %w", key, err)
	}
	fl, etag, err := readFileList(ctx, s, key)
	if err == nil && (fl.Timeline != tl || fl.Sequence != seq) {
		err = invalid("sequence", "timeline %d sequence %d, but its key is of timeline %d sequence %d", fl.Timeline, fl.Sequence, tl, seq)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read file list %s from %s: %w", key, s, err)
	}
	return fl, etag, nil
}

// readFileList reads (retrying a transfer that breaks off) and parses the
// file list at key, and returns it with its ETag.
func readFileList(ctx context.Context, s objstore.Store, key string) (*FileList, string, error) {
	data, info, err := readObject(ctx, s, key, "", MaxFileListSize)
	if err != nil {
		return nil, "", err
	}
	fl, err := ParseFileList(data)
	if err != nil {
		return nil, "", err
	}
	return fl, info.ETag, nil
}

// PutFileList validates fl, writes it once at its key (if-none-match) and
// returns the manifest entry for it. A file list already there with other
// bytes is an error that matches objstore.ErrPreconditionFailed.
func PutFileList(ctx context.Context, s objstore.Store, fl *FileList) (Base, error) {
	b := fl.Base()
	data, err := encodeFileList(fl)
	if err != nil {
		return Base{}, fmt.Errorf("put file list %s: %w", b.FileList, err)
	}
	_, err = s.Put(ctx, b.FileList, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{IfNoneMatch: true})
	if objstore.IsPreconditionFailed(err) && sameBytes(ctx, s, b.FileList, data) {
		return b, nil // an earlier attempt of this put was applied
	}
	if err != nil {
		return Base{}, fmt.Errorf("put file list %s: %w", b.FileList, err)
	}
	return b, nil
}

// ReplaceFileList writes fl at its key whatever is there. Only the
// archive's writer calls it, for a file list that the manifest does not
// name: one left by a fenced archiver's base at the same sequence, whose
// files the writer replaced with its own (docs/FORMAT.md, "Bases").
func ReplaceFileList(ctx context.Context, s objstore.Store, fl *FileList) (Base, error) {
	b := fl.Base()
	data, err := encodeFileList(fl)
	if err == nil {
		_, err = s.Put(ctx, b.FileList, bytes.NewReader(data), int64(len(data)), objstore.PutOptions{})
	}
	if err != nil {
		return Base{}, fmt.Errorf("replace file list %s: %w", b.FileList, err)
	}
	return b, nil
}

func encodeFileList(fl *FileList) ([]byte, error) {
	if err := fl.Validate(); err != nil {
		return nil, err
	}
	return marshal(fl)
}

// sameBytes reports whether key holds exactly data.
func sameBytes(ctx context.Context, s objstore.Store, key string, data []byte) bool {
	got, _, err := readObject(ctx, s, key, "", int64(len(data)))
	return err == nil && bytes.Equal(got, data)
}
