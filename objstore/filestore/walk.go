package filestore

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/rockstream/rockstream/objstore"
)

var errStop = errors.New("stop")

// walker visits the folder tree in key order. A folder "a" sorts as "a/",
// so that "a-b" comes before "a/c", as in a byte-wise order of whole keys.
type walker struct {
	s      *Store
	ctx    context.Context
	prefix string
	after  string
	yield  func(objstore.ObjectInfo, error) bool
}

type entry struct {
	name string // as it sorts: a folder's name ends with "/"
	dir  bool
}

// dir visits the folder whose keys start with rel ("" or ending in "/").
func (w *walker) dir(rel string) error {
	if !w.mayHold(rel) {
		return nil
	}
	entries, err := w.entries(rel)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := w.ctx.Err(); err != nil {
			return err
		}
		if e.dir {
			err = w.dir(rel + e.name)
		} else {
			err = w.file(rel + e.name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// mayHold reports whether a folder of keys starting with rel can hold a key
// that the listing yields.
func (w *walker) mayHold(rel string) bool {
	if rel == "" {
		return true
	}
	if !strings.HasPrefix(w.prefix, rel) && !strings.HasPrefix(rel, w.prefix) {
		return false
	}
	// Every key under rel sorts before after when rel does and after does
	// not start with rel.
	return w.after == "" || strings.HasPrefix(w.after, rel) || rel > w.after
}

func (w *walker) entries(rel string) ([]entry, error) {
	des, err := os.ReadDir(filepath.Join(w.s.root, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed while listing
	}
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(des))
	for _, de := range des {
		if rel == "" && de.Name() == internalDir {
			continue
		}
		switch {
		case de.IsDir():
			out = append(out, entry{name: de.Name() + "/", dir: true})
		case de.Type().IsRegular():
			out = append(out, entry{name: de.Name()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (w *walker) file(key string) error {
	if !strings.HasPrefix(key, w.prefix) || key <= w.after {
		return nil
	}
	fi, err := os.Stat(w.s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted while listing
	}
	if err != nil {
		return err
	}
	info := objstore.ObjectInfo{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}
	info.ETag, _ = cachedETag(w.s.path(key), fi)
	if !w.yield(info, nil) {
		return errStop
	}
	return nil
}

// setETag records etag with f's size and modification time in an extended
// attribute. A file system without user attributes is not an error: the
// ETag is then computed when it is needed.
func setETag(f *os.File, etag string) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	err = unix.Fsetxattr(int(f.Fd()), etagXattr, []byte(etagRecord(etag, fi)), 0)
	if err != nil && !errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EOPNOTSUPP) {
		return fmt.Errorf("set etag attribute: %w", err)
	}
	return nil
}

func etagRecord(etag string, fi os.FileInfo) string {
	return etag + " " + strconv.FormatInt(fi.Size(), 10) + " " + strconv.FormatInt(fi.ModTime().UnixNano(), 10)
}

// etagOf returns the ETag of the open file f: the recorded one when it
// still describes the file, else the MD5 of its bytes.
func etagOf(f *os.File, fi os.FileInfo) (string, error) {
	buf := make([]byte, 128)
	n, err := unix.Fgetxattr(int(f.Fd()), etagXattr, buf)
	if err == nil {
		if etag, ok := parseRecord(string(buf[:n]), fi); ok {
			return etag, nil
		}
	}
	h := md5.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, fi.Size())); err != nil {
		return "", fmt.Errorf("compute etag: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// cachedETag returns the recorded ETag of the file at path, if it is valid.
func cachedETag(path string, fi os.FileInfo) (string, bool) {
	buf := make([]byte, 128)
	n, err := unix.Getxattr(path, etagXattr, buf)
	if err != nil {
		return "", false
	}
	return parseRecord(string(buf[:n]), fi)
}

func parseRecord(rec string, fi os.FileInfo) (string, bool) {
	etag, _, ok := strings.Cut(rec, " ")
	if !ok || rec != etagRecord(etag, fi) {
		return "", false
	}
	return etag, true
}
