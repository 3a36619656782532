package restore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// Concurrency is the number of objects read at once (default 4).
	Concurrency int
	// Drill also restores the latest state, and reproduces the newest base
	// from an older one, in a scratch folder that is removed afterwards.
	Drill bool
	// ScratchDir holds the drill's folder (default os.TempDir()).
	ScratchDir string
	// Progress, if set, is told of the bytes read out of the total.
	Progress func(done, total int64)
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (o *VerifyOptions) defaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.ScratchDir == "" {
		o.ScratchDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Report is what Verify found. Its JSON (MarshalJSON) is what
// 'rockstream verify --json' prints.
type Report struct {
	Location string
	// Problems lists every bad object, by key; empty when all is well.
	Problems []Problem
	// What was read.
	Bases        int
	Files        int   // distinct objects of base files
	FileBytes    int64 // their bytes
	Segments     int
	SegmentBytes int64
	Batches      int64
	// InHoles counts the segments that start inside an ended hole, which
	// no restore reaches (catalog.InHole): left by a hole's base that never
	// committed; a prune deletes them with the segments around them.
	InHoles int
	// Coverage is what can be restored, per timeline, as the objects
	// themselves give it (status derives it from key names).
	Coverage []manifest.Coverage
	// Drill is set when the drill ran.
	Drill *DrillReport
	// MissingKeys are the ids of the keys that encrypted objects of
	// Problems were written with and that the keyring lacks: the archive
	// may be whole, the key file is not.
	MissingKeys []string

	mu sync.Mutex
}

// Problem is one bad object and what is wrong with it. Key is empty for a
// problem of the archive as a whole.
type Problem struct {
	Key  string `json:"key"`
	What string `json:"what"`
}

func (p Problem) String() string {
	if p.Key == "" {
		return p.What
	}
	return p.Key + ": " + p.What
}

// OK reports whether Verify found nothing wrong.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// reportJSON is a Report for programs: snake_case keys, "ok", and empty
// lists as [] rather than null.
type reportJSON struct {
	Location     string              `json:"location"`
	OK           bool                `json:"ok"`
	Bases        int                 `json:"bases"`
	Files        int                 `json:"files"`
	FileBytes    int64               `json:"file_bytes"`
	Segments     int                 `json:"segments"`
	SegmentBytes int64               `json:"segment_bytes"`
	Batches      int64               `json:"batches"`
	InHoles      int                 `json:"segments_in_holes"`
	Coverage     []manifest.Coverage `json:"coverage"`
	Drill        *DrillReport        `json:"drill,omitempty"`
	Problems     []Problem           `json:"problems"`
	MissingKeys  []string            `json:"missing_keys"`
}

// MarshalJSON writes the report with snake_case keys and its OK as "ok".
func (r *Report) MarshalJSON() ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return json.Marshal(reportJSON{
		Location: r.Location, OK: len(r.Problems) == 0,
		Bases: r.Bases, Files: r.Files, FileBytes: r.FileBytes,
		Segments: r.Segments, SegmentBytes: r.SegmentBytes, Batches: r.Batches, InHoles: r.InHoles,
		Coverage: orEmpty(r.Coverage), Drill: r.Drill,
		Problems: orEmpty(r.Problems), MissingKeys: orEmpty(r.MissingKeys),
	})
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (r *Report) add(key, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Problems = append(r.Problems, Problem{Key: key, What: fmt.Sprintf(format, args...)})
	for _, a := range args {
		if err, ok := a.(error); ok {
			r.missingKey(err)
		}
	}
}

// missingKey records the key of err, when it is an object encrypted with
// a key that the keyring lacks. The caller holds r.mu.
func (r *Report) missingKey(err error) {
	var mk *crypt.MissingKeyError
	if errors.As(err, &mk) && !slices.Contains(r.MissingKeys, mk.ID.String()) {
		r.MissingKeys = append(r.MissingKeys, mk.ID.String())
	}
}

func (r *Report) count(fn func(r *Report)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r)
}

// Verify reads every object that a restore could need and reports what is
// wrong with each (see the package documentation). It returns an error
// only when it cannot do its job: no archive, a store that cannot be
// reached, a cancelled context. Damage is in the Report.
func Verify(ctx context.Context, s objstore.Store, opts VerifyOptions) (*Report, error) {
	opts.defaults()
	rep := &Report{Location: s.String()}
	m, _, err := manifest.Load(ctx, s)
	if errors.Is(err, manifest.ErrInvalid) {
		rep.add(manifest.ManifestKey, "%v", err)
		return rep, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify %s: %w", s, err)
	}
	c, err := catalog.Load(ctx, s)
	switch {
	case err == nil:
		m = c.Manifest
	case fatal(ctx, err), m.CheckStore(s) != nil:
		return nil, fmt.Errorf("verify %s: %w", s, err)
	default:
		rep.add("", "status cannot read the archive: %v", err)
		c = nil
	}
	v := &verifier{s: s, m: m, c: c, opts: opts, rep: rep}
	if err := v.run(ctx); err != nil {
		return nil, fmt.Errorf("verify %s: %w", s, err)
	}
	slices.SortStableFunc(rep.Problems, func(a, b Problem) int { return cmp.Compare(a.Key, b.Key) })
	return rep, nil
}

// verifier is one run of Verify.
type verifier struct {
	s    objstore.Store
	m    *manifest.Manifest
	c    *catalog.Catalog // nil when status cannot read the archive
	opts VerifyOptions
	rep  *Report
	prog *meter
}

func (v *verifier) run(ctx context.Context) error {
	segs, err := v.listSegments(ctx)
	if err != nil {
		return err
	}
	files, badBases, err := v.loadFileLists(ctx)
	if err != nil {
		return err
	}
	v.prog = newMeter(v.opts.Progress, totalBytes(segs, files))
	if err := v.checkFiles(ctx, files, badBases); err != nil {
		return err
	}
	if err := v.checkSegments(ctx, segs); err != nil {
		return err
	}
	v.compareRanges(segs, badBases)
	if v.opts.Drill {
		return v.drill(ctx)
	}
	return nil
}

// fatal reports an error that stops Verify: the store cannot be used, or
// the context ended. Any other error is a problem of one object.
func fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, objstore.ErrUnreachable) ||
		errors.Is(err, objstore.ErrAccessDenied) || errors.Is(err, objstore.ErrNoBucket)
}

func totalBytes(segs map[uint32][]*segCheck, files map[string]*fileRef) int64 {
	var n int64
	for _, ss := range segs {
		for _, sg := range ss {
			n += sg.size
		}
	}
	for _, f := range files {
		n += f.size
	}
	return n
}

// compareRanges compares the restorable ranges that status gives (from key
// names, through the catalog) with those that the objects give, and keeps
// the latter in the report.
func (v *verifier) compareRanges(segs map[uint32][]*segCheck, badBases map[string]bool) {
	good := *v.m
	good.Bases = slices.DeleteFunc(slices.Clone(v.m.Bases), func(b manifest.Base) bool { return badBases[b.FileList] })
	actual, err := manifest.Restorable(&good, trueSegments(v.m, segs))
	if err != nil {
		v.rep.add(manifest.ManifestKey, "the segments do not fit the manifest: %v", err)
		return
	}
	v.rep.Coverage = actual
	if v.c == nil {
		return
	}
	said, err := manifest.Restorable(v.m, v.c.Ranges())
	if err != nil {
		v.rep.add("", "status cannot work out the restorable ranges: %v", err)
		return
	}
	for _, cv := range actual {
		if s := coverageOf(said, cv.Timeline).Ranges; !slices.Equal(s, cv.Ranges) {
			v.rep.add("", "timeline %d: status says restorable %s, the objects allow %s",
				cv.Timeline, manifest.RangesText(s), manifest.RangesText(cv.Ranges))
		}
	}
}
