package objstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
)

// ErrNoConditionalWrites is a store that ignores if-none-match or if-match:
// rockstream cannot fence a second writer on it.
var ErrNoConditionalWrites = errors.New("the store ignores conditional writes (if-none-match / if-match), which rockstream needs to fence a second writer")

// CheckStep is one step of Check.
type CheckStep struct {
	Name     string
	Duration time.Duration
	Err      error
}

// Check proves that s can hold an archive: it creates the object key,
// reads it back, checks that a second create-only put and a stale if-match
// put both fail, that an unchanged object answers a conditional get with
// "not modified", that a listing shows it, and deletes it. It returns the
// steps done, the failed one last, and the first error.
func Check(ctx context.Context, s Store, key string) ([]CheckStep, error) {
	c := checker{s: s, key: key, body: make([]byte, 64)}
	rand.Read(c.body)
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"create-only put", c.create},
		{"get", c.get},
		{"second create-only put is refused", c.createAgain},
		{"if-match put", c.replace},
		{"stale if-match put is refused", c.replaceStale},
		{"conditional get answers not modified", c.notModified},
		{"list", c.list},
		{"delete", c.delete},
	}
	var done []CheckStep
	for _, st := range steps {
		start := time.Now()
		err := st.fn(ctx)
		done = append(done, CheckStep{Name: st.name, Duration: time.Since(start), Err: err})
		if err != nil {
			if st.name != "create-only put" {
				s.Delete(context.WithoutCancel(ctx), key)
			}
			return done, fmt.Errorf("check %s: %s: %w", s, st.name, err)
		}
	}
	return done, nil
}

type checker struct {
	s    Store
	key  string
	body []byte
	etag string
}

func (c *checker) put(ctx context.Context, opts PutOptions) (ObjectInfo, error) {
	c.body = append(c.body[:0], []byte(hex.EncodeToString(c.body[:16]))...)
	c.body = append(c.body, time.Now().String()...)
	return c.s.Put(ctx, c.key, bytes.NewReader(c.body), int64(len(c.body)), opts)
}

func (c *checker) create(ctx context.Context) error {
	info, err := c.put(ctx, PutOptions{IfNoneMatch: true})
	c.etag = info.ETag
	return err
}

func (c *checker) get(ctx context.Context) error {
	rc, _, err := c.s.Get(ctx, c.key, GetOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, c.body) {
		return fmt.Errorf("read %d bytes that differ from the %d written", len(got), len(c.body))
	}
	return nil
}

func (c *checker) createAgain(ctx context.Context) error {
	_, err := c.put(ctx, PutOptions{IfNoneMatch: true})
	return refused(err)
}

func (c *checker) replace(ctx context.Context) error {
	info, err := c.put(ctx, PutOptions{IfMatch: c.etag})
	if err == nil && info.ETag == c.etag {
		return fmt.Errorf("a new version kept the etag %s", c.etag)
	}
	c.etag = info.ETag
	return err
}

func (c *checker) replaceStale(ctx context.Context) error {
	_, err := c.put(ctx, PutOptions{IfMatch: "0123456789abcdef0123456789abcdef"})
	return refused(err)
}

// refused turns the answer to a put that must fail into the check's error.
func refused(err error) error {
	switch {
	case err == nil:
		return ErrNoConditionalWrites
	case IsPreconditionFailed(err):
		return nil
	}
	return err
}

func (c *checker) notModified(ctx context.Context) error {
	rc, _, err := c.s.Get(ctx, c.key, GetOptions{IfNoneMatch: c.etag})
	if err == nil {
		rc.Close()
		return errors.New("the store answered an unchanged object in full instead of 'not modified'")
	}
	if errors.Is(err, ErrNotModified) {
		return nil
	}
	return err
}

func (c *checker) list(ctx context.Context) error {
	for info, err := range c.s.List(ctx, c.key, "") {
		if err != nil {
			return err
		}
		if info.Key == c.key {
			return nil
		}
	}
	return fmt.Errorf("the listing does not show %s", c.key)
}

func (c *checker) delete(ctx context.Context) error {
	if err := c.s.Delete(ctx, c.key); err != nil {
		return err
	}
	if _, err := c.s.Head(ctx, c.key); !IsNotFound(err) {
		return fmt.Errorf("the object is still there after delete (%v)", err)
	}
	return nil
}
