package restore

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// TestRestoreAcrossBranch makes a child timeline the way a promotion
// would: timeline 2 branches from timeline 1 at sequence B, a database
// restored at B goes on writing other batches, and an archiver archives
// them as timeline 2. A restore of timeline 2 must follow timeline 1's
// segments up to B (not its later ones), then timeline 2's.
func TestRestoreAcrossBranch(t *testing.T) {
	a := sharedArchive(t)
	_, fs := copyBucket(t, a)
	ctx := context.Background()
	branch := batchEndingAtOrBefore(a.log, a.bases[0]+600)
	if branch >= a.bases[1] {
		t.Fatalf("branch point %d is not before the second base %d", branch, a.bases[1])
	}
	child := makeChild(t, fs, a, branch)

	// With timeline 2's own base at the branch point.
	dir, res := restoreFrom(t, fs, Options{})
	if res.Timeline != 2 || res.Sequence != child.latest() || res.Base.Timeline != 2 {
		t.Fatalf("latest: timeline %d sequence %d from base %d/%d; want timeline 2 sequence %d from its own base",
			res.Timeline, res.Sequence, res.Base.Timeline, res.Base.Sequence, child.latest())
	}
	checkContent(t, dir, child.log, child.names, res.Sequence)

	// Without it: from timeline 1's first base, through timeline 1's
	// segments up to the branch point, then timeline 2's.
	removeBase(t, fs, 2, branch)
	dir, res = restoreFrom(t, fs, Options{})
	if res.Timeline != 2 || res.Sequence != child.latest() || res.Base.Timeline != 1 || res.Base.Sequence != a.bases[0] {
		t.Fatalf("latest: timeline %d sequence %d from base %d/%d; want timeline 2 sequence %d from base 1/%d",
			res.Timeline, res.Sequence, res.Base.Timeline, res.Base.Sequence, child.latest(), a.bases[0])
	}
	checkContent(t, dir, child.log, child.names, res.Sequence)
	checkConsistency(t, dir)

	// A sequence that both timelines hold, with other batches: the newest
	// timeline by default, timeline 1 when asked.
	n := branch + 40
	dir, res = restoreFrom(t, fs, Options{ToSeq: seqp(n)})
	if res.Timeline != 2 {
		t.Fatalf("to %d: timeline %d, want the newest (2)", n, res.Timeline)
	}
	checkContent(t, dir, child.log, child.names, res.Sequence)
	dir1, res1 := restoreFrom(t, fs, Options{ToSeq: seqp(n), Timeline: 1})
	if res1.Timeline != 1 {
		t.Fatalf("to %d on timeline 1: timeline %d", n, res1.Timeline)
	}
	checkContent(t, dir1, a.log, a.names, res1.Sequence)
	if diff(readContent(t, dir), readContent(t, dir1)) == "" {
		t.Fatal("the two timelines restore to the same content after the branch: the test proves nothing")
	}

	// Before the branch point, timeline 2 holds timeline 1's batches.
	dir, res = restoreFrom(t, fs, Options{ToSeq: seqp(branch - 30), Timeline: 2})
	checkContent(t, dir, a.log, a.names, res.Sequence)

	rep := verify(t, fs, false)
	if !rep.OK() || len(rep.Coverage) != 2 {
		t.Fatalf("verify of the two timelines: %v, coverage %+v", rep.Problems, rep.Coverage)
	}
	m, _, _ := manifest.Load(ctx, fs)
	t.Logf("timelines %+v; coverage %+v", m.Timelines, rep.Coverage)
}

func restoreFrom(t *testing.T, s objstore.Store, opts Options) (string, Result) {
	t.Helper()
	opts.Dir = filepath.Join(t.TempDir(), "restored")
	opts.Logger = quiet()
	res, err := Run(context.Background(), s, opts)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return opts.Dir, res
}

func checkContent(t *testing.T, dir string, log []modelBatch, names []string, seq uint64) {
	t.Helper()
	if d := diff(readContent(t, dir), state(log, names, seq)); d != "" {
		t.Fatalf("restored at %d: %s", seq, d)
	}
}

// makeChild restores the archive at branch, adds timeline 2 to the
// manifest, and archives 200 new batches of the restored database on it.
// It takes timeline 2's first base at the branch point before the
// archiver starts (see the note in the report on archive.position).
func makeChild(t *testing.T, fs objstore.Store, a *archived, branch uint64) *source {
	t.Helper()
	dir, res := restoreFrom(t, fs, Options{ToSeq: seqp(branch)})
	if res.Sequence != branch {
		t.Fatalf("restored at %d, want %d", res.Sequence, branch)
	}
	var log []modelBatch
	for _, b := range a.log {
		if b.last() <= branch {
			log = append(log, b)
		}
	}
	src := newSource(t, dir, log, "cf1")
	_, _, err := manifest.Update(context.Background(), fs, nil, func(m *manifest.Manifest) error {
		_, err := m.AddTimeline(1, branch, time.Now())
		m.Writer = nil // the old writer is gone, as after a promotion
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	if b := takeBase(t, dir, fs, filepath.Join(work, "base")); b.Timeline != 2 || b.Sequence != branch {
		t.Fatalf("timeline 2's first base is %d/%d", b.Timeline, b.Sequence)
	}
	arch := startArchiver(t, dir, fs, filepath.Join(work, "archiver"))
	src.writeRandom(rand.New(rand.NewPCG(7, 8)), 200)
	waitFor(t, "timeline 2 to be archived", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	if arch.a.Timeline() != 2 {
		t.Fatalf("the archiver wrote timeline %d", arch.a.Timeline())
	}
	return src
}

func removeBase(t *testing.T, s objstore.Store, tl uint32, seq uint64) {
	t.Helper()
	_, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		m.Bases = slices.DeleteFunc(m.Bases, func(b manifest.Base) bool { return b.Timeline == tl && b.Sequence == seq })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
