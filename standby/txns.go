package standby

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// Two-phase-commit transactions (a TransactionDB source): rocks.DB.Apply
// holds each prepare in memory until its commit, which it then writes at
// the commit's sequences. A prepare applied before this run (before a
// restart, or by the bootstrap's restore) is not in memory: the first
// commit of such a transaction makes the standby read, once per run, what
// the history leaves prepared at the sequence where the run started (the
// base's WAL copies and the segments after the base: preparedAt), and
// apply the commit again. A standby of a database without transactions
// never reads them.

// applyBatches applies bs (rocks.DB.ApplyBatches), reading the
// transactions prepared before this run when one of them commits one, and
// returns how many were applied.
func (s *Standby) applyBatches(ctx context.Context, tl uint32, bs []segments.Batch) (int, error) {
	data := make([][]byte, len(bs))
	for i, b := range bs {
		data[i] = b.Data
	}
	n, err := s.db.ApplyBatches(data)
	if !errors.Is(err, rocks.ErrNoPrepare) || s.txnsRead {
		return n, err
	}
	s.txnsRead = true
	s.log.Info("reading the transactions prepared before this run", "sequence", s.from, "timeline", tl)
	txns, lerr := s.preparedAt(ctx, tl, s.from)
	if lerr != nil {
		return n, fmt.Errorf("%w; reading the transactions prepared before sequence %d: %w", err, s.from+1, lerr)
	}
	s.db.Prepared(txns)
	m, err := s.db.ApplyBatches(data[n:])
	return n + m, err
}

// preparedAt returns the transactions that the history of timeline tl
// leaves prepared at sequence upTo, a batch boundary: those of the base
// that a restore to upTo starts from, read from its WAL copies, then of the
// segments after it. A prepare uses no sequence, so one at upTo+1 counts
// only when it ends its segment: one inside the segment that holds upTo+1
// is the standby's to apply (applySegment reads from upTo on).
func (s *Standby) preparedAt(ctx context.Context, tl uint32, upTo uint64) (*rocks.Txns, error) {
	c, err := catalog.Load(ctx, s.store)
	if err != nil {
		return nil, err
	}
	plan, err := manifest.PlanRestore(c.Manifest, c.Ranges(), tl, upTo)
	if err != nil {
		return nil, err
	}
	txns, err := s.basePrepared(ctx, c.Manifest, plan.Base)
	if err != nil {
		return nil, err
	}
	for i, st := range plan.Steps {
		last := i == len(plan.Steps)-1
		same := last && st.Timeline == tl || !last && plan.Steps[i+1].Timeline == st.Timeline
		if err := s.stepPrepared(ctx, txns, st, same); err != nil {
			return nil, err
		}
	}
	s.log.Info("read the transactions prepared before this run", "base", plan.Base.FileList,
		"segments", len(plan.Steps), "prepared", len(txns.Pending()))
	return txns, nil
}

// basePrepared reads the WAL copies of base b for the transactions
// prepared up to its sequence.
func (s *Standby) basePrepared(ctx context.Context, m *manifest.Manifest, b manifest.Base) (*rocks.Txns, error) {
	fl, err := manifest.LoadFileList(ctx, s.store, m, b)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(filepath.Clean(s.opts.Dir)), ".standby-wal-")
	if err != nil {
		return nil, fmt.Errorf("standby: read the WAL of base %s: %w", b.FileList, err)
	}
	defer os.RemoveAll(tmp)
	for _, f := range fl.Files {
		if !strings.HasSuffix(f.Name, ".log") {
			continue
		}
		if err := fetchChecked(ctx, s.store, f, filepath.Join(tmp, f.Name)); err != nil {
			return nil, fmt.Errorf("standby: read the WAL of base %s: %w", b.FileList, err)
		}
	}
	txns, err := rocks.PreparedIn(tmp, b.Sequence)
	if err != nil {
		return nil, fmt.Errorf("standby: read the WAL of base %s: %w", b.FileList, err)
	}
	return txns, nil
}

// fetchChecked copies the object of f into path and checks its SHA-256.
func fetchChecked(ctx context.Context, store objstore.Store, f manifest.File, path string) error {
	rc, _, err := store.Get(ctx, f.Key, objstore.GetOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), rc)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", f.Key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("%s: %w: sha256 %s, the file list says %s", f.Key, restore.ErrCorrupt, got, f.SHA256)
	}
	return nil
}

// stepPrepared reads the batches of a restore step's segment into txns:
// those after st.After that end by st.StopAt, and, when the history goes
// on in the same timeline (tail), the prepares at StopAt+1 that end the
// segment.
func (s *Standby) stepPrepared(ctx context.Context, txns *rocks.Txns, st manifest.Step, tail bool) error {
	data, err := s.getSegment(ctx, st.Key)
	if err != nil {
		return err
	}
	_, tr, err := segments.ReadTrailer(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("segment %s: %w", st.Key, err)
	}
	r, err := segments.NewReader(bytes.NewReader(data), segments.ReaderOptions{})
	if err == nil {
		err = r.SkipTo(st.After)
	}
	for err == nil {
		var b segments.Batch
		if b, err = r.Next(); err != nil {
			break
		}
		end := b.Seq + uint64(b.Count) // the batch's next sequence
		switch {
		case b.Seq <= st.After:
			continue
		case end > st.StopAt+1, // ends after StopAt
			b.Count == 0 && b.Seq > st.StopAt && !(tail && b.Seq == tr.NextSeq):
			return nil
		}
		if _, serr := txns.Span(b.Data); serr != nil {
			return fmt.Errorf("segment %s: the batch at sequence %d: %w", st.Key, b.Seq, serr)
		}
	}
	if err == io.EOF {
		return nil
	}
	return fmt.Errorf("segment %s: %w", st.Key, err)
}

// getSegment reads a segment whole; unlike get, a failure is returned.
func (s *Standby) getSegment(ctx context.Context, key string) ([]byte, error) {
	rc, info, err := s.store.Get(ctx, key, objstore.GetOptions{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	if info.Size > maxSegment {
		return nil, fmt.Errorf("segment %s: %w: %d bytes, more than %d", key, restore.ErrCorrupt, info.Size, maxSegment)
	}
	return io.ReadAll(io.LimitReader(rc, maxSegment+1))
}
