package s3store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/rockstream/rockstream/objstore"
)

// Put writes key: in one request up to PartSize bytes, else in parts.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	if err := opts.Validate(); err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	if r, ok := body.(sizedBody); ok && int64(r.Len()) < s.opts.PartSize {
		// In memory already (the archiver's segments: a bytes.Reader), or
		// sealed as it is read (a crypt.SealedReader, which gives the same
		// bytes again after a seek): sent as it is, and read again after
		// a seek for a retry, rather than copied into a buffer of a part's
		// size.
		info, err := s.putOne(ctx, key, r, int64(r.Len()), opts)
		return s.putDone(key, size, opts, info, err)
	}
	first, err := readPart(body, s.opts.PartSize)
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	var info objstore.ObjectInfo
	if int64(len(first)) < s.opts.PartSize || isEOF(body) {
		info, err = s.putOne(ctx, key, bytes.NewReader(first), int64(len(first)), opts)
	} else {
		info, err = s.putParts(ctx, key, first, body, opts)
	}
	return s.putDone(key, size, opts, info, err)
}

// sizedBody is a body that knows what is left of it and can be read
// again after a seek.
type sizedBody interface {
	io.ReadSeeker
	Len() int
}

// putDone checks the outcome of a Put.
func (s *Store) putDone(key string, size int64, opts objstore.PutOptions, info objstore.ObjectInfo, err error) (objstore.ObjectInfo, error) {
	if opts.IfMatch != "" && objstore.IsNotFound(err) {
		// S3 answers an if-match put on a missing key with 404 NoSuchKey.
		err = fmt.Errorf("%w: if-match %s but the object does not exist: %w", objstore.ErrPreconditionFailed, opts.IfMatch, err)
	}
	if err != nil {
		return objstore.ObjectInfo{}, s.fail("put", key, err)
	}
	if size >= 0 && info.Size != size {
		return info, s.fail("put", key, fmt.Errorf("wrote %d bytes, %d were announced", info.Size, size))
	}
	return info, nil
}

// readPart reads up to n bytes of r; a short read is the end of r.
func readPart(r io.Reader, n int64) ([]byte, error) {
	buf := make([]byte, n)
	k, err := io.ReadFull(r, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, fmt.Errorf("read body: %w", err)
	}
	return buf[:k], nil
}

// isEOF reports whether r is at its end when a full first part was read,
// for a body whose size was not announced: only a reader that reports its
// length (Len) can say so without reading; any other is taken as not at
// its end.
func isEOF(r io.Reader) bool {
	l, ok := r.(interface{ Len() int })
	return ok && l.Len() == 0
}

func conditions(opts objstore.PutOptions) (ifNoneMatch, ifMatch *string) {
	if opts.IfNoneMatch {
		ifNoneMatch = aws.String("*")
	}
	if opts.IfMatch != "" {
		ifMatch = aws.String(quote(opts.IfMatch))
	}
	return ifNoneMatch, ifMatch
}

func (s *Store) putOne(ctx context.Context, key string, data io.ReadSeeker, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	in := &s3.PutObjectInput{
		Bucket: &s.opts.Bucket, Key: aws.String(s.fullKey(key)),
		Body: data, ContentLength: aws.Int64(size),
	}
	in.IfNoneMatch, in.IfMatch = conditions(opts)
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		return objstore.ObjectInfo{}, mapError(err)
	}
	return objstore.ObjectInfo{Key: key, Size: size, ETag: unquote(aws.ToString(out.ETag)), ModTime: time.Now()}, nil
}

// multipart is one multipart upload in flight.
type multipart struct {
	s        *Store
	key      string
	uploadID *string
	mu       sync.Mutex
	parts    []types.CompletedPart
	size     int64
}

func (s *Store) putParts(ctx context.Context, key string, first []byte, body io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.opts.Bucket, Key: aws.String(s.fullKey(key))})
	if err != nil {
		return objstore.ObjectInfo{}, mapError(err)
	}
	m := &multipart{s: s, key: key, uploadID: out.UploadId}
	if err := m.uploadAll(ctx, first, body); err != nil {
		m.abort()
		return objstore.ObjectInfo{}, err
	}
	info, err := m.complete(ctx, opts)
	if err != nil {
		m.abort()
		return objstore.ObjectInfo{}, err
	}
	return info, nil
}

// uploadAll reads body part by part and uploads up to Concurrency parts at
// once; memory is bounded by Concurrency+1 parts.
func (m *multipart) uploadAll(ctx context.Context, first []byte, body io.Reader) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
		slots    = make(chan struct{}, m.s.opts.Concurrency)
	)
	fail := func(err error) { once.Do(func() { firstErr = err; cancel() }) }
	part := first
	for n := int32(1); len(part) > 0 && ctx.Err() == nil; n++ {
		if n > 10000 {
			fail(errors.New("object needs more than 10000 parts: raise the part size"))
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func(n int32, data []byte) {
			defer wg.Done()
			defer func() { <-slots }()
			if err := m.upload(ctx, n, data); err != nil {
				fail(err)
			}
		}(n, part)
		var err error
		if part, err = readPart(body, m.s.opts.PartSize); err != nil {
			fail(err)
		}
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return firstErr
}

func (m *multipart) upload(ctx context.Context, n int32, data []byte) error {
	out, err := m.s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &m.s.opts.Bucket, Key: aws.String(m.s.fullKey(m.key)), UploadId: m.uploadID,
		PartNumber: aws.Int32(n), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return fmt.Errorf("part %d: %w", n, mapError(err))
	}
	m.mu.Lock()
	m.parts = append(m.parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	m.size += int64(len(data))
	m.mu.Unlock()
	return nil
}

func (m *multipart) complete(ctx context.Context, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	sort.Slice(m.parts, func(i, j int) bool { return *m.parts[i].PartNumber < *m.parts[j].PartNumber })
	in := &s3.CompleteMultipartUploadInput{
		Bucket: &m.s.opts.Bucket, Key: aws.String(m.s.fullKey(m.key)), UploadId: m.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: m.parts},
	}
	in.IfNoneMatch, in.IfMatch = conditions(opts)
	out, err := m.s.client.CompleteMultipartUpload(ctx, in)
	if err != nil {
		return objstore.ObjectInfo{}, mapError(err)
	}
	return objstore.ObjectInfo{Key: m.key, Size: m.size, ETag: unquote(aws.ToString(out.ETag)), ModTime: time.Now()}, nil
}

// abort drops the parts of a failed upload, even when ctx was cancelled.
func (m *multipart) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &m.s.opts.Bucket, Key: aws.String(m.s.fullKey(m.key)), UploadId: m.uploadID,
	})
}
