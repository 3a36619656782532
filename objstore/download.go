package objstore

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// DownloadOptions tunes Download.
type DownloadOptions struct {
	// PartSize is the size of each ranged get (default 8 MiB).
	PartSize int64
	// Concurrency is the number of gets in flight (default 4).
	Concurrency int
	// Progress, if set, is called with the byte count of each finished
	// part, from several goroutines.
	Progress func(n int64)
}

// Download copies the object key into w with parallel ranged gets and
// returns its size. Every part must come from the same version of the
// object (the ETag that a first head returned); a change in the middle is an
// error, never a mix of two versions.
func Download(ctx context.Context, s Store, key string, w io.WriterAt, opts DownloadOptions) (int64, error) {
	if opts.PartSize <= 0 {
		opts.PartSize = 8 << 20
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 4
	}
	info, err := s.Head(ctx, key)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		parts    = make(chan int64)
	)
	fail := func(err error) {
		once.Do(func() { firstErr = err; cancel() })
	}
	for range opts.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for off := range parts {
				if err := downloadPart(ctx, s, info, off, opts, w); err != nil {
					fail(err)
				}
			}
		}()
	}
	for off := int64(0); off < info.Size && ctx.Err() == nil; off += opts.PartSize {
		parts <- off
	}
	close(parts)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return 0, fmt.Errorf("download %s from %s: %w", key, s, firstErr)
	}
	return info.Size, nil
}

// partAttempts bounds the gets of one part whose transfer breaks off (a
// connection reset in the middle of a body, which the S3 SDK does not
// retry): each new get resumes where the last one stopped.
const partAttempts = 3

func downloadPart(ctx context.Context, s Store, info ObjectInfo, off int64, opts DownloadOptions, w io.WriterAt) error {
	n := min(opts.PartSize, info.Size-off)
	var done int64
	for attempt := 1; done < n; attempt++ {
		written, broken, err := copyRange(ctx, s, info, off+done, n-done, w)
		done += written
		if err != nil && (!broken || attempt == partAttempts || ctx.Err() != nil) {
			return fmt.Errorf("bytes %d..%d: %w", off, off+n, err)
		}
	}
	if opts.Progress != nil {
		opts.Progress(n)
	}
	return nil
}

// copyRange copies length bytes of the object from off into w at off. It
// reports broken when the transfer stopped early (the body failed or ended
// short), which another get of the rest can resume.
func copyRange(ctx context.Context, s Store, info ObjectInfo, off, length int64, w io.WriterAt) (int64, bool, error) {
	rc, got, err := s.Get(ctx, info.Key, GetOptions{Offset: off, Length: length})
	if err != nil {
		return 0, false, err
	}
	defer rc.Close()
	if got.ETag != info.ETag {
		return 0, false, fmt.Errorf("the object changed during the download (etag %s, then %s)", info.ETag, got.ETag)
	}
	written, err := io.Copy(io.NewOffsetWriter(w, off), rc)
	switch {
	case err != nil:
		return written, true, fmt.Errorf("the transfer stopped after %d of %d bytes: %w", written, length, err)
	case written < length:
		return written, true, fmt.Errorf("got %d bytes, want %d", written, length)
	case written > length:
		return written, false, fmt.Errorf("got %d bytes, want %d", written, length)
	}
	return written, false, nil
}
