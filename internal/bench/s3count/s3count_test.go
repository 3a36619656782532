package s3count

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/s3store"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

// TestCountsThroughMinIO runs signed requests of every kind through the
// proxy to a real MinIO and checks that they succeed and are counted.
func TestCountsThroughMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	p, err := Start(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	store, err := s3store.New(ctx, s3store.Options{Bucket: srv.NewBucket(t), Endpoint: p.Endpoint,
		Credentials: srv.Credentials(), Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	before := p.Counts()
	if _, err := store.Put(ctx, "a/b", bytes.NewReader([]byte("hello")), 5, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := store.Get(ctx, "a/b", objstore.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if string(got) != "hello" {
		t.Fatalf("got %q through the proxy", got)
	}
	if _, err := store.Head(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	for _, err := range store.List(ctx, "a/", "") {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := store.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	d := p.Counts().Sub(before)
	want := Counts{Put: 1, Get: 1, Head: 1, List: 1, Delete: 1}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s: counted %d, want %d (all: %v)", k, d[k], v, d)
		}
	}
	if d.Total() != 5 {
		t.Errorf("counted %d requests, want 5: %v", d.Total(), d)
	}
	if n := p.ByPrefix()["PUT a/"]; n != 1 {
		t.Errorf("PUT a/: counted %d, want 1 (all: %v)", n, p.ByPrefix())
	}
}

func TestPrefix(t *testing.T) {
	for target, want := range map[string]string{"/b/segments/0001/02.seg": "segments/", "/b/manifest.json": "manifest.json", "/b?list-type=2": "", "/b/": ""} {
		if got := Prefix(httptest.NewRequest("GET", target, nil)); got != want {
			t.Errorf("Prefix(%s) = %q, want %q", target, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	cases := []struct{ method, target, want string }{
		{"GET", "/bucket/key", Get},
		{"GET", "/bucket/a/b.seg", Get},
		{"GET", "/bucket?list-type=2&prefix=a", List},
		{"GET", "/bucket/", List},
		{"GET", "/bucket", List},
		{"GET", "/bucket/key?uploads", List},
		{"PUT", "/bucket/key?partNumber=1&uploadId=x", Put},
		{"POST", "/bucket/key?uploads", Post},
		{"HEAD", "/bucket/key", Head},
		{"DELETE", "/bucket/key", Delete},
	}
	for _, c := range cases {
		if got := Classify(httptest.NewRequest(c.method, c.target, nil)); got != c.want {
			t.Errorf("%s %s: %s, want %s", c.method, c.target, got, c.want)
		}
	}
}

// TestFailed checks that a request the proxy cannot pass on is answered
// 502 and counted as Failed.
func TestFailed(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	p, err := Start(dead)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Get(p.Endpoint + "/bucket/key")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	if c := p.Counts(); c[Failed] != 1 || c[Get] != 1 {
		t.Fatalf("counts %v, want one GET and one FAILED", c)
	}
}
