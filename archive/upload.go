package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// sealed is a segment waiting for upload.
type sealed struct {
	key         string
	data        []byte
	first, next uint64
	batches     int
	raw         int64
	sealed      time.Time
}

// uploader uploads sealed segments in order, one at a time, retrying
// transient failures with backoff for as long as it takes.
type uploader struct {
	a        *Archiver
	ctx      context.Context // not ended by Run's context: a stop drains
	cancel   context.CancelFunc
	ch       chan *sealed
	done     chan struct{}
	mu       sync.Mutex
	err      error
	left     int  // segments queued and not yet uploaded
	dropping bool // a segment was not queued: drop every later one too
}

func (a *Archiver) startUploader(ctx context.Context) *uploader {
	uctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	u := &uploader{a: a, ctx: uctx, cancel: cancel, ch: make(chan *sealed, a.opts.Queue), done: make(chan struct{})}
	go u.run()
	return u
}

// queue hands s to the uploader, waiting while the queue is full.
func (u *uploader) queue(ctx context.Context, s *sealed) error {
	u.mu.Lock()
	u.left++
	dropping := u.dropping
	u.mu.Unlock()
	if dropping {
		return nil // an earlier segment was dropped: none after it may go
	}
	select {
	case u.ch <- s:
		return nil
	default:
	}
	select {
	case u.ch <- s:
		return nil
	case <-u.done:
		return u.failed()
	case <-ctx.Done():
	}
	// Stopping with a full queue: wait for room until the stop's
	// deadline. Past that, this segment and every later one stay
	// unuploaded (counted in left), so the chain has no gap; the next
	// start reads them from the WAL again.
	select {
	case u.ch <- s:
		return nil
	case <-u.done:
		return u.failed()
	case <-time.After(time.Until(u.a.stopDeadline())):
		u.mu.Lock()
		u.dropping = true
		u.mu.Unlock()
		return nil
	}
}

// failed returns the error that stopped the uploader, if any.
func (u *uploader) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *uploader) run() {
	defer close(u.done)
	for s := range u.ch {
		if err := u.upload(s); err != nil {
			u.mu.Lock()
			u.err = err
			u.mu.Unlock()
			return
		}
		u.mu.Lock()
		u.left--
		u.mu.Unlock()
	}
}

// upload puts s create-only, retrying what may pass.
func (u *uploader) upload(s *sealed) error {
	a := u.a
	backoff := 100 * time.Millisecond
	start := time.Now()
	for attempt := 1; ; attempt++ {
		_, err := a.store.Put(u.ctx, s.key, bytes.NewReader(s.data), int64(len(s.data)), objstore.PutOptions{IfNoneMatch: true})
		if objstore.IsPreconditionFailed(err) {
			err = u.ours(s)
		}
		if err == nil {
			if a.opts.OnUpload != nil {
				a.opts.OnUpload(time.Since(start))
			}
			u.done1(s)
			a.segBufs.put(s.data) // uploaded: nothing reads it any more
			s.data = nil
			return nil
		}
		if !transient(err) || u.ctx.Err() != nil {
			return fmt.Errorf("upload segment %s: %w", s.key, err)
		}
		a.count(func(st *Stats) { st.Retries++ })
		a.log.Warn("upload failed; retrying", "key", s.key, "attempt", attempt, "in", backoff, "error", err)
		select {
		case <-time.After(backoff):
		case <-u.ctx.Done():
			return fmt.Errorf("upload segment %s: %w", s.key, u.ctx.Err())
		}
		backoff = min(2*backoff, a.opts.RetryMax)
	}
}

// ours decides a create-only put that found the key taken: our own earlier
// attempt whose answer was lost (same bytes), or another writer (fenced).
func (u *uploader) ours(s *sealed) error {
	rc, info, err := u.a.store.Get(u.ctx, s.key, objstore.GetOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	// Read theirs whole: another archiver may have sealed it later, with
	// more batches than ours (a prefix of it is not a segment).
	got, err := io.ReadAll(io.LimitReader(rc, max(info.Size, int64(len(s.data)))+1))
	if err != nil {
		return err
	}
	if bytes.Equal(got, s.data) {
		return nil
	}
	if seq, differ, err := diverge(got, s.data); err != nil || differ {
		if err != nil {
			return fmt.Errorf("segment %s, written by another archiver, cannot be read: %w", s.key, err)
		}
		return fenced("split brain: segment %s holds a batch at sequence %d that differs from this database's: another database writes timeline %d; stop one of them",
			s.key, seq, u.a.writer.Timeline)
	}
	return &collision{key: s.key}
}

// diverge compares the batches of two segments where both have them, and
// returns the first sequence at which they differ.
func diverge(theirs, ours []byte) (uint64, bool, error) {
	a, err := segments.NewReader(bytes.NewReader(theirs), segments.ReaderOptions{})
	if err != nil {
		return 0, false, err
	}
	b, err := segments.NewReader(bytes.NewReader(ours), segments.ReaderOptions{})
	if err != nil {
		return 0, false, err
	}
	for {
		x, errA := a.Next()
		y, errB := b.Next()
		if errA == io.EOF || errB == io.EOF {
			return 0, false, nil
		}
		if errA != nil {
			return 0, false, errA
		}
		if errB != nil {
			return 0, false, errB
		}
		if x.Seq != y.Seq || x.Count != y.Count || !bytes.Equal(x.Data, y.Data) {
			return min(x.Seq, y.Seq), true, nil
		}
	}
}

// collision is a segment key that another archiver of the same timeline
// took first. Whoever is no longer the manifest's writer is fenced; the
// writer starts again from what the bucket holds.
type collision struct{ key string }

func (c *collision) Error() string {
	return fmt.Sprintf("segment %s was written by another archiver of the same timeline", c.key)
}

func (u *uploader) done1(s *sealed) {
	a := u.a
	a.count(func(st *Stats) {
		st.Segments++
		st.UploadBytes += int64(len(s.data))
		st.LastUpload = a.opts.Now()
		st.ArchivedSequence = max(st.ArchivedSequence, s.next-1)
	})
	a.uploaded(s.raw)
	a.streamPosition()
	a.log.Debug("segment archived", "key", s.key, "first", s.first, "next", s.next, "batches", s.batches,
		"raw_bytes", s.raw, "bytes", len(s.data), "sealed_for", a.opts.Now().Sub(s.sealed).Round(time.Millisecond))
}

// transient reports an upload error that may pass by itself.
func transient(err error) bool {
	for _, permanent := range []error{manifest.ErrFenced, objstore.ErrAccessDenied, objstore.ErrNoBucket,
		objstore.ErrInvalidKey, objstore.ErrRejected, context.Canceled} {
		if errors.Is(err, permanent) {
			return false
		}
	}
	var c *collision
	return !errors.As(err, &c)
}

// stopDeadline is when a stop must be over: DrainTimeout after the first
// call, which comes when the archiver sees the stop. Every wait of the
// stop (room in the queue, the uploads) ends by it, so a stop with a full
// queue takes DrainTimeout, not one DrainTimeout per wait.
func (a *Archiver) stopDeadline() time.Time {
	a.stopMu.Lock() // a seal in the background waits by it too (sealbg.go)
	defer a.stopMu.Unlock()
	if a.stopBy.IsZero() {
		a.stopBy = time.Now().Add(a.opts.DrainTimeout)
	}
	return a.stopBy
}

// drain waits for the queued segments after a stop, up to the stop's
// deadline.
func (a *Archiver) drain(u *uploader) error {
	close(u.ch)
	select {
	case <-u.done:
	case <-time.After(time.Until(a.stopDeadline())):
		u.cancel()
		<-u.done
	}
	u.mu.Lock()
	left, err := u.left, u.err
	u.mu.Unlock()
	a.summary()
	if err != nil && a.coveredDespite(err) {
		err, left = nil, 0
	}
	if err != nil || left > 0 {
		return fmt.Errorf("stopped with %d sealed segments not uploaded (they are archived from the WAL at the next start): %v", left, err)
	}
	a.log.Info("stopped; everything read is archived", "last_sequence", a.next-1)
	return nil
}

// abort stops the uploader at once, after a failure.
func (u *uploader) abort() {
	u.cancel()
	close(u.ch)
	<-u.done
}

// coveredDespite reports whether a drain that hit a collision still left
// everything read in the bucket: the other archiver (stale, same database)
// uploaded it, and this one is still the manifest's writer.
func (a *Archiver) coveredDespite(err error) bool {
	var c *collision
	if !errors.As(err, &c) {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), a.opts.DrainTimeout)
	defer cancel()
	a.etag = ""
	if a.checkFence(ctx) != nil || a.m == nil {
		return false
	}
	last, _, lerr := catalog.LastSegment(ctx, a.store, a.m, a.writer.Timeline, 0)
	return lerr == nil && last != nil && last.Next >= a.next
}
