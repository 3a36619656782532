package restore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// fetchFiles downloads the files of a base into dir, several at a time,
// checking each file's size and SHA-256 against the file list. progress,
// if set, is told of the bytes as they arrive.
func fetchFiles(ctx context.Context, s objstore.Store, fl *manifest.FileList, dir string, conc int, progress func(int64)) error {
	files := slices.Clone(fl.Files)
	slices.SortFunc(files, func(a, b manifest.File) int { return cmp.Compare(b.Size, a.Size) }) // largest first
	return forEach(ctx, conc, len(files), func(ctx context.Context, i int) error {
		return fetchFile(ctx, s, files[i], dir, conc, progress)
	})
}

// fetchFile downloads one file of a base into dir and checks it.
func fetchFile(ctx context.Context, s objstore.Store, f manifest.File, dir string, conc int, progress func(int64)) error {
	// The manifest package validated the names already; this is the last
	// guard before a name is joined to a path.
	if err := manifest.ValidateName(f.Name); err != nil {
		return fmt.Errorf("base file %s: %w: %w", f.Key, ErrCorrupt, err)
	}
	path := filepath.Join(dir, f.Name)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("base file %s: %w", f.Key, err)
	}
	err = download(ctx, s, f, out, conc, progress)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("base file %s: write %s: %w", f.Key, path, cerr)
	}
	if err != nil {
		return err
	}
	return checkSum(f, path)
}

// download copies f's object into out with parallel ranged gets, refusing
// more bytes than the file list says. The file is synced with the rest of
// the folder before the final rename (dest.install), by which time the
// kernel has mostly written it back.
func download(ctx context.Context, s objstore.Store, f manifest.File, out *os.File, conc int, progress func(int64)) error {
	w := &boundedWriter{w: out, limit: f.Size}
	n, err := objstore.Download(ctx, s, f.Key, w, objstore.DownloadOptions{Concurrency: conc, Progress: progress})
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		return fmt.Errorf("base file %s (%s): %w: the object is missing: %w", f.Key, f.Name, ErrCorrupt, err)
	case errors.Is(err, errTooLong):
		return fmt.Errorf("base file %s (%s): %w: the object is larger than the %d bytes that files.json says", f.Key, f.Name, ErrCorrupt, f.Size)
	case err != nil:
		return fmt.Errorf("base file %s (%s): %w", f.Key, f.Name, err)
	case n != f.Size:
		return fmt.Errorf("base file %s (%s): %w: %d bytes, files.json says %d", f.Key, f.Name, ErrCorrupt, n, f.Size)
	}
	return nil
}

// checkSum compares the SHA-256 of the file at path with f's.
func checkSum(f manifest.File, path string) error {
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("base file %s: %w", f.Key, err)
	}
	defer in.Close()
	h := sha256.New()
	// Hide os.File's WriteTo, which would copy 32 KiB at a time.
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{in}, make([]byte, 1<<20)); err != nil {
		return fmt.Errorf("base file %s: read %s: %w", f.Key, path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("base file %s (%s): %w: sha256 %s, files.json says %s", f.Key, f.Name, ErrCorrupt, got, f.SHA256)
	}
	return nil
}

var errTooLong = errors.New("more bytes than expected")

// boundedWriter is an io.WriterAt that refuses bytes past limit.
type boundedWriter struct {
	w     io.WriterAt
	limit int64
}

func (b *boundedWriter) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off+int64(len(p)) > b.limit {
		return 0, errTooLong
	}
	return b.w.WriteAt(p, off)
}

// forEach calls fn for 0..n-1 with at most conc calls at once, and
// returns the first error, after which no new call starts.
func forEach(ctx context.Context, conc, n int, fn func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		next     = make(chan int)
	)
	for range min(conc, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}
