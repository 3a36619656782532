package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
)

// The writer races of the fault suite (docs/RELIABILITY.md): whoever races
// for an archive, exactly one writer wins, every time, and the archive
// holds every batch of the winner's history exactly once.

// TestTwoArchivers starts two 'rockstream archive' on one database and one
// empty archive at the same moment while the database is written, 3 rounds
// with the same writer ID (a restart racing the old process) and 3 with
// different IDs (a second host); 10 and 10 with ROCKSTREAM_LONG=1. Exactly
// one must go on; the other stops with exit 4 saying why; the archive then
// holds every batch exactly once.
func TestTwoArchivers(t *testing.T) {
	rounds := testenv.Scale(3, 10)
	for _, sameID := range []bool{true, false} {
		for round := range rounds {
			t.Run(fmt.Sprintf("same-id=%v/%d", sameID, round), func(t *testing.T) { twoArchivers(t, sameID) })
		}
	}
}

func twoArchivers(t *testing.T, sameID bool) {
	db := newLiveDB(t, filepath.Join(t.TempDir(), "db"))
	db.write(t, 50)
	stop := db.writeOn(t)
	bucket := "file://" + t.TempDir()
	store := openLocation(t, bucket)
	var ps [2]*proc
	var wg sync.WaitGroup
	for i := range ps {
		id := "same"
		if !sameID {
			id = fmt.Sprint("host-", i)
		}
		wg.Go(func() {
			ps[i] = startCLI(t, nil, "archive", "--db", db.dir, "--to", bucket, "--writer-id", id, "--segment-age", "50ms",
				"--fence-check", "100ms", "--nice", "0", "--work-dir", filepath.Join(t.TempDir(), "work"))
		})
	}
	wg.Wait()
	loser, winner := firstToExit(t, ps[:], 30*time.Second)
	if code := loser.cmd.ProcessState.ExitCode(); code != exitFenced {
		t.Fatalf("the losing archiver: exit %d, want %d\n%s", code, exitFenced, loser.out)
	}
	out := loser.out.String()
	if !strings.Contains(out, "fenced") && !strings.Contains(out, "another archiver writes") {
		t.Fatalf("the losing archiver does not say why:\n%s", out)
	}
	time.Sleep(500 * time.Millisecond) // the winner goes on
	stop()
	latest := db.db.GetLatestSequenceNumber()
	for deadline := time.Now().Add(60 * time.Second); archivedTo(t, store, 1) != latest; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for the winner to archive everything: the archive ends at %d, the database at %d; the winner said:\n%s",
				archivedTo(t, store, 1), latest, winner.out)
		}
	}
	if code := winner.stop(t); code != exitOK {
		t.Fatalf("the winning archiver: exit %d\n%s", code, winner.out)
	}
	n := checkArchive(t, store, db.dir)
	t.Logf("loser: %s; %d batches archived once", lastLine(out), n)
}

// firstToExit waits until one of ps exits and checks that the other still
// runs a moment later.
func firstToExit(t *testing.T, ps []*proc, d time.Duration) (exited, running *proc) {
	t.Helper()
	select {
	case <-ps[0].err:
		exited, running = ps[0], ps[1]
	case <-ps[1].err:
		exited, running = ps[1], ps[0]
	case <-time.After(d):
		t.Fatalf("both still run after %v:\n%s\n---\n%s", d, ps[0].out, ps[1].out)
	}
	select {
	case <-running.err:
		t.Fatalf("both stopped: exit %d and %d\n%s\n---\n%s", exited.cmd.ProcessState.ExitCode(), running.cmd.ProcessState.ExitCode(), exited.out, running.out)
	case <-time.After(300 * time.Millisecond):
	}
	return exited, running
}

// lastLine is the last line of a process's output that says something.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestPromotionRacesArchiver promotes a standby ('promote --standby') while
// the primary is written and its archiver uploads, 2 rounds (8 with
// ROCKSTREAM_LONG=1). The promotion wins: the old archiver stops fenced
// (exit 4), timeline 1 ends with the end marker right after the branch
// point and holds every batch up to it exactly once, nothing of the old
// primary's later writes is archived, and the standby goes on as the
// writer of timeline 2.
func TestPromotionRacesArchiver(t *testing.T) {
	for round := range testenv.Scale(2, 8) {
		t.Run(fmt.Sprint(round), promotionRacesArchiver)
	}
}

func promotionRacesArchiver(t *testing.T) {
	root := t.TempDir()
	db := newLiveDB(t, filepath.Join(root, "primary"))
	db.write(t, 50)
	bucket := "file://" + filepath.Join(root, "bucket")
	store := openLocation(t, bucket)
	old := startCLI(t, nil, "archive", "--db", db.dir, "--to", bucket, "--segment-age", "20ms", "--fence-check", "100ms",
		"--writer-id", "old-primary", "--nice", "0")
	waitManifest(t, store)
	addr, sbDir := freeAddr(t), filepath.Join(root, "standby")
	sb := startCLI(t, nil, "standby", "--from", bucket, "--listen", addr, "--poll", "10ms", "--writer-id", "new-primary", sbDir)
	stop := db.writeOn(t)
	waitUntilT(t, "the standby to follow", func() bool { a, _ := standbyApplied(addr); return a > 100 })
	time.Sleep(200 * time.Millisecond)
	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+addr, "--json")
	if code != exitOK {
		t.Fatalf("promote while the old primary writes: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	if code := old.wait(t, 30*time.Second); code != exitFenced || !strings.Contains(old.out.String(), "fenced") {
		t.Fatalf("the old archiver: exit %d, want %d saying fenced\n%s", code, exitFenced, old.out)
	}
	stop()
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	tl2, ok := m.Timeline(2)
	if !ok || len(m.Timelines) != 2 || m.Writer.Timeline != 2 || m.Writer.ID != "new-primary" {
		t.Fatalf("after the promotion: timelines %+v, writer %+v", m.Timelines, m.Writer)
	}
	checkEndedAt(t, store, m, tl2.Branch)
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("the promoted standby: exit %d\n%s", code, sb.out)
	}
	t.Logf("promoted at %d while the primary was at %d: %s", tl2.Branch, db.db.GetLatestSequenceNumber(), strings.TrimSpace(out))
}

// checkEndedAt checks that timeline 1 holds every batch up to branch in
// contiguous segments, ends there with the end marker, and holds nothing
// after it.
func checkEndedAt(t *testing.T, store objstore.Store, m *manifest.Manifest, branch uint64) {
	t.Helper()
	segs, err := catalog.Timeline(context.Background(), store, m, 1)
	if err != nil {
		t.Fatal(err)
	}
	last := segs[len(segs)-1]
	if !last.End || last.First != branch+1 {
		t.Fatalf("timeline 1 ends with %s (end %v), want the end marker at %d", last.Key, last.End, branch+1)
	}
	next := segs[0].First
	for _, sg := range segs[:len(segs)-1] {
		if sg.First != next {
			t.Fatalf("timeline 1: segment %s starts at %d, want %d", sg.Key, sg.First, next)
		}
		for _, b := range readSegment(t, store, sg.Key) {
			if b.Seq != next {
				t.Fatalf("timeline 1: %s holds the batch at %d, want %d", sg.Key, b.Seq, next)
			}
			next = b.Seq + uint64(b.Count)
		}
	}
	if next != branch+1 {
		t.Fatalf("timeline 1's batches end at %d, the branch point is %d", next-1, branch)
	}
}

// TestTwoPromotionsRace runs two standbys of one archive and promotes both
// at the same moment, 3 rounds (10 with ROCKSTREAM_LONG=1). Exactly one
// promotion wins (exit 0); the other exits 4 saying that the timeline was
// already promoted, and its standby goes on following the winner's
// timeline.
func TestTwoPromotionsRace(t *testing.T) {
	for round := range testenv.Scale(3, 10) {
		t.Run(fmt.Sprint(round), twoPromotions)
	}
}

func twoPromotions(t *testing.T) {
	root := t.TempDir()
	db := newLiveDB(t, filepath.Join(root, "primary"))
	db.write(t, 100)
	bucket := "file://" + filepath.Join(root, "bucket")
	store := openLocation(t, bucket)
	arch := startCLI(t, nil, "archive", "--db", db.dir, "--to", bucket, "--segment-age", "20ms", "--fence-check", "100ms", "--nice", "0")
	waitManifest(t, store)
	db.write(t, 100)
	want := db.db.GetLatestSequenceNumber()
	var addrs [2]string
	var sbs [2]*proc
	for i := range sbs {
		addrs[i] = freeAddr(t)
		sbs[i] = startCLI(t, nil, "standby", "--from", bucket, "--listen", addrs[i], "--poll", "10ms",
			"--writer-id", fmt.Sprint("standby-", i), filepath.Join(root, fmt.Sprint("standby-", i)))
	}
	for _, a := range addrs {
		waitUntilT(t, "the standbys to catch up", func() bool { s, _ := standbyApplied(a); return s == want })
	}
	type result struct {
		code     int
		out, err string
	}
	var res [2]result
	var wg sync.WaitGroup
	for i := range res {
		wg.Go(func() {
			res[i].code, res[i].out, res[i].err = runCLI(t, "promote", "--standby", "http://"+addrs[i])
		})
	}
	wg.Wait()
	won := -1
	for i, r := range res {
		switch {
		case r.code == exitOK && won >= 0:
			t.Fatalf("both promotions won:\n%s\n---\n%s", res[0].out, res[1].out)
		case r.code == exitOK:
			won = i
		case r.code != exitFenced || !strings.Contains(r.err, "already promoted"):
			t.Fatalf("the losing promotion: exit %d, want %d saying 'already promoted':\n%s%s", r.code, exitFenced, r.out, r.err)
		}
	}
	if won < 0 {
		t.Fatalf("no promotion won:\n%s\n---\n%s", res[0].err, res[1].err)
	}
	lost := 1 - won
	m, _, err := manifest.Load(context.Background(), store)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Timelines) != 2 || m.Writer.ID != fmt.Sprint("standby-", won) || m.Writer.Timeline != 2 {
		t.Fatalf("timelines %+v, writer %+v; want timeline 2 written by standby-%d", m.Timelines, m.Writer, won)
	}
	waitUntilT(t, "the losing standby to follow timeline 2", func() bool { _, tl := standbyApplied(addrs[lost]); return tl == 2 })
	if code := arch.wait(t, 30*time.Second); code != exitFenced {
		t.Fatalf("the old archiver: exit %d\n%s", code, arch.out)
	}
	for _, p := range sbs {
		if code := p.stop(t); code != exitOK {
			t.Fatalf("standby: exit %d\n%s", code, p.out)
		}
	}
	t.Logf("standby-%d won; the loser said: %s", won, strings.TrimSpace(res[lost].err))
}
