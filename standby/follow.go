package standby

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// maxSegment bounds the bytes of one segment read into memory.
const maxSegment = 1 << 30

// follower is the state of one follow loop.
type follower struct {
	tl       uint32
	resume   bool      // S+1 may be inside a segment: list once on a 404
	ended    bool      // the timeline's end marker was read
	lastNew  time.Time // when a segment last arrived
	gotAt    time.Time // when the GET of the segment at hand returned
	cad      cadence   // when the next segment is due
	missing  missing   // how long the next key has stayed missing
	endedAt  time.Time // when the end marker was read
	endedLog time.Time // when waitChild last logged
	// hits counts the segments in a row found at their first GET (a
	// backlog waits), applied the segments this run applied, and
	// catchUpAt is when the last catch-up listing was (catchup.go).
	hits      int
	applied   int
	catchUpAt time.Time
}

// follow applies the archive's segments until ctx ends or an error stops
// it.
func (s *Standby) follow(ctx context.Context, tl uint32) error {
	f := &follower{tl: tl, resume: true, lastNew: time.Now(), cad: newCadence(s.opts.Poll, s.opts.MaxPoll)}
	s.update(func(st *Status) {
		st.State, st.Timeline, st.Applied = Following, tl, s.db.LatestSequence()
		st.Head = max(st.Head, st.Applied)
	})
	s.log.Info("following", "from", s.store.String(), "timeline", tl, "applied", s.db.LatestSequence())
	for ctx.Err() == nil {
		select {
		case req := <-s.promoteReq:
			if err := s.handlePromote(ctx, f, req); err != nil {
				return err
			}
			continue
		default:
		}
		progressed, err := s.step(ctx, f)
		if err != nil || ctx.Err() != nil {
			return err
		}
		if progressed {
			f.lastNew = time.Now()
			continue
		}
		if req := s.sleep(ctx, f); req != nil {
			if err := s.handlePromote(ctx, f, req); err != nil {
				return err
			}
		}
	}
	return nil
}

// step does one round: a manifest check when due, a timeline switch when
// the standby reached a branch point, the GET of the next segment. It
// reports whether it applied anything.
func (s *Standby) step(ctx context.Context, f *follower) (bool, error) {
	if err := s.checkManifest(ctx, f.ended); err != nil {
		return false, err
	}
	applied := s.db.LatestSequence()
	if err := s.applyFamilies(f.tl, applied); err != nil {
		return false, err
	}
	child, ok, err := s.branch(f.tl, applied)
	if err != nil {
		return false, err
	}
	if ok && applied == child.Branch {
		return true, s.switchTo(f, child)
	}
	if f.ended {
		s.waitChild(f, applied)
		return false, nil
	}
	if err := s.checkHole(f.tl, applied); err != nil {
		return false, err
	}
	limit := uint64(math.MaxUint64)
	if ok {
		limit = child.Branch
	}
	if s.strm.c != nil {
		n, err := s.applyStream(ctx, f, limit)
		if err != nil || n > 0 {
			return n > 0, err
		}
		if s.streaming(f) {
			return false, nil // the stream brings what comes: no GET
		}
	}
	key := manifest.SegmentKey(f.tl, applied+1)
	asked := time.Now()
	data, err := s.get(ctx, key)
	f.hits++
	if data == nil && err == nil {
		f.hits = 0
		f.cad.miss(asked)
		key, data, err = s.notFound(ctx, f, applied)
	}
	if data == nil || err != nil {
		return false, err
	}
	f.resume = false
	if f.applied == 0 { // catchup.go
		if done, err := s.maybeCatchUp(ctx, f, limit); done || err != nil {
			return done, err
		}
	}
	f.gotAt = time.Now()
	err = s.applySegment(ctx, f, key, data, limit)
	if errors.Is(err, errFamiliesUnknown) {
		return false, nil
	}
	if err == nil {
		f.applied++
		_, err = s.maybeCatchUp(ctx, f, limit)
	}
	return true, err
}

// notFound handles a GET that found no segment at applied+1. After a
// restart the next batch may sit inside a segment whose key is lower: it
// keeps looking until a listing answers for sure, since a store failure
// must not leave the standby polling a key that never comes. Otherwise a
// key that stays missing is checked now and then (checkMissing).
func (s *Standby) notFound(ctx context.Context, f *follower, applied uint64) (string, []byte, error) {
	if !f.resume {
		return "", nil, s.checkMissing(ctx, f, applied)
	}
	key, data, sure, err := s.findContaining(ctx, f.tl, applied+1)
	// Ahead of the bucket (batches applied from the live stream), the next
	// batch is inside a segment not uploaded yet: list until it is.
	f.resume = !sure || data == nil && s.aheadOfBucket(applied)
	if sure && data == nil && err == nil {
		// The listing looked for later data: the first miss is looked into.
		f.missing = missing{seq: applied + 1, next: time.Now().Add(s.opts.MissingCheck), every: s.opts.MissingCheck, looked: true}
	}
	return key, data, err
}

// switchTo follows the child timeline from its branch point, where the
// standby is.
func (s *Standby) switchTo(f *follower, child manifest.Timeline) error {
	// The batches up to the branch must be on disk before the file that
	// says the standby follows the child: after a power loss the database
	// must not come back below the branch of the timeline it names.
	if err := s.db.SyncWAL(); err != nil {
		return err
	}
	if err := writeTimeline(s.opts.Dir, child.ID); err != nil {
		return err
	}
	s.log.Info("following a new timeline", "timeline", child.ID, "parent", f.tl, "branch", child.Branch)
	s.strm.forgetKept()
	f.tl, f.ended, f.resume, f.endedLog = child.ID, false, false, time.Time{}
	f.cad.reset()
	s.update(func(st *Status) {
		if st.State == Ended {
			st.State = Following
		}
		st.Reason, st.Timeline = "", child.ID
	})
	return nil
}

// get reads the object key whole; nil without error when it does not exist
// or the store failed (counted and retried at the next poll). An encrypted
// object that fails its authentication, or whose key the keyring lacks,
// is an error: the standby stops rather than try it again forever.
func (s *Standby) get(ctx context.Context, key string) ([]byte, error) {
	rc, info, err := s.store.Get(ctx, key, objstore.GetOptions{})
	if objstore.IsNotFound(err) || ctx.Err() != nil {
		return nil, nil
	}
	if crypt.IsPermanent(err) {
		return nil, segmentCryptError(key, err)
	}
	if err == nil {
		defer rc.Close()
		if info.Size > maxSegment {
			return nil, fmt.Errorf("segment %s: %w: %d bytes, more than %d", key, restore.ErrCorrupt, info.Size, maxSegment)
		}
		// Sized once from the object's size: io.ReadAll's doubling
		// copied and zeroed a 16 MiB segment several times over.
		buf := bytes.NewBuffer(make([]byte, 0, max(info.Size, 0)+bytes.MinRead))
		if _, err = buf.ReadFrom(io.LimitReader(rc, maxSegment+1)); err == nil {
			return buf.Bytes(), nil
		}
		if crypt.IsPermanent(err) {
			return nil, segmentCryptError(key, err)
		}
	}
	if ctx.Err() != nil {
		return nil, nil
	}
	s.retried("get "+key, err)
	return nil, nil
}

// findContaining lists timeline tl from the newest base below seq
// (catalog.Containing) and reads the segment that holds seq, if any.
// It reports sure when the answer is final: the listing worked, and either
// no segment holds seq or the one that does was read.
func (s *Standby) findContaining(ctx context.Context, tl uint32, seq uint64) (string, []byte, bool, error) {
	sg, later, err := catalog.Containing(ctx, s.store, s.m, tl, seq)
	if err != nil {
		if ctx.Err() != nil || isStoreError(err) {
			s.retried("list timeline", err)
			return "", nil, false, nil
		}
		return "", nil, false, fmt.Errorf("standby: list the segments of timeline %d: %w", tl, err)
	}
	if sg != nil {
		s.log.Info("resuming inside a segment", "key", sg.Key, "sequence", seq)
		data, err := s.get(ctx, sg.Key)
		return sg.Key, data, data != nil, err
	}
	// No segment holds it: one that was pruned or deleted while the standby
	// was stopped is found at once, from the same listing.
	return "", nil, true, s.missingGiven(ctx, tl, seq-1, later)
}

// applySegment applies the batches of the segment after the database's
// latest sequence and up to limit.
func (s *Standby) applySegment(ctx context.Context, f *follower, key string, data []byte, limit uint64) error {
	h, tr, err := segments.ReadTrailer(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("segment %s: %w", key, err)
	}
	if err := restore.CheckSegmentHeader(h, key); err != nil {
		return err
	}
	r, err := segments.NewReader(bytes.NewReader(data), segments.ReaderOptions{})
	if err != nil {
		return fmt.Errorf("segment %s: %w", key, err)
	}
	applied := s.db.LatestSequence()
	s.update(func(st *Status) { st.Head = max(st.Head, tr.NextSeq-1) })
	s.setBehind(tr.FirstTime)
	// From applied, not applied+1: a batch that uses no sequence (a
	// transaction's prepare) at applied+1 is still to apply.
	if err := r.SkipTo(applied); err != nil {
		return fmt.Errorf("segment %s: %w", key, err)
	}
	g := &s.pend
	g.s, g.tl, g.key = s, f.tl, key
	defer g.reset()
	for ctx.Err() == nil {
		b, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return cmp.Or(g.apply(ctx), fmt.Errorf("segment %s: %w", key, err))
		}
		if b.Seq <= applied {
			// Applied already; if from the stream, the same bytes.
			if err := s.strm.check(b.Seq, b.Count, b.Data, 0); err != nil {
				return cmp.Or(g.apply(ctx), fmt.Errorf("segment %s: %w", key, err))
			}
			continue
		}
		if b.Seq > limit || b.Count > 0 && b.Seq+uint64(b.Count)-1 > limit {
			return g.apply(ctx) // the rest is past the branch point
		}
		if g.redelivered(b) { // redeliver.go
			continue
		}
		if !s.familiesQuiet(f.tl, b) {
			// The changes due before b need the batches before it applied.
			if err := g.apply(ctx); err != nil {
				return err
			}
			if ready, err := s.familiesBefore(ctx, f.tl, b); err != nil || !ready {
				return cmp.Or(err, errFamiliesUnknown) // the segment is read again at the next poll
			}
		}
		if err := g.add(ctx, b); err != nil {
			return err
		}
	}
	if err := g.apply(ctx); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	s.update(func(st *Status) { st.Segments++ })
	s.trimKept(tr.NextSeq-1, 0)
	s.bucketHolds(tr.NextSeq - 1)
	if !h.Created.IsZero() {
		s.applyDelay.Observe(max(0, time.Since(h.Created).Seconds()))
	}
	f.cad.arrived(h.FirstSeq, tr.NextSeq, h.Created, f.gotAt)
	if h.Flags&segments.FlagEnd != 0 {
		s.log.Info("the timeline ended", "key", key, "timeline", f.tl)
		f.ended, f.endedAt = true, time.Now()
	}
	return nil
}

// pendingBytes bounds the batches that pending gathers before it applies
// them.
const pendingBytes = 4 << 20

// pending gathers consecutive batches of one segment and applies them with
// one rocks.DB.ApplyBatches (which writes each run of plain batches as one
// write: small batches cost a write each otherwise). The batches of a
// segment are in memory already, so gathering them delays nothing.
type pending struct {
	s   *Standby
	tl  uint32
	key string
	bs  []segments.Batch
	// data holds the batches' bytes: a segment Reader's Batch.Data stays
	// valid only until its next batch. An append that moves it leaves the
	// batches before pointing at the old array, which keeps their bytes.
	data []byte
}

// add takes b, applying what is gathered first when b does not follow it
// by the spans the segment records (the apply then names the batch whose
// span is wrong), and after b when the gathering is full.
func (p *pending) add(ctx context.Context, b segments.Batch) error {
	if n := len(p.bs); n > 0 && p.bs[n-1].Seq+uint64(p.bs[n-1].Count) != b.Seq {
		if err := p.apply(ctx); err != nil {
			return err
		}
	}
	p.noteAdded(b) // redeliver.go
	if len(p.bs) == 0 && len(b.Data) >= pendingBytes {
		p.bs = append(p.bs, b) // alone, before the Reader moves on: no copy
		return p.apply(ctx)
	}
	start := len(p.data)
	p.data = append(p.data, b.Data...)
	b.Data = p.data[start:len(p.data):len(p.data)]
	p.bs = append(p.bs, b)
	if len(p.data) >= pendingBytes {
		return p.apply(ctx)
	}
	return nil
}

// reset forgets the batches gathered, keeping the buffers (a large one
// only until the next segment).
func (p *pending) reset() {
	p.bs, p.data = p.bs[:0], p.data[:0]
	if cap(p.data) > 2*pendingBytes {
		p.data = nil
	}
}

// apply applies the batches gathered; a batch that does not continue the
// database or is malformed is a corrupt archive, and so is a batch whose
// span in the segment disagrees with what was applied.
func (p *pending) apply(ctx context.Context) error {
	bs := p.bs
	p.reset()
	if len(bs) == 0 {
		return nil
	}
	s := p.s
	n, err := s.applyBatches(ctx, p.tl, bs)
	if err != nil && n > 0 { // the batches before the one at fault are in
		s.applied(bs[n-1])
		s.mu.Lock()
		s.st.Batches += int64(n)
		s.mu.Unlock()
	}
	if err != nil {
		b := bs[min(n, len(bs)-1)]
		if errors.Is(err, rocks.ErrGap) || errors.Is(err, rocks.ErrCorrupt) || errors.Is(err, rocks.ErrNoPrepare) {
			return fmt.Errorf("segment %s: %w: the batch at sequence %d: %w", p.key, restore.ErrCorrupt, b.Seq, err)
		}
		return fmt.Errorf("segment %s: apply the batch at sequence %d: %w", p.key, b.Seq, err)
	}
	last := bs[len(bs)-1]
	seq := s.db.LatestSequence()
	if seq != last.Seq+uint64(last.Count)-1 {
		// What Apply wrote disagrees with the span the segment records.
		return fmt.Errorf("segment %s: %w: the batch at sequence %d uses %d sequences, applied it ends at %d",
			p.key, restore.ErrCorrupt, last.Seq, last.Count, seq)
	}
	s.applied(last)
	s.mu.Lock()
	s.st.Batches += int64(len(bs))
	s.mu.Unlock()
	return nil
}

// applied notes that the database ends with batch last.
func (s *Standby) applied(last segments.Batch) {
	seq := s.db.LatestSequence()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Applied, s.st.AppliedTime = seq, last.Time
	if seq >= s.st.Head {
		s.behind = time.Time{}
	} else {
		s.behind = last.Time
	}
}

// setBehind starts the lag clock at t when nothing was applied since the
// standby was caught up.
func (s *Standby) setBehind(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.Head > s.st.Applied && s.behind.IsZero() {
		s.behind = t
	}
}

// sleep waits for the next poll: Poll while segments keep coming, growing
// to MaxPoll after a quarter of that idle time; around the moment the next
// segment is due, as the cadence says. A segment that did not come in its
// window is late rather than missing: the idle time counts from the
// window's end.
// A promotion request that comes meanwhile ends the wait and is returned.
func (s *Standby) sleep(ctx context.Context, f *follower) *promoteRequest {
	d := min(max(time.Since(f.cad.idleSince(f.lastNew))/4, s.opts.Poll), s.opts.MaxPoll)
	d = f.cad.wait(time.Now(), d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case req := <-s.promoteReq:
		return req
	case fr := <-s.streamWait():
		s.strm.held = &fr
	}
	return nil
}

// retried counts and logs an error that the next poll retries.
func (s *Standby) retried(what string, err error) {
	s.update(func(st *Status) { st.Errors++ })
	s.log.Warn("standby: will retry", "what", what, "error", err)
}

// isStoreError reports an error of the store itself (unreachable, denied),
// which may go away, rather than of what it holds.
func isStoreError(err error) bool {
	var se *objstore.Error
	return errors.As(err, &se) && !objstore.IsNotFound(err)
}

// segmentCryptError is a segment that cannot be decrypted: changed (a
// corrupt archive, restore.ErrCorrupt) or encrypted with a key that the
// keyring lacks (crypt.MissingKeyError: give the key file that has it).
func segmentCryptError(key string, err error) error {
	var mk *crypt.MissingKeyError
	if errors.As(err, &mk) {
		return fmt.Errorf("segment %s: %w", key, err)
	}
	return fmt.Errorf("segment %s: %w: %w", key, restore.ErrCorrupt, err)
}
