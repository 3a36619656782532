package archive

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// notYetRetry is how often a base that the Source said it cannot take yet
// (ErrBaseNotYet: writes without the WAL, not flushed) is tried again. A
// Source answers that again at no cost until the database flushed.
const notYetRetry = time.Second

// firstBase takes the base that an archive without one needs before its
// first segment.
func (a *Archiver) firstBase(ctx context.Context) error {
	a.log.Info("taking a first base: the archive has none for this timeline")
	b, err := a.takeBase(ctx, nil)
	for tries := 0; errors.Is(err, ErrBaseNotYet); tries++ {
		if tries%60 == 0 {
			a.log.Warn("the first base must wait: the database holds writes that a base cannot see yet; trying again until the writer flushes",
				"every", notYetRetry, "why", err,
				"fix", "write with the WAL on; the base is taken once the writer flushes every column family")
		}
		select {
		case <-time.After(notYetRetry):
		case <-ctx.Done():
			return ctx.Err()
		}
		b, err = a.takeBase(ctx, nil)
	}
	if err != nil {
		return err
	}
	if a.next == 0 || a.next <= b.Sequence {
		a.next = b.Sequence + 1
		a.count(func(s *Stats) { s.LastSequence = b.Sequence })
	}
	a.archived(b.Sequence)
	return nil
}

// takeBase checkpoints the database, uploads what the bucket lacks, writes
// the file list and adds the base to the manifest (with extra, if set, in
// the same commit), all before it returns: the first base, the base that
// ends a hole, and `rockstream base`. The loop's periodic bases run in the
// background (basebg.go).
func (a *Archiver) takeBase(ctx context.Context, extra func(*manifest.Manifest, manifest.Base)) (manifest.Base, error) {
	j, err := a.checkpoint(extra)
	if err != nil {
		return manifest.Base{}, err
	}
	r := j.run(ctx, ctx)
	a.lists = r.lists
	if r.m != nil {
		a.m, a.etag = r.m, r.etag // nothing else wrote meanwhile
	}
	if r.err != nil {
		return manifest.Base{}, r.err
	}
	a.lastBase = r.committed
	return r.b, nil
}

// baseJob is one base after its checkpoint: the upload of its files, its
// file list, its commit and the check of its files. It works only on what
// it was handed, so that it can run beside the loop (basebg.go): the
// manifest as it was at the checkpoint (read only: a *manifest.Manifest is
// never changed in place, manifest.Update changes a fresh copy), a copy
// of the writer record, and the cache of file lists, which it owns until
// it returns it.
type baseJob struct {
	a       *Archiver // for its store, options, log and counters only
	m       *manifest.Manifest
	writer  manifest.Writer
	claimed bool
	dir     string // the checkpoint; removed when the job ends
	seq     uint64
	extra   func(*manifest.Manifest, manifest.Base)
	lists   map[string]*manifest.FileList
}

// baseResult is what a baseJob returns.
type baseResult struct {
	b         manifest.Base
	m         *manifest.Manifest // the manifest the commit wrote (if it did), and its ETag
	etag      string
	committed time.Time
	lists     map[string]*manifest.FileList // the cache, given back
	err       error
}

// checkpoint checkpoints the database into a fresh folder and returns the
// job that archives it. It runs on the loop's goroutine: the Source is
// used by one goroutine.
func (a *Archiver) checkpoint(extra func(*manifest.Manifest, manifest.Base)) (*baseJob, error) {
	dir, err := a.checkpointDir()
	if err != nil {
		return nil, err
	}
	seq, err := a.src.Checkpoint(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("checkpoint into %s: %w", dir, err)
	}
	return &baseJob{a: a, m: a.m, writer: a.writer, claimed: a.claimed, dir: dir, seq: seq, extra: extra, lists: a.lists}, nil
}

// run archives the checkpoint: uploads under uctx (a stop or a gap ends
// them), the commit and the check of the files after it under cctx (a
// commit under way is finished, within the stop's deadline).
func (j *baseJob) run(uctx, cctx context.Context) baseResult {
	defer os.RemoveAll(j.dir)
	r := baseResult{}
	r.b, r.m, r.etag, r.err = j.archive(uctx, cctx)
	r.committed, r.lists = j.a.opts.Now(), j.lists
	return r
}

func (j *baseJob) archive(uctx, cctx context.Context) (manifest.Base, *manifest.Manifest, string, error) {
	seq := j.seq
	b, fl, done, err := j.existingBase(uctx)
	if err != nil {
		return manifest.Base{}, nil, "", err
	}
	switch {
	case !done:
		if fl, err = j.uploadBase(uctx); err != nil {
			return manifest.Base{}, nil, "", err
		}
		b, err = manifest.PutFileList(uctx, j.a.store, fl)
		if objstore.IsPreconditionFailed(err) && j.claimed {
			b, err = j.replaceFileList(uctx, fl)
		}
		if err != nil {
			return manifest.Base{}, nil, "", fmt.Errorf("write the file list of the base at %d: %w", seq, err)
		}
	case fl != nil:
		if err := j.ensureFiles(uctx, fl); err != nil {
			return manifest.Base{}, nil, "", fmt.Errorf("the stored base at %d (the file list of an earlier try) is not whole, so it is not added: %w; delete %s and take the base again", seq, err, b.FileList)
		}
	}
	if err := uctx.Err(); err != nil {
		return manifest.Base{}, nil, "", fmt.Errorf("the base at %d, before its commit: %w", seq, err)
	}
	var as *manifest.Writer
	if j.claimed {
		as = &j.writer
	}
	m, etag, err := manifest.Update(cctx, j.a.store, as, func(m *manifest.Manifest) error {
		if !hasBase(m, b) {
			m.Bases = append(m.Bases, b)
		}
		if j.extra != nil {
			j.extra(m, b)
		}
		return nil
	})
	if err != nil {
		return manifest.Base{}, nil, "", fmt.Errorf("add the base at %d to the manifest: %w", seq, err)
	}
	if fl != nil {
		if err := j.ensureFiles(cctx, fl); err != nil {
			return manifest.Base{}, m, etag, fmt.Errorf("the base at %d is in the manifest, but: %w", seq, err)
		}
	}
	j.a.count(func(s *Stats) {
		s.Bases++
		if b.Time.After(s.LastBase) {
			s.LastBase = b.Time
		}
	})
	j.a.log.Info("base archived", "timeline", b.Timeline, "sequence", b.Sequence, "files", b.FileCount, "bytes", b.Size)
	return b, m, etag, nil
}

// replaceFileList replaces the file list of another archiver's base at the
// same sequence (two archivers of one database started at once), which the
// manifest does not name: that archiver is fenced, or this one is, which
// checkFence tells. The files of the base are this archiver's already
// (baseUpload.put replaced those that differed).
func (j *baseJob) replaceFileList(ctx context.Context, fl *manifest.FileList) (manifest.Base, error) {
	if err := j.checkFence(ctx); err != nil {
		return manifest.Base{}, err
	}
	j.a.log.Warn("another archiver wrote a file list for this base; it is fenced, replacing it", "key", fl.Base().FileList)
	return manifest.ReplaceFileList(ctx, j.a.store, fl)
}

// existingBase finds a base of this timeline at seq that is stored
// already: in the manifest (no write since the last base), or only as a
// complete file list (an earlier try that stopped before the manifest),
// which it returns to be checked. Its files are never uploaded again but
// to replace a missing one: they would overwrite that base's.
func (j *baseJob) existingBase(ctx context.Context) (manifest.Base, *manifest.FileList, bool, error) {
	a, seq, tl := j.a, j.seq, j.writer.Timeline
	for _, b := range j.m.Bases {
		if b.Timeline == tl && b.Sequence == seq {
			a.log.Info("no write since the last base; it stands", "timeline", tl, "sequence", seq)
			return b, nil, true, nil
		}
	}
	key := manifest.FileListKey(tl, seq)
	fl, _, err := manifest.ReadFileList(ctx, a.store, key)
	if objstore.IsNotFound(err) {
		return manifest.Base{}, nil, false, nil
	}
	if errors.Is(err, manifest.ErrInvalid) {
		return manifest.Base{}, nil, false, fmt.Errorf("the stored base at %d: %w; delete %s and take the base again", seq, err, key)
	}
	if err != nil {
		return manifest.Base{}, nil, false, fmt.Errorf("look for a stored base at %d: %w", seq, err)
	}
	if fl.Identity != j.m.Identity {
		return manifest.Base{}, nil, false, fmt.Errorf("the stored base at %d is of database %s, not of this archive's %s: %w; delete %s and take the base again",
			seq, fl.Identity, j.m.Identity, manifest.ErrInvalid, key)
	}
	a.log.Info("a complete base at this sequence is stored already; adding it to the manifest", "timeline", tl, "sequence", seq)
	return fl.Base(), fl, true, nil
}

func hasBase(m *manifest.Manifest, b manifest.Base) bool {
	for _, x := range m.Bases {
		if x.Timeline == b.Timeline && x.Sequence == b.Sequence {
			return true
		}
	}
	return false
}

// checkpointDir returns a fresh path for a checkpoint of this process,
// removing the leftovers of processes that are gone (a running archiver and
// a `rockstream base` may share the work folder).
func (a *Archiver) checkpointDir() (string, error) {
	if err := os.MkdirAll(a.opts.WorkDir, 0o755); err != nil {
		return "", fmt.Errorf("work folder: %w", err)
	}
	old, _ := filepath.Glob(filepath.Join(a.opts.WorkDir, "checkpoint-*"))
	for _, o := range old {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(o), "checkpoint-%d-", &pid); err == nil && !alive(pid) {
			os.RemoveAll(o)
		}
	}
	return filepath.Join(a.opts.WorkDir, fmt.Sprintf("checkpoint-%d-%d", os.Getpid(), a.opts.Now().UnixNano())), nil
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// uploadBase uploads the files of the checkpoint in dir, in parallel,
// skipping SST files that committed bases hold, and returns the file list.
func (j *baseJob) uploadBase(ctx context.Context) (*manifest.FileList, error) {
	a, dir, seq := j.a, j.dir, j.seq
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w", dir, err)
	}
	have, err := j.committedSSTs(ctx)
	if err != nil {
		return nil, err
	}
	fl := &manifest.FileList{Format: manifest.Format, Identity: j.m.Identity, Timeline: j.writer.Timeline, Sequence: seq, Created: a.opts.Now().UTC()}
	var total int64
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() {
			return nil, fmt.Errorf("checkpoint %s: %s is not a regular file", dir, e.Name())
		}
		fl.Files = append(fl.Files, manifest.File{Name: e.Name(), Size: info.Size()})
		total += info.Size()
		if strings.HasPrefix(e.Name(), "OPTIONS-") && e.Name() > fl.Options {
			fl.Options = e.Name()
		}
	}
	up := baseUpload{j: j, dir: dir, seq: seq, have: have, total: total}
	if err := up.all(ctx, fl.Files); err != nil {
		return nil, err
	}
	sort.Slice(fl.Files, func(i, j int) bool { return fl.Files[i].Name < fl.Files[j].Name })
	a.log.Info("base files stored", "sequence", seq, "files", len(fl.Files), "bytes", total,
		"uploaded_bytes", up.sent.Load(), "shared_files", up.shared.Load())
	return fl, nil
}

// committedSSTs returns the SST files that the bases the manifest names
// now hold: a new base reuses only those. An SST file that is stored but
// that no committed base names (left by an upload that stopped, or about
// to be deleted by a prune) is uploaded again, which refreshes it, so that
// a prune's sweep, which spares SST files written within its grace, leaves
// it. A file list that cannot be read only means that its files are
// uploaded again.
func (j *baseJob) committedSSTs(ctx context.Context) (map[string]bool, error) {
	m, _, err := manifest.Load(ctx, j.a.store)
	if err != nil {
		return nil, fmt.Errorf("read the manifest for the SST files that bases hold: %w", err)
	}
	return j.namedSSTs(ctx, m)
}

// namedSSTs returns the SST files that the bases of m hold. A list that
// cannot be read counts as naming none. The cache of lists keeps only
// those of m's bases, so that the lists of bases a prune dropped go.
func (j *baseJob) namedSSTs(ctx context.Context, m *manifest.Manifest) (map[string]bool, error) {
	a := j.a
	have := map[string]bool{}
	lists := make(map[string]*manifest.FileList, len(m.Bases))
	for _, b := range m.Bases {
		fl := j.lists[b.FileList]
		if fl == nil {
			var err error
			if fl, err = manifest.LoadFileList(ctx, a.store, m, b); err != nil {
				if ctx.Err() != nil {
					return nil, err
				}
				a.log.Warn("cannot read a base's file list: its SST files are uploaded again", "base", b.FileList, "error", err)
				continue
			}
		}
		lists[b.FileList] = fl
		for _, f := range fl.Files {
			if manifest.IsSST(f.Name) {
				have[f.Key] = true
			}
		}
	}
	j.lists = lists
	return have, nil
}

// ensureFiles looks, once the manifest names the base of fl (or before an
// adopted list is added), at every file of the base and at fl itself, and
// puts again from the checkpoint in dir any that is missing: a prune's
// sweep that judged it unused before the base's file list appeared or the
// commit landed, whose delete was already on its way (a sweep checks the
// manifest right before each delete, and looks at an SST file's age before
// that, so a later sweep sees the new base and keeps its files).
func (j *baseJob) ensureFiles(ctx context.Context, fl *manifest.FileList) error {
	a := j.a
	err := eachFile(ctx, a.opts.Concurrency, fl.Files, func(ctx context.Context, f *manifest.File) error {
		return j.ensureFile(ctx, fl.Sequence, f)
	})
	if err != nil {
		return err
	}
	key := fl.Base().FileList
	_, err = a.store.Head(ctx, key)
	if objstore.IsNotFound(err) {
		a.log.Warn("the file list of the new base was deleted meanwhile (a prune?); writing it again", "key", key)
		_, err = manifest.PutFileList(ctx, a.store, fl)
	}
	if err != nil {
		return fmt.Errorf("check the file list %s: %w", key, err)
	}
	return nil
}

// ensureFile looks at file f of the base at seq and puts it again from
// the checkpoint in dir when it is missing.
func (j *baseJob) ensureFile(ctx context.Context, seq uint64, f *manifest.File) error {
	a := j.a
	_, err := a.store.Head(ctx, f.Key)
	if err == nil {
		return nil
	}
	if !objstore.IsNotFound(err) {
		return fmt.Errorf("check the files of the base at %d: %w", seq, err)
	}
	a.log.Warn("a file of the new base was deleted meanwhile (a prune?); uploading it again", "key", f.Key)
	return j.putAgain(ctx, f)
}

// putAgain uploads file f of a base from the checkpoint in dir, which must
// hold the same bytes (an adopted file list may be of an earlier
// checkpoint).
func (j *baseJob) putAgain(ctx context.Context, f *manifest.File) error {
	path := filepath.Join(j.dir, f.Name)
	if sum, err := hashFile(path); err != nil || sum != f.SHA256 {
		return fmt.Errorf("%s (%s) is missing from the store, and this checkpoint holds no copy of it to upload again", f.Key, f.Name)
	}
	u := baseUpload{j: j}
	err := u.putFile(ctx, path, f, objstore.PutOptions{IfNoneMatch: !manifest.IsSST(f.Name)})
	if objstore.IsPreconditionFailed(err) && u.sameBytes(ctx, f) {
		return nil // there again, with the same bytes
	}
	return err
}

// baseUpload is one base's file uploads.
type baseUpload struct {
	j                  *baseJob
	dir                string
	seq                uint64
	have               map[string]bool
	total              int64
	done, sent, shared atomic.Int64
	fenceMu            sync.Mutex // one fence check at a time
}

func (u *baseUpload) all(ctx context.Context, files []manifest.File) error {
	return eachFile(ctx, u.j.a.opts.Concurrency, files, u.one)
}

// eachFile runs fn on every file, at most n at once, and returns the
// first error, cancelling the calls still running.
func eachFile(ctx context.Context, n int, files []manifest.File, fn func(context.Context, *manifest.File) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		slots = make(chan struct{}, max(n, 1))
	)
	for i := range files {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if err := fn(ctx, &files[i]); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return first
}

// one hashes a file, names it, and uploads it unless the bucket has it.
func (u *baseUpload) one(ctx context.Context, f *manifest.File) error {
	path := filepath.Join(u.dir, f.Name)
	sum, err := hashFile(path)
	if err != nil {
		return err
	}
	f.SHA256 = sum
	if f.Key, err = manifest.FileKey(u.j.writer.Timeline, u.seq, f.Name, sum); err != nil {
		return fmt.Errorf("base file %s: %w", f.Name, err)
	}
	// A file stored only with a key older than the current one is
	// uploaded again (underCurrentKey).
	if u.have[f.Key] && u.underCurrentKey(ctx, f.Key) {
		u.shared.Add(1)
		u.progress(f.Size)
		return nil
	}
	if err := u.put(ctx, path, f); err != nil {
		return err
	}
	u.sent.Add(f.Size)
	u.progress(f.Size)
	return nil
}

// put uploads a file. An SST file is put plainly (its key is its content,
// and a put refreshes one that no committed base names). Any other file is
// put create-only: a key that exists with the same bytes is fine (our own
// earlier try); other bytes are an earlier try that did not finish,
// replaced while we are still the writer.
func (u *baseUpload) put(ctx context.Context, path string, f *manifest.File) error {
	if manifest.IsSST(f.Name) {
		return u.putFile(ctx, path, f, objstore.PutOptions{})
	}
	err := u.putFile(ctx, path, f, objstore.PutOptions{IfNoneMatch: true})
	if !objstore.IsPreconditionFailed(err) {
		return err
	}
	if u.sameBytes(ctx, f) {
		return nil
	}
	if u.j.claimed {
		u.fenceMu.Lock()
		err := u.j.checkFence(ctx)
		u.fenceMu.Unlock()
		if err != nil {
			return err
		}
	}
	return u.putFile(ctx, path, f, objstore.PutOptions{})
}

func (u *baseUpload) putFile(ctx context.Context, path string, f *manifest.File, opts objstore.PutOptions) error {
	file, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("base file %s: %w", f.Name, err)
	}
	defer file.Close()
	if _, err := u.j.a.store.Put(ctx, f.Key, file, f.Size, opts); err != nil {
		return fmt.Errorf("upload base file %s to %s: %w", f.Name, f.Key, err)
	}
	return nil
}

func (u *baseUpload) sameBytes(ctx context.Context, f *manifest.File) bool {
	rc, info, err := u.j.a.store.Get(ctx, f.Key, objstore.GetOptions{})
	if err != nil {
		return false
	}
	defer rc.Close()
	h := sha256.New()
	if info.Size != f.Size {
		return false
	}
	if _, err := io.Copy(h, rc); err != nil {
		return false
	}
	return hex.EncodeToString(h.Sum(nil)) == f.SHA256
}

func (u *baseUpload) progress(n int64) {
	d := u.done.Add(n)
	if u.j.a.opts.Progress != nil {
		u.j.a.opts.Progress(d, u.total)
	}
}

func hashFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// rotatedStore is an encrypting store (objstore/cryptstore) whose keyring
// holds older keys after a rotation: an SST file that a committed base
// names may be stored with one of them.
type rotatedStore interface {
	objstore.Encrypting
	HasCurrent(ctx context.Context, key string) (bool, error)
}

// underCurrentKey says whether a stored file that a committed base names
// may be reused by the new base: always, unless the store's keyring was
// rotated and the file is stored only with an older key. Such a file is
// uploaded again with the current key, so that the bases taken after a
// rotation need only the new key, and the old key's objects age out with
// the bases that name them. A Head that fails counts as not stored.
func (u *baseUpload) underCurrentKey(ctx context.Context, key string) bool {
	rs, ok := u.j.a.store.(rotatedStore)
	if !ok || len(rs.KeyIDs()) < 2 {
		return true
	}
	has, err := rs.HasCurrent(ctx, key)
	return err == nil && has
}
