package standby

import (
	"fmt"

	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCatchUpAfterRestart: a standby started again behind a backlog of at
// least CatchUpBytes replays it as a restore does (the log says so, the
// batches count), then follows what comes after by its own path; a
// standby below the threshold follows the backlog segment by segment. Both
// end equal to the source.
func TestCatchUpAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bytes   int64
		catches bool
	}{{"over the threshold", 1, true}, {"under it", 1 << 40, false}, {"off", -1, false}} {
		t.Run(tc.name, func(t *testing.T) {
			store, _ := fileStore(t)
			src := newSource(t, filepath.Join(t.TempDir(), "db"))
			src.write(t, 50)
			arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
			dir := filepath.Join(t.TempDir(), "standby")
			opts := Options{Dir: dir, Poll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond, ManifestCheck: 200 * time.Millisecond}
			sb := startStandbyOpts(t, store, opts)
			waitFor(t, "the bootstrap", func() bool { return sb.sb.Status().Applied == src.latest() })
			if err := sb.stop(t); err != nil {
				t.Fatal(err)
			}
			behind := src.latest()
			src.write(t, 2000)
			backlog := src.latest()
			waitFor(t, "the backlog archived", func() bool { return arch.a.Stats().ArchivedSequence == backlog })

			var logs syncBuffer
			opts.CatchUpBytes, opts.Logger = tc.bytes, slog.New(slog.NewTextHandler(&logs, nil))
			sb = startStandbyOpts(t, store, opts)
			waitFor(t, "the backlog applied", func() bool { return sb.sb.Status().Applied == backlog })
			src.write(t, 100) // followed by the standby's own path
			waitFor(t, "the batches after it", func() bool { return sb.sb.Status().Applied == src.latest() })
			if st := sb.sb.Status(); st.State != Following || st.Batches < 2100 {
				t.Fatalf("status: %+v, want following with at least the 2100 batches after %d counted", st, behind)
			}
			if err := sb.stop(t); err != nil {
				t.Fatal(err)
			}
			out := logs.String()
			if got := strings.Contains(out, `msg="caught up"`); got != tc.catches {
				t.Fatalf("caught up as a restore does: %v, want %v; log:\n%s", got, tc.catches, out)
			}
			if tc.catches && !strings.Contains(out, "applied="+fmt.Sprint(backlog)) {
				t.Fatalf("the catch-up did not end at the backlog's last sequence %d; log:\n%s", backlog, out)
			}
			if d := secondaryDigest(t, dir).Diff(src.digest(t)); d != "" {
				t.Fatalf("the standby differs from the source: %s", d)
			}
		})
	}
}

// TestCatchUpWhenBehind: a running standby that finds its next segments
// waiting (its bucket reads held back while the source wrote a backlog, as
// when it falls behind) catches up as a restore does, then follows on; it
// ends equal to the source.
func TestCatchUpWhenBehind(t *testing.T) {
	// A look made earlier in the run (a segment applied after the
	// bootstrap) must not hold the one this test waits for.
	every := catchUpEvery
	catchUpEvery = 0
	t.Cleanup(func() { catchUpEvery = every })
	inner, _ := fileStore(t)
	fs := faultstore.New(inner)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 50)
	arch := startArchiver(t, src.dir, inner, 20*time.Millisecond)
	var logs syncBuffer
	sb := startStandbyOpts(t, fs, Options{Dir: filepath.Join(t.TempDir(), "standby"), Poll: 10 * time.Millisecond, MaxPoll: 50 * time.Millisecond,
		ManifestCheck: 200 * time.Millisecond, MissingCheck: time.Hour, CatchUpBytes: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	// The standby sees no new segment while the backlog is written.
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: "segments/", Err: objstore.ErrNotFound})
	src.write(t, 2000)
	backlog := src.latest()
	waitFor(t, "the backlog archived", func() bool { return arch.a.Stats().ArchivedSequence == backlog })
	if strings.Contains(logs.String(), "catching up") {
		t.Fatalf("caught up before the backlog:\n%s", logs.String())
	}
	fs.Reset()
	waitFor(t, "the backlog applied", func() bool { return sb.sb.Status().Applied == backlog })
	src.write(t, 100)
	waitFor(t, "the batches after it", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	if out := logs.String(); !strings.Contains(out, `msg="caught up"`) {
		t.Fatalf("the standby behind a backlog did not catch up as a restore does; log:\n%s", out)
	}
	if d := secondaryDigest(t, sb.sb.opts.Dir).Diff(src.digest(t)); d != "" {
		t.Fatalf("the standby differs from the source: %s", d)
	}
}
