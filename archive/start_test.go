package archive_test

import (
	"context"
	"io"
	"iter"
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// manifestReads counts the plain GETs of the manifest (not the conditional
// ones of the fence check) made before the first LIST of the segments.
type manifestReads struct {
	objstore.Store
	mu     sync.Mutex
	listed bool
	reads  int
}

func (m *manifestReads) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	m.mu.Lock()
	if key == manifest.ManifestKey && opts.IfNoneMatch == "" && !m.listed {
		m.reads++
	}
	m.mu.Unlock()
	return m.Store.Get(ctx, key, opts)
}

func (m *manifestReads) List(ctx context.Context, prefix, after string) iter.Seq2[objstore.ObjectInfo, error] {
	m.mu.Lock()
	m.listed = m.listed || strings.HasPrefix(prefix, manifest.SegmentsPrefix)
	m.mu.Unlock()
	return m.Store.List(ctx, prefix, after)
}

// TestStartReadsManifestOnce: an archiver starting on an existing archive
// reads the manifest once to claim it, before it lists the segments.
func TestStartReadsManifestOnce(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(2)), 50)
	opts := testOptions(t, "writer-a")
	r := start(t, src, s, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	if err := r.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	counted := &manifestReads{Store: s}
	r2 := start(t, src, counted, opts)
	waitFor(t, "the restart to catch up", func() bool { return r2.a.Stats().LastSequence == src.lastSeq() })
	if err := r2.stop(t); err != nil {
		t.Fatalf("stop: %v", err)
	}
	counted.mu.Lock()
	defer counted.mu.Unlock()
	if !counted.listed || counted.reads != 1 {
		t.Fatalf("%d reads of %s before the first LIST (listed: %v), want 1", counted.reads, manifest.ManifestKey, counted.listed)
	}
}
