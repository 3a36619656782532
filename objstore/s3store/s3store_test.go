package s3store_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/s3store"
	"github.com/rockstream/rockstream/objstore/storetest"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

func open(t *testing.T, opts s3store.Options) *s3store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := s3store.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func minioOptions(t *testing.T) s3store.Options {
	srv := miniotest.Shared(t)
	return s3store.Options{
		Bucket: srv.NewBucket(t), Endpoint: srv.Endpoint, Credentials: srv.Credentials(),
		PartSize: 5 << 20, Concurrency: 4,
	}
}

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Config{
		New:       func(t *testing.T) objstore.Store { return open(t, minioOptions(t)) },
		LargeSize: 24 << 20, // five parts of 5 MiB
	})
}

// TestConformancePrefix runs the suite on a prefix of a bucket that holds
// other keys, which must stay invisible.
func TestConformancePrefix(t *testing.T) {
	storetest.Run(t, storetest.Config{
		New: func(t *testing.T) objstore.Store {
			opts := minioOptions(t)
			outside := open(t, opts)
			if _, err := outside.Put(context.Background(), "zzz-outside", strings.NewReader("x"), 1, objstore.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			opts.Prefix = "some/prefix"
			return open(t, opts)
		},
		LargeSize: 6 << 20,
	})
}

func newErr(t *testing.T, opts s3store.Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := s3store.New(ctx, opts)
	if err == nil {
		t.Fatalf("open %+v succeeded", opts)
	}
	return err
}

func TestWrongCredentials(t *testing.T) {
	opts := minioOptions(t)
	opts.Credentials = credentials.NewStaticCredentialsProvider(miniotest.AccessKey, "not-the-secret", "")
	err := newErr(t, opts)
	t.Logf("wrong secret: %v", err)
	if !errors.Is(err, objstore.ErrAccessDenied) || !strings.Contains(err.Error(), "credentials") {
		t.Fatalf("wrong secret: %v, want a clear access-denied error", err)
	}
	opts.Credentials = credentials.NewStaticCredentialsProvider("nobody", "nothing-at-all", "")
	if err := newErr(t, opts); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Fatalf("unknown access key: %v", err)
	}
}

func TestMissingBucket(t *testing.T) {
	opts := minioOptions(t)
	opts.Bucket = "no-such-bucket-here"
	err := newErr(t, opts)
	t.Logf("missing bucket: %v", err)
	if !errors.Is(err, objstore.ErrNoBucket) || !strings.Contains(err.Error(), "no-such-bucket-here") {
		t.Fatalf("missing bucket: %v, want ErrNoBucket naming the bucket", err)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close() // nothing listens there any more
	start := time.Now()
	err := newErr(t, s3store.Options{
		Bucket: "b", Endpoint: endpoint, Credentials: miniotest.Shared(t).Credentials(),
		MaxAttempts: 3, MaxBackoff: 50 * time.Millisecond,
	})
	t.Logf("unreachable: %v", err)
	if !errors.Is(err, objstore.ErrUnreachable) || !strings.Contains(err.Error(), endpoint) {
		t.Fatalf("unreachable endpoint: %v, want ErrUnreachable naming %s", err, endpoint)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}

// TestMaxAttemptsFromEnvironment: AWS_MAX_ATTEMPTS, the AWS SDKs'
// standard setting, bounds the attempts when the options do not.
func TestMaxAttemptsFromEnvironment(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	endpoint := srv.URL
	srv.Close()
	t.Setenv("AWS_MAX_ATTEMPTS", "2")
	err := newErr(t, s3store.Options{Bucket: "b", Endpoint: endpoint, Credentials: miniotest.Shared(t).Credentials(), MaxBackoff: 10 * time.Millisecond})
	if !errors.Is(err, objstore.ErrUnreachable) || !strings.Contains(err.Error(), "attempts, 2") {
		t.Fatalf("AWS_MAX_ATTEMPTS=2: %v", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, opts := range []s3store.Options{
		{},
		{Bucket: "b", Endpoint: "ftp://host"},
		{Bucket: "b", Endpoint: "not a url"},
		{Bucket: "b", Prefix: "a/../b"},
	} {
		if _, err := s3store.New(context.Background(), opts); err == nil {
			t.Errorf("options %+v accepted", opts)
		}
	}
	// An endpoint from AWS_ENDPOINT_URL that holds credentials is refused
	// without showing them.
	t.Setenv("AWS_ENDPOINT_URL", "http://AKIA:Env-S3cr3t@127.0.0.1:9000")
	_, err := s3store.New(context.Background(), s3store.Options{Bucket: "b"})
	if err == nil || !strings.Contains(err.Error(), "holds credentials") || strings.Contains(err.Error(), "Env-S3cr3t") {
		t.Errorf("an endpoint with credentials: %v", err)
	}
}

// TestRetries puts a proxy in front of MinIO that answers the first
// requests with 503 SlowDown, 500 and 409 ConditionalRequestConflict: the
// store retries them and succeeds, and a conditional put stays exact.
func TestRetries(t *testing.T) {
	srv := miniotest.Shared(t)
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var calls, injected atomic.Int64
	faults := []struct {
		status int
		code   string
	}{{503, "SlowDown"}, {500, "InternalError"}, {409, "ConditionalRequestConflict"}}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if r.Method == http.MethodPut && n%2 == 0 {
			f := faults[injected.Add(1)%int64(len(faults))]
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(f.status)
			w.Write([]byte("<Error><Code>" + f.code + "</Code><Message>injected</Message></Error>"))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	s := open(t, s3store.Options{
		Bucket: srv.NewBucket(t), Endpoint: front.URL, Credentials: srv.Credentials(),
		MaxAttempts: 6, MaxBackoff: 20 * time.Millisecond,
	})
	ctx := context.Background()
	for i := range 6 {
		body := strings.Repeat("x", i+1)
		if _, err := s.Put(ctx, "retried", strings.NewReader(body), int64(len(body)), objstore.PutOptions{}); err != nil {
			t.Fatalf("put %d through injected faults: %v", i, err)
		}
	}
	if injected.Load() < 3 {
		t.Fatalf("only %d faults were injected", injected.Load())
	}
	if _, err := s.Put(ctx, "created", strings.NewReader("a"), 1, objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Put(ctx, "created", strings.NewReader("b"), 1, objstore.PutOptions{IfNoneMatch: true})
	if !objstore.IsPreconditionFailed(err) {
		t.Fatalf("second create-only put through retries: %v", err)
	}
}

// TestRejected: a store that refuses a request for good (here 400 and 501
// from a proxy) gives ErrRejected at once, so that callers stop retrying.
func TestRejected(t *testing.T) {
	srv := miniotest.Shared(t)
	target, _ := url.Parse(srv.Endpoint)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var status atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st := int(status.Load()); st != 0 && r.Method == http.MethodPut {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(st)
			w.Write([]byte("<Error><Code>InvalidArgument</Code><Message>injected</Message></Error>"))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	s := open(t, s3store.Options{Bucket: srv.NewBucket(t), Endpoint: front.URL, Credentials: srv.Credentials(), MaxBackoff: 10 * time.Millisecond})
	for _, st := range []int{http.StatusBadRequest, http.StatusNotImplemented} {
		status.Store(int64(st))
		_, err := s.Put(context.Background(), "k", strings.NewReader("x"), 1, objstore.PutOptions{})
		if !errors.Is(err, objstore.ErrRejected) {
			t.Fatalf("a %d answer: %v, want ErrRejected", st, err)
		}
	}
}
