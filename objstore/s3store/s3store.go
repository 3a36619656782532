// Package s3store is an objstore.Store on S3 and S3-compatible servers
// (MinIO), over aws-sdk-go-v2.
//
// Credentials come from the standard AWS chain: the environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), the shared
// config and credentials files with AWS_PROFILE or Options.Profile, web
// identity, ECS and EC2 instance roles. A custom endpoint (MinIO) comes from
// Options.Endpoint, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; with a
// custom endpoint, requests use path-style addressing.
//
// The SDK never logs a request (noRequestLogs): a request holds the
// Authorization header.
//
// Requests are retried with exponential backoff and jitter on throttling
// (503 SlowDown), 5xx answers, timeouts, connection resets and 409
// ConditionalRequestConflict. Objects larger than Options.PartSize are
// uploaded in parts, in parallel; a conditional put of a large object puts
// its condition on the completion of the multipart upload.
package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/logging"

	"github.com/rockstream/rockstream/objstore"
)

// Options says where the store is and how to talk to it.
type Options struct {
	Bucket string
	// Prefix is prepended to every key ("" or a path without leading or
	// trailing slash).
	Prefix string
	// Region defaults to the AWS config's, else us-east-1.
	Region string
	// Endpoint is a custom endpoint URL such as http://127.0.0.1:9000.
	Endpoint string
	// Profile selects a profile of the shared AWS config files.
	Profile string
	// Credentials, if set, replaces the standard chain (tests).
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds the attempts of one request (default:
	// AWS_MAX_ATTEMPTS from the environment, else 8).
	MaxAttempts int
	// MaxBackoff bounds the wait between two attempts (default 5s).
	MaxBackoff time.Duration
	// PartSize is the multipart threshold and part size (default 16 MiB,
	// at least 5 MiB).
	PartSize int64
	// Concurrency is the number of parts in flight (default 4).
	Concurrency int
}

// Store is a bucket, or a prefix of one.
type Store struct {
	client *s3.Client
	opts   Options
	prefix string // "" or ending with "/"
}

var _ objstore.Store = (*Store)(nil)

// New connects to the bucket and checks that it exists and that the
// credentials may read it.
func New(ctx context.Context, opts Options) (*Store, error) {
	s, err := newStore(ctx, opts)
	if err != nil {
		return nil, err
	}
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.opts.Bucket)}); err != nil {
		return nil, s.fail("open", "", bucketError(mapError(err)))
	}
	return s, nil
}

func newStore(ctx context.Context, opts Options) (*Store, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOptions(opts)...)
	if err != nil {
		return nil, fmt.Errorf("s3 store %s: load AWS config: %w", opts.Bucket, err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, &objstore.Error{Op: "open", Location: "s3://" + opts.Bucket, Err: fmt.Errorf(
			"%w: no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an instance role (%v)",
			objstore.ErrAccessDenied, err)}
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if opts.Endpoint != "" {
			o.BaseEndpoint = aws.String(opts.Endpoint)
			o.UsePathStyle = true
		}
		// Checksums on every request only when the operation needs one:
		// not every S3-compatible server understands the newer ones.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		noRequestLogs(o)
	})
	s := &Store{client: client, opts: opts}
	if opts.Prefix != "" {
		s.prefix = opts.Prefix + "/"
	}
	return s, nil
}

// noRequestLogs keeps the SDK's request logging off, whatever the AWS
// config says: its LogRequest and LogSigning modes print the Authorization
// header, the security token and the string to sign. Errors are returned,
// and rockstream logs them itself.
func noRequestLogs(o *s3.Options) {
	o.ClientLogMode = 0
	o.Logger = logging.Nop{}
}

func (o *Options) normalize() error {
	if o.Bucket == "" {
		return errors.New("s3 store: no bucket given")
	}
	o.Prefix = strings.Trim(o.Prefix, "/")
	if o.Prefix != "" {
		if err := objstore.ValidateKey(o.Prefix); err != nil {
			return fmt.Errorf("s3 store %s: prefix: %w", o.Bucket, err)
		}
	}
	if o.Endpoint == "" {
		o.Endpoint = firstEnv("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
	}
	if o.Endpoint != "" {
		if strings.Contains(o.Endpoint, "@") {
			return fmt.Errorf("s3 store %s: the endpoint holds credentials (user@ or user:password@); give only a scheme, a host and a port, and the credentials through the AWS chain", o.Bucket)
		}
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3 store %s: endpoint %q is not an http:// or https:// URL", o.Bucket, o.Endpoint)
		}
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
		if n, err := strconv.Atoi(os.Getenv("AWS_MAX_ATTEMPTS")); err == nil && n > 0 {
			o.MaxAttempts = n
		}
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	if o.PartSize <= 0 {
		o.PartSize = 16 << 20
	}
	o.PartSize = max(o.PartSize, 5<<20)
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	return nil
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func loadOptions(opts Options) []func(*config.LoadOptions) error {
	lo := []func(*config.LoadOptions) error{
		config.WithRetryer(func() aws.Retryer { return newRetryer(opts) }),
		config.WithLogger(logging.Nop{}), // errors are returned, not logged
		config.WithHTTPClient(awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second }).
			WithTransportOptions(func(t *http.Transport) {
				t.ResponseHeaderTimeout = 60 * time.Second
				t.MaxIdleConnsPerHost = 64
			})),
	}
	if opts.Region != "" {
		lo = append(lo, config.WithRegion(opts.Region))
	}
	if opts.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(opts.Profile))
	}
	if opts.Credentials != nil {
		lo = append(lo, config.WithCredentialsProvider(opts.Credentials))
	}
	return lo
}

// newRetryer retries what S3 documents as transient, and 409
// ConditionalRequestConflict, with no client-side retry quota: during an
// outage every request keeps its own attempts.
func newRetryer(opts Options) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = opts.MaxAttempts
		o.MaxBackoff = opts.MaxBackoff
		o.RateLimiter = ratelimit.None
		o.Retryables = append(o.Retryables, retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			if errorCode(err) == "ConditionalRequestConflict" {
				return aws.TrueTernary
			}
			return aws.UnknownTernary
		}))
	})
}

// String is the store's URL, as --to and --from take it (the bucket, the
// prefix, and the endpoint, region and profile given); never a secret.
func (s *Store) String() string {
	u := url.URL{Scheme: "s3", Host: s.opts.Bucket, Path: "/" + s.opts.Prefix}
	q := url.Values{}
	for k, v := range map[string]string{"endpoint": s.opts.Endpoint, "region": s.opts.Region, "profile": s.opts.Profile} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

func (s *Store) fail(op, key string, err error) error {
	return &objstore.Error{Op: op, Location: s.String(), Key: key, Err: err}
}

func (s *Store) fullKey(key string) string { return s.prefix + key }

// Head returns the size and ETag of key.
func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return objstore.ObjectInfo{}, s.fail("head", key, err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.opts.Bucket, Key: aws.String(s.fullKey(key))})
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("head", key, mapError(err))
	}
	return objstore.ObjectInfo{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: unquote(aws.ToString(out.ETag)), ModTime: aws.ToTime(out.LastModified),
	}, nil
}

// Get opens key, or the range of it that opts names.
func (s *Store) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, err)
	}
	if opts.Offset < 0 {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, fmt.Errorf("%w: offset %d", objstore.ErrInvalidRange, opts.Offset))
	}
	in := &s3.GetObjectInput{Bucket: &s.opts.Bucket, Key: aws.String(s.fullKey(key))}
	if opts.Offset > 0 || opts.Length > 0 {
		r := fmt.Sprintf("bytes=%d-", opts.Offset)
		if opts.Length > 0 {
			r += fmt.Sprint(opts.Offset + opts.Length - 1)
		}
		in.Range = aws.String(r)
	}
	if opts.IfNoneMatch != "" {
		in.IfNoneMatch = aws.String(quote(opts.IfNoneMatch))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, objstore.ObjectInfo{}, s.fail("get", key, mapError(err))
	}
	info := objstore.ObjectInfo{
		Key: key, Size: aws.ToInt64(out.ContentLength), ETag: unquote(aws.ToString(out.ETag)), ModTime: aws.ToTime(out.LastModified),
	}
	if total, ok := rangeTotal(aws.ToString(out.ContentRange)); ok {
		info.Size = total
	}
	return out.Body, info, nil
}

// rangeTotal reads the object size from a Content-Range "bytes a-b/total".
func rangeTotal(cr string) (int64, bool) {
	_, total, ok := strings.Cut(cr, "/")
	if !ok || total == "*" {
		return 0, false
	}
	var n int64
	if _, err := fmt.Sscan(total, &n); err != nil {
		return 0, false
	}
	return n, true
}

// Delete removes key.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := objstore.ValidateKey(key); err != nil {
		return s.fail("delete", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.opts.Bucket, Key: aws.String(s.fullKey(key))})
	if err != nil && !errors.Is(mapError(err), objstore.ErrNotFound) {
		return s.fail("delete", key, mapError(err))
	}
	return nil
}

// List yields the objects under prefix after startAfter, in key order.
func (s *Store) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		if err := objstore.ValidatePrefix(prefix); err != nil {
			yield(objstore.ObjectInfo{}, s.fail("list", prefix, err))
			return
		}
		in := &s3.ListObjectsV2Input{Bucket: &s.opts.Bucket, Prefix: aws.String(s.fullKey(prefix))}
		if startAfter != "" {
			in.StartAfter = aws.String(s.fullKey(startAfter))
		}
		pages := s3.NewListObjectsV2Paginator(s.client, in)
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(objstore.ObjectInfo{}, s.fail("list", prefix, mapError(err)))
				return
			}
			for _, o := range page.Contents {
				info := objstore.ObjectInfo{
					Key:  strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
					Size: aws.ToInt64(o.Size), ETag: unquote(aws.ToString(o.ETag)), ModTime: aws.ToTime(o.LastModified),
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

func quote(etag string) string { return `"` + etag + `"` }

func unquote(etag string) string { return strings.Trim(etag, `"`) }
