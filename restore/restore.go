package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/rocks"
)

// Errors of the package, for errors.Is.
var (
	// ErrCorrupt means that an object of the archive is damaged, missing,
	// or does not match what refers to it (a base file's size or SHA-256,
	// a segment's sequences). The error names the key.
	ErrCorrupt = errors.New("corrupt archive")
	// ErrNotEmpty means that the destination holds files and Force is not
	// set.
	ErrNotEmpty = errors.New("destination not empty")
)

// Options tune Run.
type Options struct {
	// Dir is where the database is built. It must not exist, or be an
	// empty folder, or (with Force) a folder whose contents are replaced.
	Dir string
	// ToSeq, when set, is the target sequence.
	ToSeq *uint64
	// ToTime, when not zero, is the target time. ToSeq and ToTime are
	// exclusive; with neither, the latest restorable state.
	ToTime time.Time
	// Timeline, when not 0, is the timeline to restore.
	Timeline uint32
	// Force replaces a non-empty Dir, at the final rename only.
	Force bool
	// Concurrency is the number of base files downloaded at once, and the
	// ranged gets in flight per file (default 4).
	Concurrency int
	// Progress, if set, is told of the bytes read (base files, then
	// segments) out of the total the plan needs.
	Progress func(done, total int64)
	// BeforeInstall, if set, is called with the built folder (beside Dir)
	// and the result, before the folder is synced and renamed into place;
	// an error stops the restore, which then leaves nothing. A caller adds
	// files of its own there, so that they arrive with the database in the
	// one rename (the standby its timeline record).
	BeforeInstall func(tmp string, res Result) error
	// Operators are the application's own merge operators (library
	// mode): the restore replays with them.
	Operators *rocks.Operators
	// HandOff writes the base and the archived batches up to the target
	// as WAL files and does not open the database: the application's own
	// RocksDB replays them at its first open. For a database whose options
	// name a merge operator or a comparator that rockstream does not have
	// (without HandOff, such a restore is refused before anything is
	// written). The restored folder is then not checked by opening it.
	HandOff bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o *Options) defaults() error {
	if o.Dir == "" {
		return errors.New("restore: no destination folder given")
	}
	if o.ToSeq != nil && !o.ToTime.IsZero() {
		return errors.New("restore: a target sequence and a target time are exclusive")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Result says what a restore built.
type Result struct {
	// Dir is the restored database's folder (absolute).
	Dir string
	// Timeline and Sequence are the restored state: the database holds
	// exactly the batches of Timeline's history up to Sequence.
	Timeline uint32
	Sequence uint64
	// Time is when the last applied batch was archived, or the base's
	// time when no batch was applied.
	Time time.Time
	// Base is the base the restore started from.
	Base manifest.Base
	// Segments, Batches and BatchBytes count what was replayed.
	Segments   int
	Batches    int64
	BatchBytes int64
	// BaseBytes and SegmentBytes count what was downloaded.
	BaseBytes    int64
	SegmentBytes int64
	// HandOffFiles are the WAL files written for the application to
	// replay (HandOff), in the temporary folder's path.
	HandOffFiles []string
	// Download, Replay and Finish are the durations of the phases: the
	// base's download and check; the replay up to its final flush; the
	// check of the result, the sync of its files and the rename.
	Download, Replay, Finish time.Duration
}

// Run restores the archive in store into opts.Dir. See the package
// documentation.
func Run(ctx context.Context, store objstore.Store, opts Options) (Result, error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	dst, err := checkDest(opts.Dir, opts.Force)
	if err != nil {
		return Result{}, err
	}
	dst.cleanLeftovers(opts.Logger)
	c, err := catalog.Load(ctx, store)
	if err != nil {
		return Result{}, fmt.Errorf("restore from %s: %w", store, err)
	}
	plan, err := choosePlan(ctx, store, c, opts)
	if err != nil {
		return Result{}, fmt.Errorf("restore from %s: %w", store, err)
	}
	return restorePlan(ctx, store, c, plan, dst, opts)
}

// restorePlan carries out plan into dst.
func restorePlan(ctx context.Context, store objstore.Store, c *catalog.Catalog, plan *manifest.Plan, dst *dest, opts Options) (Result, error) {
	log := opts.Logger
	log.Info("restoring", "from", store.String(), "timeline", plan.Timeline, "target", plan.Target,
		"base", plan.Base.Sequence, "base_timeline", plan.Base.Timeline, "segments", len(plan.Steps), "into", dst.dir)
	tmp, err := dst.temp()
	if err != nil {
		return Result{}, err
	}
	defer dst.unlock()
	res, err := build(ctx, store, c, plan, tmp, opts)
	if err == nil && opts.BeforeInstall != nil {
		err = opts.BeforeInstall(tmp, res)
	}
	if err == nil {
		start := time.Now()
		err = dst.install(tmp, opts.Force, log)
		res.Finish += time.Since(start)
	}
	if err != nil {
		if rmErr := os.RemoveAll(tmp); rmErr != nil {
			log.Error("cannot remove the temporary folder", "dir", tmp, "error", rmErr)
		}
		return Result{}, err
	}
	res.Dir = dst.dir
	log.Info("restored", "timeline", res.Timeline, "sequence", res.Sequence, "time", res.Time,
		"batches", res.Batches, "download", res.Download.Round(time.Millisecond), "replay", res.Replay.Round(time.Millisecond))
	return res, nil
}

// build downloads the base into tmp, replays the segments and checks the
// result.
func build(ctx context.Context, store objstore.Store, c *catalog.Catalog, plan *manifest.Plan, tmp string, opts Options) (Result, error) {
	res := Result{Timeline: plan.Timeline, Base: plan.Base, Sequence: plan.Base.Sequence, Time: plan.Base.Time}
	fl, err := manifest.LoadFileList(ctx, store, c.Manifest, plan.Base)
	if objstore.IsNotFound(err) {
		err = fmt.Errorf("%w: the manifest names it, but %w", ErrCorrupt, err)
	}
	if err != nil {
		return res, fmt.Errorf("restore the base at %d: %w", plan.Base.Sequence, err)
	}
	prog := newMeter(opts.Progress, fl.Size()+planBytes(c, plan))
	start := time.Now()
	if err := fetchFiles(ctx, store, fl, tmp, opts.Concurrency, prog.add); err != nil {
		if errors.Is(err, ErrCorrupt) {
			err = fmt.Errorf("%w (the base's file list is %s)", err, plan.Base.FileList)
		}
		return res, err
	}
	res.BaseBytes = fl.Size()
	res.Download = time.Since(start)
	start = time.Now()
	if err := replay(ctx, store, plan, tmp, opts, &res, prog.add); err != nil {
		return res, err
	}
	res.Replay = time.Since(start)
	if opts.HandOff {
		opts.Logger.Warn("hand-off: the database was not opened; its own RocksDB, opened with the application's options, replays the archived WAL at its first open",
			"wal_files", len(res.HandOffFiles), "from_sequence", plan.Base.Sequence+1, "to_sequence", res.Sequence)
		return res, nil
	}
	start = time.Now()
	if err := finish(ctx, store, plan, tmp, &res, opts); err != nil {
		return res, err
	}
	res.Finish = time.Since(start)
	return res, nil
}

// planBytes is the size of the segments of plan.
func planBytes(c *catalog.Catalog, plan *manifest.Plan) int64 {
	sizes := map[string]int64{}
	for _, segs := range c.Segments {
		for _, s := range segs {
			sizes[s.Key] = s.Size
		}
	}
	var n int64
	for _, st := range plan.Steps {
		n += sizes[st.Key]
	}
	return n
}

// meter adds up bytes for a Progress callback, from several goroutines.
type meter struct {
	fn    func(done, total int64)
	total int64
	done  atomic.Int64
}

func newMeter(fn func(done, total int64), total int64) *meter {
	return &meter{fn: fn, total: total}
}

func (m *meter) add(n int64) {
	d := m.done.Add(n)
	if m.fn != nil {
		m.fn(min(d, m.total), m.total)
	}
}
