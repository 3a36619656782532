package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rockstream/rockstream/internal/bench/s3count"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/objstore/s3store"
)

// env is one benchmark run's world: a work folder, a private MinIO on
// loopback, the child processes, and what is cleaned up at the end.
type env struct {
	cfg      Config
	dir      string
	minio    *miniotest.Server
	childEnv []string
	procs    map[*proc]bool
	proxies  []*s3count.Proxy
	logSeq   int
	buckets  int
}

// newEnv makes the work folder and starts MinIO. MinIO's data and every
// temporary file of the children go under the work folder (their TMPDIR),
// so that removing it removes everything.
func newEnv(cfg Config) (*env, error) {
	if err := os.MkdirAll(cfg.WorkDir, 0o755); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(cfg.WorkDir, "rockstream-bench-")
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, dir: dir, procs: map[*proc]bool{}}
	for _, d := range []string{"logs", "tmp", "profiles"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			e.close()
			return nil, err
		}
	}
	if e.minio, err = startMinIO(filepath.Join(dir, "tmp")); err != nil {
		e.close()
		return nil, fmt.Errorf("start MinIO (scripts/setup.sh --test builds it): %w", err)
	}
	e.childEnv = []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey,
		"AWS_REGION=us-east-1", "TMPDIR=" + filepath.Join(dir, "tmp")}
	return e, nil
}

// startMinIO starts MinIO with its data folder under tmp (miniotest makes
// it in $TMPDIR).
func startMinIO(tmp string) (*miniotest.Server, error) {
	old, had := os.LookupEnv("TMPDIR")
	os.Setenv("TMPDIR", tmp)
	defer func() {
		if had {
			os.Setenv("TMPDIR", old)
		} else {
			os.Unsetenv("TMPDIR")
		}
	}()
	return miniotest.Start()
}

// close stops every child process that still runs, MinIO and the
// proxies, and removes the work folder unless Keep.
func (e *env) close() {
	for p := range e.procs {
		if !p.exited() {
			p.stop(15 * time.Second)
		}
	}
	for _, p := range e.proxies {
		p.Close()
	}
	if e.minio != nil {
		e.minio.Stop()
	}
	if e.cfg.Keep {
		fmt.Fprintf(os.Stderr, "bench: kept the work folder %s\n", e.dir)
		return
	}
	os.RemoveAll(e.dir)
}

// path is a path in the work folder.
func (e *env) path(elem ...string) string {
	return filepath.Join(append([]string{e.dir}, elem...)...)
}

// location is an archive location: a URL for the CLI, a Store for the
// harness, and for MinIO the proxy that counts the CLI's requests.
type location struct {
	kind   string // "file" or "minio"
	url    string
	store  objstore.Store
	proxy  *s3count.Proxy
	bucket string
}

// fileLocation is a new empty folder as a file:// location.
func (e *env) fileLocation(name string) (*location, error) {
	dir := e.path("stores", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	st, err := filestore.New(dir)
	if err != nil {
		return nil, err
	}
	return &location{kind: "file", url: "file://" + dir, store: st}, nil
}

// minioLocation is a new bucket behind a proxy of its own.
func (e *env) minioLocation(ctx context.Context) (*location, error) {
	e.buckets++
	bucket := fmt.Sprintf("bench-%d", e.buckets)
	c := e.minio.Client(miniotest.AccessKey, miniotest.SecretKey)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	p, err := e.proxy()
	if err != nil {
		return nil, err
	}
	loc := &location{kind: "minio", bucket: bucket, proxy: p, url: e.s3URL(bucket, p)}
	loc.store, err = e.s3Store(ctx, bucket)
	return loc, err
}

// proxy starts a new counting proxy in front of MinIO.
func (e *env) proxy() (*s3count.Proxy, error) {
	p, err := s3count.Start(e.minio.Endpoint)
	if err != nil {
		return nil, err
	}
	e.proxies = append(e.proxies, p)
	return p, nil
}

// s3URL is the CLI's URL of bucket through proxy p.
func (e *env) s3URL(bucket string, p *s3count.Proxy) string {
	return fmt.Sprintf("s3://%s?endpoint=%s", bucket, p.Endpoint)
}

// s3Store is the harness's own store of bucket, through a proxy of its own
// (so that it never adds to a count of the CLI's requests).
func (e *env) s3Store(ctx context.Context, bucket string) (objstore.Store, error) {
	p, err := e.proxy()
	if err != nil {
		return nil, err
	}
	return s3store.New(ctx, s3store.Options{Bucket: bucket, Endpoint: p.Endpoint, Credentials: e.minio.Credentials(), Region: "us-east-1"})
}
