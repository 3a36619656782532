package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/objstore/s3store"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
)

// The store-failure part of the fault suite (docs/RELIABILITY.md).

// TestMinIOOutage stops a real MinIO for 3 s (30 s with ROCKSTREAM_LONG=1)
// while db_bench writes, 'rockstream archive' ships and 'rockstream
// standby' follows: both retry, nothing is lost, and both catch up once
// MinIO is back. It logs how long each took, after the restart, to hold
// everything written before it (the drain time).
func TestMinIOOutage(t *testing.T) {
	down := testenv.Scale(3*time.Second, 30*time.Second)
	miniotest.Shared(t) // fails under CI=true when MinIO is missing
	srv, err := miniotest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	url := "s3://" + srv.NewBucket(t) + "/db?endpoint=" + srv.Endpoint
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	dir := newDB(t)
	store := openLocation(t, url)
	archAddr := freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", dir, "--to", url, "--segment-age", "100ms", "--listen", archAddr, "--ready-max-lag", "1s")
	waitManifest(t, store)
	readyz := "http://" + archAddr + "/readyz"
	waitUntilT(t, "the archiver to be ready", func() bool { code, _ := httpCode(readyz); return code == http.StatusOK })
	if code, body := httpCode("http://" + archAddr + "/healthz"); code != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("archiver /healthz: %d %q", code, body)
	}
	addr, sbDir := freeAddr(t), filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", addr, "--poll", "50ms", sbDir)
	waitUntilT(t, "the standby to follow", func() bool { a, _ := standbyApplied(addr); return a > 0 })
	writer := dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", "--num=100000", "--batch_size=4",
		"--benchmark_write_rate_limit=1000000", fmt.Sprintf("--duration=%d", int(down/time.Second)+4))
	writing := make(chan struct{})
	go func() { writer.Wait(); close(writing) }()

	time.Sleep(time.Second)
	atStop := dbLatest(t, dir)
	srv.Stop()
	time.Sleep(down)
	select {
	case <-writing:
		t.Fatal("the writer finished during the outage: the test shows nothing")
	default:
	}
	// The store does not answer and the database moves on: the archive
	// lacks writes older than --ready-max-lag, and /readyz says so.
	if code, body := httpCode(readyz); code != http.StatusServiceUnavailable || !strings.Contains(body, "is the store answering") {
		t.Errorf("archiver /readyz %v into the outage: %d %s, want 503 naming the store", down, code, body)
	}
	backlog := dbLatest(t, dir) // written before MinIO is back
	if backlog <= atStop {
		t.Fatalf("nothing was written while MinIO was down (sequence %d before and after): the drain times would show nothing", atStop)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	archDrain, sbDrain := drainTimes(t, time.Now(),
		func() bool { return archivedTo(t, store, 1) >= backlog },
		func() bool { a, _ := standbyApplied(addr); return a >= backlog })
	<-writing
	latest := dbLatest(t, dir)
	waitUntilT(t, "the archive to catch up", func() bool { return archivedTo(t, store, 1) == latest })
	waitUntilT(t, "the archiver to be ready again", func() bool { code, _ := httpCode(readyz); return code == http.StatusOK })
	waitUntilT(t, "the standby to catch up", func() bool { a, _ := standbyApplied(addr); return a == latest })
	sbErrors := standbyErrors(addr)
	if code := arch.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, arch.out)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	n := checkArchive(t, store, dir)
	sameDatabase(t, sbDir, dir)
	t.Logf("MinIO down %v while db_bench wrote sequences %d to %d; once MinIO was back the archive held them all after %v, the standby had applied them after %v; the archiver logged %d retries, the standby counted %d errors; %d batches archived exactly once, the standby equals the source",
		down, atStop+1, backlog, archDrain.Round(10*time.Millisecond), sbDrain.Round(10*time.Millisecond),
		strings.Count(arch.out.String(), "retrying"), sbErrors, n)
}

// standbyErrors is the error count of the standby whose admin endpoint is
// at addr.
func standbyErrors(addr string) int64 {
	resp, err := http.Get("http://" + addr + "/status")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var st struct {
		Errors int64 `json:"errors"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	return st.Errors
}

// drainTimes waits until both conditions hold and returns how long after
// since each first held.
func drainTimes(t *testing.T, since time.Time, archived, applied func() bool) (time.Duration, time.Duration) {
	t.Helper()
	var a, s time.Duration
	for a == 0 || s == 0 {
		if time.Since(since) > 3*time.Minute {
			t.Fatalf("not drained 3 minutes after the store came back (archive %v, standby %v)", a, s)
		}
		if a == 0 && archived() {
			a = time.Since(since)
		}
		if s == 0 && applied() {
			s = time.Since(since)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return a, s
}

// sameDatabase checks that the databases in dir and in src (read as a
// secondary, src may be open elsewhere) hold the same sequence and content.
func sameDatabase(t *testing.T, dir, src string) {
	t.Helper()
	got, seq := testdb.Digest(t, dir)
	f, err := rocks.OpenFollower(src, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := f.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if seq != f.LatestSequence() || got.Diff(want) != "" {
		t.Fatalf("%s at %d differs from %s at %d: %s", dir, seq, src, f.LatestSequence(), got.Diff(want))
	}
}

// storeFault is an error of the store as s3store returns one after the
// SDK gave up retrying.
func storeFault(op, what string) error {
	return &objstore.Error{Op: op, Location: "s3 (injected)", Key: "*", Err: errors.New(what)}
}

// TestFaultyStore archives, follows, restores and verifies through a store
// that misbehaves at two levels. An HTTP proxy in front of MinIO answers
// 503 SlowDown and 500 and resets connections, before and after the
// server applied a request (a PUT that landed but whose answer is lost):
// the SDK inside s3store retries those. A faultstore over it fails what the
// SDK would have given up on, loses answers, cuts GETs short and adds
// latency. Nothing may be lost: the archive holds every batch once, the
// standby and a restore equal the source, and verify finds nothing wrong.
func TestFaultyStore(t *testing.T) {
	srv := miniotest.Shared(t)
	ctx := context.Background()
	bucket := srv.NewBucket(t)
	proxy := miniotest.NewFaultProxy(t, srv.Endpoint)
	open := func(endpoint string) objstore.Store {
		s, err := s3store.New(ctx, s3store.Options{Bucket: bucket, Prefix: "db", Endpoint: endpoint,
			Credentials: srv.Credentials(), Region: "us-east-1", MaxBackoff: 50 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	direct, viaProxy := open(srv.Endpoint), open(proxy.URL)
	w := newLiveDB(t, filepath.Join(t.TempDir(), "db"))
	w.write(t, 50)

	archFS := faultstore.New(viaProxy)
	arch := w.startArchiver(t, archFS)
	waitManifest(t, direct)
	sbFS := faultstore.New(viaProxy)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startStandby(t, sbFS, sbDir)

	proxy.Set(miniotest.Faults{SlowDown: 7, Internal: 11, ResetBefore: 13, ResetAfter: 17, MaxLatency: 15 * time.Millisecond})
	archFS.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "segments/", Every: 5, Err: storeFault("put", "api error SlowDown (503)")})
	archFS.Add(faultstore.Rule{Op: faultstore.Put, Every: 6, AfterPut: true, Err: storeFault("put", "read: connection reset by peer")})
	archFS.Add(faultstore.Rule{Op: faultstore.Get, Every: 4, Cut: true, CutAt: 50})
	archFS.Add(faultstore.Rule{Op: faultstore.List, Every: 3, Err: storeFault("list", "api error InternalError (500)")})
	archFS.Latency("", 2*time.Millisecond)
	sbFS.Add(faultstore.Rule{Op: faultstore.Get, Every: 3, Err: storeFault("get", "api error SlowDown (503)")})
	sbFS.Add(faultstore.Rule{Op: faultstore.Get, Every: 5, Cut: true, CutAt: 100})
	sbFS.Add(faultstore.Rule{Op: faultstore.List, Every: 2, Err: storeFault("list", "api error SlowDown (503)")})
	sbFS.Latency("", 2*time.Millisecond)

	// Write at least the batches, and on until two more bases have been
	// committed while the faults are on: a base counted before they start
	// would show nothing about bases under faults.
	batches := testenv.Scale(3000, 30000)
	basesBefore := arch.a.Stats().Bases
	for i := 0; i < batches || arch.a.Stats().Bases < basesBefore+2; i += 30 {
		if i > 100*batches {
			t.Fatalf("%d batches written and %d bases committed under faults, want 2", i, arch.a.Stats().Bases-basesBefore)
		}
		w.write(t, 30)
		time.Sleep(10 * time.Millisecond)
	}
	basesUnderFaults := arch.a.Stats().Bases - basesBefore
	latest := w.db.GetLatestSequenceNumber()
	waitUntilT(t, "the archive to catch up", func() bool { return archivedTo(t, direct, 1) == latest })
	waitUntilT(t, "the standby to catch up", func() bool { return sb.sb.Status().Applied == latest })
	if err := arch.stop(); err != nil {
		t.Fatalf("the archiver stopped with %v", err)
	}
	st, sbErr := sb.sb.Status(), sb.stop()
	if sbErr != nil {
		t.Fatalf("the standby stopped with %v", sbErr)
	}
	n := checkArchive(t, direct, w.dir)
	sameDatabase(t, sbDir, w.dir)

	restFS := faultstore.New(viaProxy)
	restFS.Add(faultstore.Rule{Op: faultstore.Get, Every: 4, Cut: true, CutAt: 200})
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := restore.Run(ctx, restFS, restore.Options{Dir: restored, Logger: quiet()}); err != nil {
		t.Fatalf("restore through the faults: %v", err)
	}
	sameDatabase(t, restored, w.dir)
	rep, err := restore.Verify(ctx, restFS, restore.VerifyOptions{ScratchDir: t.TempDir(), Logger: quiet()})
	if err != nil {
		t.Fatalf("verify through the faults: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("verify through the faults reports problems: %v", rep.Problems)
	}
	for what, got := range map[string]int64{
		"proxy 503 SlowDown": proxy.SlowDowns.Load(), "proxy 500": proxy.Internals.Load(),
		"proxy resets before the server": proxy.ResetsBefore.Load(), "proxy resets after the server": proxy.ResetsAfter.Load(),
		"archiver store faults": int64(archFS.Injected()), "standby store faults": int64(sbFS.Injected()),
		"restore store faults": int64(restFS.Injected()),
	} {
		if got == 0 {
			t.Errorf("no %s were injected: the test shows nothing about them", what)
		}
	}
	t.Logf("%d batches through %d proxy faults (%d 503, %d 500, %d resets before, %d after the server applied the request) and %d store faults; archiver retries %d and %d bases (%d under faults), standby errors %d; archive, standby and restore equal the source, verify OK",
		n, proxy.Injected(), proxy.SlowDowns.Load(), proxy.Internals.Load(), proxy.ResetsBefore.Load(), proxy.ResetsAfter.Load(),
		archFS.Injected()+sbFS.Injected()+restFS.Injected(), arch.a.Stats().Retries, arch.a.Stats().Bases, basesUnderFaults, st.Errors)
}

// httpCode gets url and returns the status code and the body (0 when the
// request fails).
func httpCode(url string) (int, string) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
