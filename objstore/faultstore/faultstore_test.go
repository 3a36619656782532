package faultstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/objstore/storetest"
)

func newStore(t *testing.T) (*faultstore.Store, objstore.Store) {
	inner, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return faultstore.New(inner), inner
}

// With no rule, the wrapper is a conforming store.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Config{
		New:       func(t *testing.T) objstore.Store { s, _ := newStore(t); return s },
		LargeSize: 4 << 20,
	})
}

var ctx = context.Background()

func put(t *testing.T, s objstore.Store, key, body string) error {
	_, err := s.Put(ctx, key, strings.NewReader(body), int64(len(body)), objstore.PutOptions{})
	return err
}

func read(s objstore.Store, key string) ([]byte, error) {
	rc, _, err := s.Get(ctx, key, objstore.GetOptions{})
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestFailNth(t *testing.T) {
	s, inner := newStore(t)
	boom := errors.New("boom")
	s.FailNth(faultstore.Put, 2, boom)
	if err := put(t, s, "a", "1"); err != nil {
		t.Fatal(err)
	}
	if err := put(t, s, "b", "2"); !errors.Is(err, boom) {
		t.Fatalf("second put: %v, want boom", err)
	}
	if _, err := inner.Head(ctx, "b"); !objstore.IsNotFound(err) {
		t.Fatalf("the failed put reached the store: %v", err)
	}
	if err := put(t, s, "c", "3"); err != nil {
		t.Fatalf("third put: %v", err)
	}
	if got := s.Calls(faultstore.Put); got != 3 {
		t.Fatalf("calls: %d", got)
	}
}

func TestLostAnswer(t *testing.T) {
	s, inner := newStore(t)
	lost := errors.New("connection reset")
	s.Add(faultstore.Rule{Op: faultstore.Put, Nth: 1, Err: lost, AfterPut: true})
	if err := put(t, s, "k", "v"); !errors.Is(err, lost) {
		t.Fatalf("put: %v", err)
	}
	if _, err := inner.Head(ctx, "k"); err != nil {
		t.Fatalf("the put did not happen before its answer was lost: %v", err)
	}
}

func TestFlipAndCut(t *testing.T) {
	s, _ := newStore(t)
	body := strings.Repeat("abcdefgh", 1000)
	put(t, s, "seg/1", body)
	put(t, s, "other", body)
	s.FlipByte("seg/", 4321)
	got, err := read(s, "seg/1")
	if err != nil || len(got) != len(body) {
		t.Fatalf("flipped get: %d bytes, %v", len(got), err)
	}
	diff := 0
	for i := range got {
		if got[i] != body[i] {
			diff++
			if i != 4321 {
				t.Fatalf("byte %d differs, want only 4321", i)
			}
		}
	}
	if diff != 1 {
		t.Fatalf("%d bytes differ", diff)
	}
	if got, _ := read(s, "other"); !bytes.Equal(got, []byte(body)) {
		t.Fatal("a key outside the rule was damaged")
	}
	s.Reset()
	s.CutShort("other", 100)
	got, err = read(s, "other")
	if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != 100 {
		t.Fatalf("cut get: %d bytes, %v", len(got), err)
	}
}

func TestUnreachableAndLatency(t *testing.T) {
	s, _ := newStore(t)
	s.Unreachable(200 * time.Millisecond)
	if err := put(t, s, "k", "v"); !errors.Is(err, objstore.ErrUnreachable) {
		t.Fatalf("put during outage: %v", err)
	}
	for _, err := range s.List(ctx, "", "") {
		if !errors.Is(err, objstore.ErrUnreachable) {
			t.Fatalf("list during outage: %v", err)
		}
	}
	time.Sleep(250 * time.Millisecond)
	if err := put(t, s, "k", "v"); err != nil {
		t.Fatalf("put after outage: %v", err)
	}
	s.Latency(faultstore.Head, 100*time.Millisecond)
	start := time.Now()
	if _, err := s.Head(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("head took %v, want the injected 100ms", d)
	}
}

func TestEvery(t *testing.T) {
	s, _ := newStore(t)
	boom := errors.New("boom")
	s.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "seg/", Every: 3, Err: boom})
	var failed []int
	for i := 1; i <= 9; i++ {
		if err := put(t, s, fmt.Sprint("seg/", i), "x"); errors.Is(err, boom) {
			failed = append(failed, i)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(failed) != "[3 6 9]" {
		t.Fatalf("failed puts %v, want every third", failed)
	}
	if err := put(t, s, "other", "x"); err != nil {
		t.Fatalf("a key the rule does not name: %v", err)
	}
	s.Unreachable(time.Hour)
	put(t, s, "seg/10", "x")
	if n := s.Injected(); n != 4 {
		t.Fatalf("Injected() = %d, want 3 failures and 1 outage", n)
	}
}

// TestDownloadResumes: objstore.Download resumes a part whose transfer
// breaks off (twice at most), and fails naming the bytes when it keeps
// breaking.
func TestDownloadResumes(t *testing.T) {
	s, _ := newStore(t)
	data := strings.Repeat("0123456789abcdef", 4096) // 64 KiB
	if err := put(t, s, "big", data); err != nil {
		t.Fatal(err)
	}
	s.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: "big", Nth: 1, Cut: true, CutAt: 1000})
	s.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: "big", Nth: 3, Cut: true, CutAt: 10})
	var got bytesAt
	n, err := objstore.Download(ctx, s, "big", &got, objstore.DownloadOptions{PartSize: 16 << 10, Concurrency: 1})
	if err != nil || n != int64(len(data)) || string(got.buf) != data {
		t.Fatalf("download through two broken transfers: %d bytes, equal %v, %v", n, string(got.buf) == data, err)
	}
	s.Reset()
	s.CutShort("big", 100)
	_, err = objstore.Download(ctx, s, "big", &got, objstore.DownloadOptions{PartSize: 16 << 10, Concurrency: 1})
	if err == nil || !strings.Contains(err.Error(), "bytes 0..16384") || !strings.Contains(err.Error(), "transfer stopped") {
		t.Fatalf("a transfer that always breaks: %v", err)
	}
}

type bytesAt struct{ buf []byte }

func (w *bytesAt) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(w.buf) {
		w.buf = append(w.buf, make([]byte, end-len(w.buf))...)
	}
	copy(w.buf[off:], p)
	return len(p), nil
}
