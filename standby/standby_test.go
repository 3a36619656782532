package standby

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"
	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/s3store"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
)

// followOnce archives a database into store, runs a standby next to the
// writes, and checks that the standby ends with the source's content.
func followOnce(t *testing.T, store objstore.Store) (src *source, dir string) {
	root := t.TempDir()
	src = newSource(t, filepath.Join(root, "db"))
	src.write(t, 50)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir = filepath.Join(root, "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	src.write(t, 200)
	src.flush(t)
	src.write(t, 200)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	// A secondary instance of the standby's folder sees what it applied.
	if got, want := secondaryDigest(t, dir), src.digest(t); got.Diff(want) != "" {
		t.Fatalf("a secondary of the standby differs from the source: %s", got.Diff(want))
	}
	st := sb.sb.Status()
	if st.State != Following || st.Timeline != 1 || st.Head != src.latest() || st.LagSequences != 0 || st.Segments == 0 {
		t.Fatalf("status %+v", st)
	}
	if err := sb.stop(t); err != nil {
		t.Fatalf("standby: %v", err)
	}
	checkDB(t, dir, src)
	return src, dir
}

// checkDB checks that the standby's database in dir has the source's
// latest sequence and content.
func checkDB(t *testing.T, dir string, src *source) {
	t.Helper()
	got, seq := testdb.Digest(t, dir)
	if seq != src.latest() {
		t.Fatalf("the standby reopens at %d, the source is at %d", seq, src.latest())
	}
	if d := got.Diff(src.digest(t)); d != "" {
		t.Fatalf("the standby differs from the source: %s", d)
	}
}

// TestFollow bootstraps a standby from a file archive, follows writes
// across a flush, stops it, and resumes it on the same folder.
func TestFollow(t *testing.T) {
	store, _ := fileStore(t)
	src, dir := followOnce(t, store)
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if id, err := rocks.ReadIdentity(dir); err != nil || id != m.Identity {
		t.Fatalf("the standby's identity is %q (%v), the archive's %q", id, err, m.Identity)
	}

	// Resume: more writes while the standby is down, then while it runs.
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	src.write(t, 100)
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	src.write(t, 100)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	checkDB(t, dir, src)
}

// TestFollowMinIO is TestFollow's first half against a real MinIO.
func TestFollowMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	store, err := s3store.New(context.Background(), s3store.Options{Bucket: srv.NewBucket(t), Prefix: "db1",
		Endpoint: srv.Endpoint, Credentials: srv.Credentials(), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	followOnce(t, store)
}

// TestAdmin checks /status, /metrics, /promote and the token.
func TestAdmin(t *testing.T) {
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	src.write(t, 30)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	sb := startStandby(t, store, filepath.Join(t.TempDir(), "standby"), 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	srv := httptest.NewServer(sb.sb.Handler("secret"))
	defer srv.Close()
	get := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("GET", "/status", ""); code != http.StatusUnauthorized {
		t.Fatalf("/status without a token: %d", code)
	}
	if code, _ := get("GET", "/status", "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("/status with a wrong token: %d", code)
	}
	code, body := get("GET", "/status", "secret")
	var st Status
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil {
		t.Fatalf("/status: %d %v %s", code, err, body)
	}
	if st.Applied != src.latest() || st.State != Following || st.Timeline != 1 {
		t.Fatalf("/status: %s", body)
	}
	code, body = get("GET", "/metrics", "secret")
	for _, want := range []string{"rockstream_standby_applied_sequence", "rockstream_standby_batches_applied_total",
		"rockstream_standby_segments_applied_total", "rockstream_standby_lag_seconds", "rockstream_standby_errors_total"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %s: %d %s", want, code, body)
		}
	}
	if code, _ := get("POST", "/promote", ""); code != http.StatusUnauthorized {
		t.Fatalf("/promote without a token: %d", code)
	}
}

// TestCorruptSegment flips a byte in the second segment after the
// standby's sequence: the standby applies the first, stops naming the
// second's key, and keeps what it applied.
func TestCorruptSegment(t *testing.T) {
	store, bucket := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 20)
	arch := startArchiver(t, src.dir, store, 20*time.Millisecond)
	dir := filepath.Join(t.TempDir(), "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().State == Following })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	_, at := testdb.Digest(t, dir)
	for range 4 {
		src.write(t, 30)
		time.Sleep(60 * time.Millisecond) // a segment each
	}
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t)
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	segs, err := catalog.Timeline(context.Background(), store, m, 1)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(segs, func(s catalog.Segment) bool { return s.First == at+1 })
	if i < 0 || i+1 >= len(segs) {
		t.Fatalf("no two segments after %d: %+v", at, segs)
	}
	bad := segs[i+1]
	path := filepath.Join(bucket, filepath.FromSlash(bad.Key))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x40
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}

	sb = startStandby(t, store, dir, 10*time.Millisecond)
	var runErr error
	select {
	case runErr = <-sb.done:
		sb.done <- runErr
	case <-time.After(30 * time.Second):
		t.Fatal("the standby did not stop at the damaged segment")
	}
	if !errors.Is(runErr, segments.ErrCorrupt) && !errors.Is(runErr, restore.ErrCorrupt) || !strings.Contains(runErr.Error(), bad.Key) {
		t.Fatalf("want a corruption naming %s, got %v", bad.Key, runErr)
	}
	if st := sb.sb.Status(); st.State != Failed || st.Applied != bad.First-1 {
		t.Fatalf("status %+v, want failed at %d", st, bad.First-1)
	}
	if _, seq := testdb.Digest(t, dir); seq != bad.First-1 {
		t.Fatalf("the standby kept %d, want %d (the segment before the damaged one)", seq, bad.First-1)
	}
	t.Logf("stopped with: %v", runErr)
}

// TestRefuse checks the folders that a standby refuses.
func TestRefuse(t *testing.T) {
	store, _ := fileStore(t)
	src := newSource(t, filepath.Join(t.TempDir(), "db"))
	src.write(t, 10)
	startArchiver(t, src.dir, store, 20*time.Millisecond).stop(t)

	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "notes.txt"), []byte("hello"), 0o644)
	other := newSource(t, filepath.Join(t.TempDir(), "other"))
	other.write(t, 3)
	other.close()
	empty, _ := fileStore(t)
	for _, tc := range []struct {
		name  string
		store objstore.Store
		dir   string
		want  error
	}{
		{"not a database", store, junk, ErrNotStandby},
		{"another archive", store, other.dir, ErrOtherArchive},
		{"no archive", empty, filepath.Join(t.TempDir(), "x"), manifest.ErrNoArchive},
	} {
		sb, err := New(tc.store, Options{Dir: tc.dir, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		err = sb.Run(context.Background())
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if st := sb.Status(); st.State != Failed {
			t.Errorf("%s: state %s", tc.name, st.State)
		}
	}
}

// TestFollowSegmentsOfManyBlocks: the standby gathers a segment's batches
// to apply them together, and a segment's reader reuses its buffer from
// one batch to the next: a segment of several blocks, followed, gives the
// source's content.
func TestFollowSegmentsOfManyBlocks(t *testing.T) {
	store, _ := fileStore(t)
	root := t.TempDir()
	src := newSource(t, filepath.Join(root, "db"))
	src.write(t, 50)
	arch := startArchiverOpts(t, src.dir, store, archive.Options{
		SegmentSize: 64 << 20, SegmentAge: time.Hour, Poll: 5 * time.Millisecond,
		FenceCheck: time.Second, RetryMax: 50 * time.Millisecond, DrainTimeout: 20 * time.Second,
	})
	dir := filepath.Join(root, "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	value := make([]byte, 1000)
	for i := range 6000 { // about 6 MiB: one segment of several 1 MiB blocks
		wb := grocksdb.NewWriteBatch()
		for j := range 1 + i%3 {
			value[0], value[1] = byte(i), byte(j)
			wb.Put(fmt.Appendf(nil, "big%05d-%d", i%2000, j), value)
		}
		if err := src.db.Write(src.wo, wb); err != nil {
			t.Fatal(err)
		}
		wb.Destroy()
	}
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t) // seals the one segment
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	checkDB(t, dir, src)
}

// TestFollowAppliesTogether: the standby applies a segment's batches
// together (rocks.DB.ApplyBatches, a write per run of batches), so its own
// WAL holds far fewer records than the batches it followed; also while the
// manifest records a column family change that is due only later (the
// batches before it are quiet).
func TestFollowAppliesTogether(t *testing.T) {
	store, _ := fileStore(t)
	root := t.TempDir()
	src := newSource(t, filepath.Join(root, "db"))
	src.write(t, 50)
	opts := archive.Options{SegmentSize: 1 << 20, SegmentAge: time.Hour, Poll: 5 * time.Millisecond,
		FenceCheck: time.Second, RetryMax: 50 * time.Millisecond, DrainTimeout: 20 * time.Second}
	arch := startArchiverOpts(t, src.dir, store, opts)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().ArchivedSequence == src.latest() })
	arch.stop(t)
	ctx := context.Background()
	_, _, err := manifest.Update(ctx, store, nil, func(m *manifest.Manifest) error {
		m.Format = manifest.FormatCFChanges
		m.ColumnFamilyChanges = append(m.ColumnFamilyChanges, manifest.ColumnFamilyChange{
			Timeline: 1, After: 1 << 40, Op: manifest.CFCreate, ID: 99, Name: "later"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "standby")
	sb := startStandby(t, store, dir, 10*time.Millisecond)
	booted := src.latest()
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == booted })
	src.write(t, 600)
	arch = startArchiverOpts(t, src.dir, store, opts)
	waitFor(t, "the archiver", func() bool { return arch.a.Stats().LastSequence == src.latest() })
	arch.stop(t) // seals the segment of the 600 batches
	waitFor(t, "the standby", func() bool { return sb.sb.Status().Applied == src.latest() })
	if err := sb.stop(t); err != nil {
		t.Fatal(err)
	}
	tail, err := rocks.NewWALTail(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer tail.Close()
	if err := tail.Seek(booted + 1); err != nil {
		t.Fatal(err)
	}
	writes := 0
	for {
		_, ok, err := tail.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		writes++
	}
	if writes == 0 || writes*10 > 600 {
		t.Fatalf("the standby wrote %d WAL records for 600 batches: not applied together", writes)
	}
	t.Logf("600 batches applied in %d writes", writes)
	checkDB(t, dir, src)
}
