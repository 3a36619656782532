package restore

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// readBuffer is the buffer between a segment's object and its Reader.
const readBuffer = 1 << 20

// replayChunkBytes is how much WAL a restore writes before RocksDB
// recovers it (rocks.ReplayOptions.ChunkBytes), and replayRecovery makes
// every batch go by recovery (rocks.ReplayOptions.Recovery): tests set
// them to take that path in small chunks.
var (
	replayChunkBytes int64 = 256 << 20
	replayRecovery   bool
)

// replay replays the plan's batches into the checkpoint in dir with the
// database's own options (rocks.Replayer: written directly, or from the
// first batch with transaction markers on, as WAL files that RocksDB's
// recovery replays); in hand-off it only writes them as WAL files.
func replay(ctx context.Context, s objstore.Store, plan *manifest.Plan, dir string, opts Options, res *Result, progress func(int64)) error {
	rep, err := rocks.NewReplayer(dir, rocks.ReplayOptions{Operators: opts.Operators, HandOff: opts.HandOff,
		Base: plan.Base.Sequence, ChunkBytes: replayChunkBytes, Recovery: replayRecovery})
	if err != nil {
		return fmt.Errorf("open the base %s: %w", plan.Base.FileList, err)
	}
	defer rep.Close()
	if got := rep.Sequence(); got != plan.Base.Sequence {
		return fmt.Errorf("base %s: %w: the checkpoint opens at sequence %d, the manifest says %d",
			plan.Base.FileList, ErrCorrupt, got, plan.Base.Sequence)
	}
	fam := &familyChanges{pending: plan.CFChanges}
	if err := applySteps(ctx, rep, s, plan.Steps, plan.Target, opts.Concurrency, res, progress, fam); err != nil {
		return err
	}
	if err := fam.upTo(rep, rep.Next()-1); err != nil { // families.go
		return err
	}
	if err := rep.Finish(res.Sequence); err != nil {
		return fmt.Errorf("replay into %s: %w", dir, err)
	}
	res.HandOffFiles = rep.Files()
	return nil
}

// applySteps adds the batches of the segments of steps to rep, up to
// target, reading up to conc segments ahead.
// A replayer told to stop at transaction markers (rocks.ReplayOptions.StopAtTxn:
// a standby's catch-up) ends without an error at the first batch it refuses
// for them.
func applySteps(ctx context.Context, rep *rocks.Replayer, s objstore.Store, steps []manifest.Step, target uint64, conc int, res *Result, progress func(int64), fam *familyChanges) error {
	keys := make([]string, len(steps))
	for i, st := range steps {
		keys[i] = st.Key
	}
	p := startPrefetch(ctx, s, keys, conc)
	defer p.close()
	r := &replayer{rep: rep, p: p, res: res, progress: progress, target: target, fam: fam}
	for _, st := range steps {
		if err := r.step(ctx, st); err != nil || r.stopped {
			return err
		}
	}
	return nil
}

// replayer adds the batches of segments to a rocks.Replayer.
type replayer struct {
	rep      *rocks.Replayer
	p        *prefetch
	res      *Result
	progress func(int64)
	target   uint64
	fam      *familyChanges // created and dropped before the batches after them; nil: none
	// stopped: rep refused a batch for its transaction markers
	// (rocks.ErrTxnMarkers), which ends the replay.
	stopped bool
}

// step applies the batches of one segment that end after st.After and at
// or before st.StopAt.
func (r *replayer) step(ctx context.Context, st manifest.Step) error {
	rc, err := r.p.open(st.Key)
	if err != nil {
		return err
	}
	defer rc.Close()
	sr, err := segments.NewReader(&counted{r: rc, n: &r.res.SegmentBytes, progress: r.progress}, segments.ReaderOptions{})
	if err != nil {
		return segmentError(st.Key, err)
	}
	if err := checkHeader(sr.Header(), st); err != nil {
		return err
	}
	// From After, not After+1: a batch that uses no sequence (a
	// transaction's prepare) at After+1 is still to apply.
	if err := sr.SkipTo(st.After); err != nil {
		return segmentError(st.Key, err)
	}
	r.res.Segments++
	crossed, err := r.batches(ctx, sr, st)
	if err != nil || r.stopped {
		return err
	}
	return r.reached(st, crossed)
}

// batches applies the segment's batches up to st.StopAt; it stops at the
// end of the segment, or before the first batch that ends after StopAt
// (crossed is then true).
func (r *replayer) batches(ctx context.Context, sr *segments.Reader, st manifest.Step) (crossed bool, err error) {
	for i := 0; ; i++ {
		if i%1024 == 0 && ctx.Err() != nil {
			return false, ctx.Err()
		}
		b, err := sr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, segmentError(st.Key, err)
		}
		if b.Seq <= st.After {
			continue // in the database already
		}
		if b.Count > 0 && b.Seq+uint64(b.Count)-1 > st.StopAt {
			return true, nil
		}
		if err := r.fam.upTo(r.rep, b.Seq-1); err != nil {
			return false, err
		}
		if err := r.rep.Add(b.Data); err != nil {
			if errors.Is(err, rocks.ErrTxnMarkers) {
				r.stopped = true
				return false, nil
			}
			return false, applyError(st.Key, b.Seq, err)
		}
		r.res.Batches++
		r.res.BatchBytes += int64(len(b.Data))
		r.res.Time = b.Time
	}
}

// reached checks where a step left the database: at its StopAt, or, when
// the step ends at the target inside a batch, right before that batch (a
// batch is never split, so the restore rounds down).
func (r *replayer) reached(st manifest.Step, crossed bool) error {
	got := r.rep.Next() - 1
	r.res.Sequence = got
	if got == st.StopAt || crossed && st.StopAt == r.target && got >= st.After {
		return nil
	}
	return fmt.Errorf("segment %s: %w: its batches end at sequence %d, the restore needs them up to %d: segment %s, which would hold them, is missing",
		st.Key, ErrCorrupt, got, st.StopAt, manifest.SegmentKey(st.Timeline, got+1))
}

func checkHeader(h segments.Header, st manifest.Step) error {
	return CheckSegmentHeader(h, st.Key)
}

// CheckSegmentHeader checks that the header of the segment stored at key
// agrees with the key: the same timeline and first sequence. A segment
// that disagrees is ErrCorrupt, and the error names the key. A follower
// that reads segments by key (a standby) checks each with it, as a restore
// does.
func CheckSegmentHeader(h segments.Header, key string) error {
	tl, first, err := manifest.ParseSegmentKey(key)
	if err != nil {
		return fmt.Errorf("segment %s: %w", key, err)
	}
	if h.Timeline != uint64(tl) || h.FirstSeq != first {
		return fmt.Errorf("segment %s: %w: its header says timeline %d from sequence %d", key, ErrCorrupt, h.Timeline, h.FirstSeq)
	}
	return nil
}

// segmentError names the segment; a missing object is a corrupt archive.
func segmentError(key string, err error) error {
	if objstore.IsNotFound(err) {
		return fmt.Errorf("segment %s: %w: the object is missing: %w", key, ErrCorrupt, err)
	}
	return fmt.Errorf("segment %s: %w", key, err)
}

// applyError names the segment and the batch; a gap or a malformed batch
// is a corrupt archive.
func applyError(key string, seq uint64, err error) error {
	if errors.Is(err, rocks.ErrGap) || errors.Is(err, rocks.ErrCorrupt) {
		return fmt.Errorf("segment %s: %w: the batch at sequence %d: %w", key, ErrCorrupt, seq, err)
	}
	return fmt.Errorf("segment %s: apply the batch at sequence %d: %w", key, seq, err)
}

// finish checks that the restored database in dir reopens at
// res.Sequence.
//
// RocksDB 7.8.3 reopens a database at the newest sequence that survived
// its last flush: when the flush at the end of a recovery drops the newest
// entries (a Put and its SingleDelete cancel out), the database comes back
// behind (rocks' TestSequenceAfterFlushAndReopen; RocksDB's recovery
// does the same to the application's own database). finish then writes
// the batches after the sequence it came back at once more as a WAL file
// that is not recovered now, so that the WAL carries them: a read-only
// open, and the application's first open, replay it. That changes no
// key: every entry after the sequence it came back at was dropped by the
// flush (a merge is never dropped, so a tail with merges is refused
// rather than merged twice), and the value of a key after a run of puts
// and deletes is set by the last operation on it in the run.
func finish(ctx context.Context, s objstore.Store, plan *manifest.Plan, dir string, res *Result, opts Options) error {
	got, err := reopenSequence(dir, opts.Operators)
	if err != nil || got == res.Sequence {
		return err
	}
	if got > res.Sequence || got < plan.Base.Sequence {
		return reopenError(dir, got, res.Sequence)
	}
	opts.Logger.Warn("the restored database came back behind after its flush (a put and its single delete cancelled out); writing the last batches again as WAL",
		"reopened_at", got, "restored", res.Sequence)
	rep, err := rocks.NewReplayer(dir, rocks.ReplayOptions{HandOff: true, Base: got, Operators: opts.Operators})
	if err != nil {
		return fmt.Errorf("write the last batches into %s again: %w", dir, err)
	}
	defer rep.Close()
	var tail Result
	// The batches only: the database has the column families of the end,
	// and recovery skips the records of those dropped since.
	err = applySteps(ctx, rep, s, tailSteps(plan.Steps, got), plan.Target, 1, &tail, nil, nil)
	if err == nil && rep.HadMerges() {
		err = fmt.Errorf("the restored database %s reopens at sequence %d, not at %d, and the batches after it hold merges, which cannot be written twice", dir, got, res.Sequence)
	}
	if err == nil {
		err = rep.Finish(res.Sequence)
	}
	if err != nil {
		return err
	}
	if got, err = reopenSequence(dir, opts.Operators); err == nil && got != res.Sequence {
		err = reopenError(dir, got, res.Sequence)
	}
	return err
}

// tailSteps are the parts of steps after sequence seq.
func tailSteps(steps []manifest.Step, seq uint64) []manifest.Step {
	var out []manifest.Step
	for _, st := range steps {
		if st.StopAt > seq {
			st.After = max(st.After, seq)
			out = append(out, st)
		}
	}
	return out
}

// reopenSequence opens the database in dir read-only and returns its last
// sequence.
func reopenSequence(dir string, ops *rocks.Operators) (uint64, error) {
	db, err := rocks.OpenReadOnlyWith(dir, ops)
	if err != nil {
		return 0, fmt.Errorf("reopen the restored database %s: %w", dir, err)
	}
	defer db.Close()
	return db.LatestSequence(), nil
}

func reopenError(dir string, got, want uint64) error {
	return fmt.Errorf("the restored database %s reopens at sequence %d, not at %d", dir, got, want)
}

// counted counts the bytes read through it.
type counted struct {
	r        io.Reader
	n        *int64
	progress func(int64)
}

func (c *counted) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	*c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(int64(n))
	}
	return n, err
}
