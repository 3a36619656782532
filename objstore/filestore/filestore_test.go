package filestore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/objstore/storetest"
)

func newStore(t *testing.T) objstore.Store {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Config{New: newStore, LargeSize: 24 << 20})
}

func TestMain(m *testing.M) {
	// Every put sleeps between its condition check and its rename, so the
	// race tests fail if the lock does not hold across that window.
	filestore.WidenRaceWindow()
	os.Exit(m.Run())
}

// TestProcessRace races create-only and if-match puts on one key from
// several processes (this test binary, run again as a racer): the flock
// must give exactly one winner across processes, not only goroutines.
func TestProcessRace(t *testing.T) {
	if os.Getenv("FILESTORE_RACER") != "" {
		return // a racer process runs TestRacer instead
	}
	dir := t.TempDir()
	s, err := filestore.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Put(context.Background(), "cas", strings.NewReader("v0"), 2, objstore.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const racers = 6
	for _, mode := range []string{"create", "ifmatch"} {
		var outs [racers]*bytes.Buffer
		var cmds [racers]*exec.Cmd
		for i := range racers {
			cmd := exec.Command(os.Args[0], "-test.run=^TestRacer$", "-test.count=1")
			cmd.Env = append(os.Environ(), "FILESTORE_RACER="+mode, "FILESTORE_DIR="+dir,
				"FILESTORE_ETAG="+info.ETag, fmt.Sprintf("FILESTORE_ID=%d", i))
			outs[i] = new(bytes.Buffer)
			cmd.Stdout, cmd.Stderr = outs[i], outs[i]
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cmds[i] = cmd
		}
		won := 0
		for i, cmd := range cmds {
			if err := cmd.Wait(); err != nil {
				t.Fatalf("racer %d: %v\n%s", i, err, outs[i])
			}
			won += strings.Count(outs[i].String(), "RACER WON")
		}
		if won != 1 {
			t.Fatalf("%s: %d processes won, want exactly 1", mode, won)
		}
	}
}

// TestRacer is one process of TestProcessRace; it does nothing otherwise.
func TestRacer(t *testing.T) {
	mode := os.Getenv("FILESTORE_RACER")
	if mode == "" {
		return
	}
	s, err := filestore.New(os.Getenv("FILESTORE_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	id := os.Getenv("FILESTORE_ID")
	key, opts := "created", objstore.PutOptions{IfNoneMatch: true}
	if mode == "ifmatch" {
		key, opts = "cas", objstore.PutOptions{IfMatch: os.Getenv("FILESTORE_ETAG")}
	}
	// Many puts per process widen the window in which they overlap.
	for i := range 20 {
		body := fmt.Sprintf("%s racer %s try %d", mode, id, i)
		_, err := s.Put(context.Background(), key, strings.NewReader(body), int64(len(body)), opts)
		switch {
		case err == nil:
			fmt.Println("RACER WON")
		case !objstore.IsPreconditionFailed(err):
			t.Fatal(err)
		}
	}
}

// TestStaleTempRemoved: a put that crashed between writing its temporary
// file and the rename leaves the file; the next New removes it once old.
func TestStaleTempRemoved(t *testing.T) {
	dir := t.TempDir()
	if _, err := filestore.New(dir); err != nil {
		t.Fatal(err)
	}
	tmp := dir + "/.objstore/tmp"
	old, fresh := tmp+"/put-crashed", tmp+"/put-running"
	os.WriteFile(old, []byte("x"), 0o644)
	os.WriteFile(fresh, []byte("x"), 0o644)
	past := time.Now().Add(-2 * time.Hour)
	os.Chtimes(old, past, past)
	if _, err := filestore.New(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Fatalf("the stale temporary file is still there: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Fatalf("a fresh temporary file (a put in progress) was removed: %v", err)
	}
}

// TestConcurrentDeletesInOneFolder: deletes of different keys of one
// folder race to remove the folder once it is empty; none may fail
// (two archivers starting at once each delete their check probe).
func TestConcurrentDeletesInOneFolder(t *testing.T) {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := range 200 {
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				key := fmt.Sprintf("probe/%d-%d", round, i)
				if _, err := s.Put(ctx, key, strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
					errs[i] = err
					return
				}
				errs[i] = s.Delete(ctx, key)
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
