package restore

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/objstore/s3store"
)

// TestRestoreMinIO archives a database to a real MinIO, restores it from
// there (ranged gets over S3) to the latest state and to a point in the
// middle, and verifies the archive with a drill.
func TestRestoreMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	ctx := context.Background()
	store, err := s3store.New(ctx, s3store.Options{Bucket: srv.NewBucket(t), Prefix: "db1", Endpoint: srv.Endpoint,
		Credentials: srv.Credentials(), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	rng := rand.New(rand.NewPCG(11, 12))
	src := newSource(t, filepath.Join(root, "db"), nil, "cf1")
	src.writeRandom(rng, 50)
	arch := startArchiver(t, src.dir, store, filepath.Join(root, "work"))
	waitFor(t, "the first base", func() bool { return arch.a.Stats().Bases >= 1 })
	src.writeRandom(rng, 200)
	src.flush()
	mid := src.latest()
	src.writeRandom(rng, 200)
	takeBase(t, src.dir, store, filepath.Join(root, "base"))
	src.writeRandom(rng, 100)
	waitFor(t, "the archive", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)

	for _, target := range []*uint64{nil, seqp(mid + 3)} {
		dir := filepath.Join(t.TempDir(), "restored")
		res, err := Run(ctx, store, Options{Dir: dir, ToSeq: target, Logger: quiet()})
		if err != nil {
			t.Fatalf("restore from MinIO: %v", err)
		}
		want := src.latest()
		if target != nil {
			want = batchEndingAtOrBefore(src.log, *target)
		}
		if res.Sequence != want {
			t.Fatalf("restored to %d, want %d", res.Sequence, want)
		}
		checkContent(t, dir, src.log, src.names, want)
		t.Logf("from MinIO: sequence %d from base %d, %d segments, %d batches", res.Sequence, res.Base.Sequence, res.Segments, res.Batches)
	}
	rep := verify(t, store, true)
	if !rep.OK() || rep.Drill == nil || !rep.Drill.OK {
		t.Fatalf("verify of the MinIO archive: %v, drill %+v", rep.Problems, rep.Drill)
	}
}
