package archive_test

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/segments"
)

// gateStore holds the puts of the files of the bases of timeline 1 in a
// range of sequences until the test opens the gate or the put's context
// ends: an upload as slow as the test needs, with no sleep.
type gateStore struct {
	objstore.Store
	mu       sync.Mutex
	from, to uint64 // bases at from < seq <= to are held
	key      string // and puts of this key
	open     chan struct{}
	seq      uint64 // the sequence of the last base held
	entered  int    // puts that reached the gate
	inflight int    // puts waiting at the gate now
	canceled int    // puts that their context ended while they waited
}

func newGateStore(s objstore.Store) *gateStore {
	return &gateStore{Store: s, open: make(chan struct{})}
}

// hold holds the puts of the bases of timeline 1 after from, up to to.
func (g *gateStore) hold(from, to uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.from, g.to = from, to
}

// holdKey holds the puts of key.
func (g *gateStore) holdKey(key string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.key = key
}

func (g *gateStore) holds(key string) (uint64, bool) {
	if key == g.key {
		return 0, true
	}
	var seq uint64
	if _, err := fmt.Sscanf(key, manifest.BasesPrefix+"00000001/%016x/", &seq); err != nil {
		return 0, false
	}
	return seq, g.from < seq && seq <= g.to
}

func (g *gateStore) release() { close(g.open) }

func (g *gateStore) heldSeq() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seq
}

func (g *gateStore) state() (entered, inflight, canceled int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.entered, g.inflight, g.canceled
}

func (g *gateStore) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	g.mu.Lock()
	seq, held := g.holds(key)
	if held {
		g.seq = max(g.seq, seq)
		g.entered++
		g.inflight++
	}
	g.mu.Unlock()
	if held {
		var err error
		select {
		case <-g.open:
		case <-ctx.Done():
			err = ctx.Err()
		}
		g.mu.Lock()
		g.inflight--
		if err != nil {
			g.canceled++
		}
		g.mu.Unlock()
		if err != nil {
			return objstore.ObjectInfo{}, err
		}
	}
	return g.Store.Put(ctx, key, body, size, opts)
}

// writeTrimmed writes n batches and drops all but the last keep of the
// WAL in one step, before the archiver can read them: the WAL needed next
// is gone.
func (m *memSource) writeTrimmed(rng *rand.Rand, n, keep int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.writeLocked(rng, n)
	m.trimmed = m.batches[len(m.batches)-keep].Seq
}

// baseHeld starts an archiver whose second base (due after BaseWALBytes)
// is held at its upload: it returns with that base's upload waiting at
// the gate, and the base's sequence.
func baseHeld(t *testing.T, g *gateStore, src *memSource, rng *rand.Rand, opts archive.Options) (*running, uint64) {
	t.Helper()
	src.write(rng, 120)
	opts.BaseWALBytes = 20 << 10
	r := start(t, src, g, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	g.hold(src.lastSeq(), manifest.MaxSequence)
	src.write(rng, 200) // about 35 KiB: the second base is due once read
	waitFor(t, "the second base's upload to reach the gate", func() bool { e, _, _ := g.state(); return e > 0 })
	seq := g.heldSeq()
	g.hold(seq-1, seq) // that base only
	return r, seq
}

// TestBaseInBackground: while a base's upload is held, the archiver goes
// on reading, sealing and uploading the batches written meanwhile; then
// the base commits, and the archive holds every batch once. Before bases
// went to the background, reading stopped for the whole upload.
func TestBaseInBackground(t *testing.T) {
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(31))
	r, seq := baseHeld(t, g, src, rng, testOptions(t, "w"))
	before := r.a.Stats().Segments
	src.write(rng, 150)
	last := src.lastSeq()
	waitFor(t, "the batches written during the base to be archived", func() bool {
		s := r.a.Stats()
		return s.ArchivedSequence == last && s.Segments > before
	})
	st := r.a.Stats()
	if st.Bases != 1 {
		t.Fatalf("%d bases while the second one's upload is held, want 1", st.Bases)
	}
	if _, inflight, _ := g.state(); inflight == 0 {
		t.Fatal("the base's upload is no longer held")
	}
	t.Logf("segments uploaded while the base's upload was held: %d (sequences %d..%d)", st.Segments-before, seq+1, last)
	g.release()
	waitFor(t, "the base to commit", func() bool { return r.a.Stats().Bases == 2 })
	src.write(rng, 30)
	waitFor(t, "the archive after the base", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m := checkBasesWhole(t, g)
	if !hasBaseAt(m, seq) {
		t.Fatalf("bases %+v, want one at %d", m.Bases, seq)
	}
	sameBatches(t, archived(t, g, 1), src.since(firstBase(t, g, 1).Sequence))
}

// TestStopDuringBackgroundBase: a stop while a base uploads in the
// background returns clean within the stop's deadline, once the base's
// goroutine ended, with nothing of the base committed; the restart takes
// it again and archives on.
func TestStopDuringBackgroundBase(t *testing.T) {
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(32))
	opts := testOptions(t, "w")
	opts.DrainTimeout = 3 * time.Second
	r, seq := baseHeld(t, g, src, rng, opts)
	src.write(rng, 40)
	waitFor(t, "the batches written during the base to be read", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	t0 := time.Now()
	if err := r.stop(t); err != nil {
		t.Fatalf("the stop: %v", err)
	}
	if d := time.Since(t0); d >= opts.DrainTimeout {
		t.Fatalf("the stop took %v, past its deadline of %v", d, opts.DrainTimeout)
	}
	if _, inflight, canceled := g.state(); inflight != 0 || canceled == 0 {
		t.Fatalf("after Run returned: %d base puts still waiting, %d canceled; want none waiting, some canceled", inflight, canceled)
	}
	ctx := context.Background()
	m, _, err := manifest.Load(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bases) != 1 {
		t.Fatalf("bases %+v after a stop during the second one's upload, want only the first", m.Bases)
	}
	if _, err := g.Head(ctx, manifest.FileListKey(1, seq)); !objstore.IsNotFound(err) {
		t.Fatalf("the abandoned base's file list: %v, want none", err)
	}
	sameBatches(t, archived(t, g, 1), src.since(firstBase(t, g, 1).Sequence))

	g.release()
	src.write(rng, 30)
	r = start(t, src, g, opts) // walBytes starts at 0 again: no base is due
	waitFor(t, "the restart to catch up", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkBasesWhole(t, g)
	sameBatches(t, archived(t, g, 1), src.since(firstBase(t, g, 1).Sequence))
}

// TestGapDuringBackgroundBase: the WAL needed next goes while a base
// uploads in the background. The gap abandons that base, records the
// hole, and ends it with a base of its own; the hole is whole and the
// archive holds every batch around it.
func TestGapDuringBackgroundBase(t *testing.T) {
	g := newGateStore(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(33))
	r, held := baseHeld(t, g, src, rng, testOptions(t, "w"))
	waitFor(t, "the batches before the gap to be archived", func() bool { return r.a.Stats().ArchivedSequence == held })
	src.writeTrimmed(rng, 60, 20)
	waitFor(t, "the hole's base", func() bool { return r.a.Stats().Holes == 1 && r.a.Stats().Bases == 2 })
	if _, inflight, canceled := g.state(); inflight != 0 || canceled == 0 {
		t.Fatalf("the held base: %d puts still waiting, %d canceled; want it abandoned", inflight, canceled)
	}
	src.write(rng, 30)
	waitFor(t, "the archive after the hole", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	m := checkBasesWhole(t, g)
	if len(m.Holes) != 1 || m.Holes[0].From != held+1 {
		t.Fatalf("holes %+v, want one from %d", m.Holes, held+1)
	}
	end := m.Holes[0].To
	if end == manifest.MaxSequence || !hasBaseAt(m, end) || hasBaseAt(m, held) {
		t.Fatalf("hole %+v, bases %+v: want the hole ended by a base, and none at the abandoned %d", m.Holes[0], m.Bases, held)
	}
	var want []segments.Batch
	for _, b := range src.since(firstBase(t, g, 1).Sequence) {
		if b.Seq <= held || b.Seq > end {
			want = append(want, b)
		}
	}
	sameBatches(t, archived(t, g, 1), want)
}

func hasBaseAt(m *manifest.Manifest, seq uint64) bool {
	for _, b := range m.Bases {
		if b.Sequence == seq {
			return true
		}
	}
	return false
}

// TestStopDuringBackgroundCommit: a stop while the background base's
// commit is under way lets it finish within the stop's deadline; one that
// does not finish by then is abandoned, with nothing of it in the
// manifest, and Run still returns clean at the deadline.
func TestStopDuringBackgroundCommit(t *testing.T) {
	for _, finish := range []bool{true, false} {
		t.Run(fmt.Sprintf("finish=%v", finish), func(t *testing.T) {
			g := newGateStore(newStore(t))
			src := newMemSource("db-1")
			rng := rand.New(rand.NewSource(34))
			opts := testOptions(t, "w")
			opts.BaseWALBytes = 20 << 10
			opts.DrainTimeout = time.Second
			src.write(rng, 120)
			r := start(t, src, g, opts)
			waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
			g.holdKey(manifest.ManifestKey) // only a base's commit writes it here
			src.write(rng, 200)
			seq := src.lastSeq()
			waitFor(t, "the base's commit to reach the gate", func() bool { e, _, _ := g.state(); return e > 0 })
			waitFor(t, "the batches to be archived", func() bool { return r.a.Stats().ArchivedSequence == seq })
			t0 := time.Now()
			r.cancel()
			if finish {
				g.release()
			}
			if err := r.stop(t); err != nil {
				t.Fatalf("the stop: %v", err)
			}
			if d := time.Since(t0); d > opts.DrainTimeout+time.Second {
				t.Fatalf("the stop took %v, with a deadline of %v", d, opts.DrainTimeout)
			}
			if _, inflight, _ := g.state(); inflight != 0 {
				t.Fatal("Run returned while the base's commit still waited")
			}
			m := checkBasesWhole(t, g)
			if hasBaseAt(m, seq) != finish {
				t.Fatalf("bases %+v: a base at %d is %v, want %v", m.Bases, seq, hasBaseAt(m, seq), finish)
			}
			if !finish {
				g.release()
				r = start(t, src, g, opts)
				src.write(rng, 20)
				waitFor(t, "the restart to catch up", func() bool { return r.a.Stats().ArchivedSequence == src.lastSeq() })
				if err := r.stop(t); err != nil {
					t.Fatal(err)
				}
				checkBasesWhole(t, g)
			}
			sameBatches(t, archived(t, g, 1), src.since(firstBase(t, g, 1).Sequence))
		})
	}
}

// holesEnded says whether every hole that the manifest in s records is
// ended by a base: a hole's base is uploaded in the background, so a test
// that stops the archiver once it caught up waits for it too.
func holesEnded(t *testing.T, s objstore.Store) bool {
	t.Helper()
	m, _, err := manifest.Load(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range m.Holes {
		if h.To == manifest.MaxSequence {
			return false
		}
	}
	return true
}
