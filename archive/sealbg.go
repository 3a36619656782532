package archive

import "context"

// A segment sealed while the archiver reads on (by its size, or by its age
// while following) is closed in a goroutine of its own: closing compresses
// its last blocks, which took up to tens of milliseconds on a busy machine,
// and the reading loop would publish nothing to the live stream meanwhile.
// The loop starts the next segment at once. Segments are queued for upload
// in the order they were sealed: each goroutine waits for the one before
// it. Every other seal (the stop's, a gap's, before a column family change)
// first waits for these (seal), and Run waits for them before it drains or
// ends the uploader.

// sealSoon seals cur in the background, and returns the segment that is
// open after it: nil, or cur itself when its batches use no sequence
// number (a transaction's prepare, log data): its key would be the next
// segment's, so it stays open until a batch that uses one joins it. A
// failure of an earlier seal is returned.
func (a *Archiver) sealSoon(ctx context.Context, cur *building, up *uploader) (*building, error) {
	if err := a.sealFailed(); err != nil {
		return cur, err
	}
	if cur == nil || cur.batches == 0 {
		return nil, nil
	}
	if cur.w.NextSeq() == cur.w.Header().FirstSeq {
		return cur, nil
	}
	a.behind = !cur.caughtUp
	prev, done := a.sealing, make(chan struct{})
	a.sealing = done
	go func() {
		defer close(done)
		s, err := a.closeSegment(cur, false)
		if prev != nil {
			<-prev
		}
		if err == nil && a.sealFailed() == nil {
			err = up.queue(ctx, s)
		}
		if err != nil {
			a.sealMu.Lock()
			if a.sealErr == nil {
				a.sealErr = err
			}
			a.sealMu.Unlock()
		}
	}()
	return nil, nil
}

// sealFailed is the failure of a seal in the background, if any.
func (a *Archiver) sealFailed() error {
	a.sealMu.Lock()
	defer a.sealMu.Unlock()
	return a.sealErr
}

// waitSeals waits until the segments sealed in the background are queued,
// and returns the failure of one of them, if any.
func (a *Archiver) waitSeals() error {
	if a.sealing != nil {
		<-a.sealing
		a.sealing = nil
	}
	return a.sealFailed()
}
