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

func downloadPart(ctx context.Context, s Store, info ObjectInfo, off int64, opts DownloadOptions, w io.WriterAt) error {
	n := min(opts.PartSize, info.Size-off)
	rc, got, err := s.Get(ctx, info.Key, GetOptions{Offset: off, Length: n})
	if err != nil {
		return err
	}
	defer rc.Close()
	if got.ETag != info.ETag {
		return fmt.Errorf("the object changed during the download (etag %s, then %s)", info.ETag, got.ETag)
	}
	written, err := io.Copy(io.NewOffsetWriter(w, off), rc)
	if err != nil {
		return fmt.Errorf("bytes %d..%d: %w", off, off+n, err)
	}
	if written != n {
		return fmt.Errorf("bytes %d..%d: got %d bytes, want %d", off, off+n, written, n)
	}
	if opts.Progress != nil {
		opts.Progress(n)
	}
	return nil
}
