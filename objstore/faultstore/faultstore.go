// Package faultstore wraps an objstore.Store to inject the failures that a
// real server cannot be made to show on demand: the Nth call of a kind
// fails, a get returns a flipped byte or is cut short, every call is slow,
// or the store is unreachable for a while. Tests of the packages above the
// store use it; the wrapped store stays a real one (a folder or MinIO).
//
// Rules are added while the store is in use and are safe for concurrent
// use. A call consults the rules in the order they were added; the first
// that matches acts.
package faultstore

import (
	"context"
	"fmt"
	"io"
	"iter"
	"strings"
	"sync"
	"time"

	"github.com/rockstream/rockstream/objstore"
)

// Op is a kind of call.
type Op string

// The kinds of call.
const (
	Put    Op = "put"
	Get    Op = "get"
	Head   Op = "head"
	List   Op = "list"
	Delete Op = "delete"
)

// Rule is one injected fault.
type Rule struct {
	Op Op // the kind of call; "" matches every kind
	// KeyContains, if set, limits the rule to keys (or list prefixes) that
	// contain it.
	KeyContains string
	// Nth, if above zero, makes the rule act on the Nth matching call only
	// (counted from when the rule was added); otherwise on every one.
	Nth int
	// Every, if above zero, makes the rule act on every Every-th matching
	// call (the Every-th, the 2*Every-th, ...), for faults spread over a
	// long run.
	Every int
	// Err is returned instead of calling the store (after Delay). For a
	// put with AfterPut set, the put is made first and Err returned after,
	// as when an answer is lost on the way back.
	Err      error
	AfterPut bool
	// Flip makes a get return its bytes with the byte at FlipAt (counted
	// from the start of the read) inverted.
	Flip   bool
	FlipAt int64
	// Cut makes a get end with io.ErrUnexpectedEOF after CutAt bytes.
	Cut   bool
	CutAt int64
	// Delay is added before the call.
	Delay time.Duration

	seen int
}

// Store is a Store with injected faults.
type Store struct {
	inner objstore.Store
	mu    sync.Mutex
	rules []*Rule
	calls map[Op]int
	hits  int       // calls that a rule failed, damaged or cut
	down  time.Time // unreachable until then
}

var _ objstore.Store = (*Store)(nil)

// New wraps inner.
func New(inner objstore.Store) *Store {
	return &Store{inner: inner, calls: map[Op]int{}}
}

// Add adds a rule.
func (s *Store) Add(r Rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &r)
}

// FailNth makes the nth call of op (from now) fail with err.
func (s *Store) FailNth(op Op, n int, err error) {
	s.Add(Rule{Op: op, Nth: n, Err: err})
}

// FlipByte flips a byte of what every get of a key containing sub returns.
func (s *Store) FlipByte(sub string, offset int64) {
	s.Add(Rule{Op: Get, KeyContains: sub, Flip: true, FlipAt: offset})
}

// CutShort ends every get of a key containing sub after n bytes.
func (s *Store) CutShort(sub string, n int64) {
	s.Add(Rule{Op: Get, KeyContains: sub, Cut: true, CutAt: n})
}

// Latency delays every call of op ("" for all) by d.
func (s *Store) Latency(op Op, d time.Duration) {
	s.Add(Rule{Op: op, Delay: d})
}

// Unreachable makes every call fail with objstore.ErrUnreachable for d.
func (s *Store) Unreachable(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = time.Now().Add(d)
}

// Reset removes every rule and ends an outage.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules, s.down = nil, time.Time{}
}

// Calls returns how many calls of op were made, including failed ones.
func (s *Store) Calls(op Op) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Injected returns how many calls a rule or an outage failed, damaged or
// cut short (delays not counted).
func (s *Store) Injected() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits
}

// String is the inner store's, marked.
func (s *Store) String() string { return s.inner.String() + " (with faults)" }

// act finds what to do with a call and waits its delay.
func (s *Store) act(ctx context.Context, op Op, key string) (Rule, error) {
	s.mu.Lock()
	s.calls[op]++
	down := time.Now().Before(s.down)
	var hit Rule
	var delay time.Duration
	for _, r := range s.rules {
		if (r.Op != "" && r.Op != op) || !strings.Contains(key, r.KeyContains) {
			continue
		}
		r.seen++
		if (r.Nth > 0 && r.seen != r.Nth) || (r.Every > 0 && r.seen%r.Every != 0) {
			continue
		}
		delay += r.Delay
		if r.Err != nil || r.Flip || r.Cut {
			hit = *r
			s.hits++
			break
		}
	}
	if down {
		s.hits++
	}
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return Rule{}, ctx.Err()
		}
	}
	if down {
		return Rule{}, &objstore.Error{Op: string(op), Location: s.String(), Key: key,
			Err: fmt.Errorf("%w: injected outage", objstore.ErrUnreachable)}
	}
	return hit, nil
}

// Put writes through, unless a rule says otherwise.
func (s *Store) Put(ctx context.Context, key string, body io.Reader, size int64, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	r, err := s.act(ctx, Put, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if r.Err != nil && !r.AfterPut {
		return objstore.ObjectInfo{}, r.Err
	}
	info, err := s.inner.Put(ctx, key, body, size, opts)
	if err == nil && r.Err != nil {
		return objstore.ObjectInfo{}, r.Err
	}
	return info, err
}

// Get reads through, possibly damaging what it returns.
func (s *Store) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.ObjectInfo, error) {
	r, err := s.act(ctx, Get, key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	if r.Err != nil {
		return nil, objstore.ObjectInfo{}, r.Err
	}
	rc, info, err := s.inner.Get(ctx, key, opts)
	if err != nil || (!r.Flip && !r.Cut) {
		return rc, info, err
	}
	d := &damaged{rc: rc, flipAt: -1, cutAt: -1}
	if r.Flip {
		d.flipAt = r.FlipAt
	}
	if r.Cut {
		d.cutAt = r.CutAt
	}
	return d, info, nil
}

// Head asks through.
func (s *Store) Head(ctx context.Context, key string) (objstore.ObjectInfo, error) {
	r, err := s.act(ctx, Head, key)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	if r.Err != nil {
		return objstore.ObjectInfo{}, r.Err
	}
	return s.inner.Head(ctx, key)
}

// Delete deletes through.
func (s *Store) Delete(ctx context.Context, key string) error {
	r, err := s.act(ctx, Delete, key)
	if err != nil {
		return err
	}
	if r.Err != nil {
		return r.Err
	}
	return s.inner.Delete(ctx, key)
}

// List lists through.
func (s *Store) List(ctx context.Context, prefix, startAfter string) iter.Seq2[objstore.ObjectInfo, error] {
	return func(yield func(objstore.ObjectInfo, error) bool) {
		r, err := s.act(ctx, List, prefix)
		if err == nil {
			err = r.Err
		}
		if err != nil {
			yield(objstore.ObjectInfo{}, err)
			return
		}
		for info, err := range s.inner.List(ctx, prefix, startAfter) {
			if !yield(info, err) {
				return
			}
		}
	}
}

// damaged flips one byte and may end early.
type damaged struct {
	rc            io.ReadCloser
	off           int64
	flipAt, cutAt int64
}

func (d *damaged) Read(p []byte) (int, error) {
	if d.cutAt >= 0 {
		if d.off >= d.cutAt {
			return 0, io.ErrUnexpectedEOF
		}
		p = p[:min(int64(len(p)), d.cutAt-d.off)]
	}
	n, err := d.rc.Read(p)
	if d.flipAt >= d.off && d.flipAt < d.off+int64(n) {
		p[d.flipAt-d.off] ^= 0xff
	}
	d.off += int64(n)
	return n, err
}

func (d *damaged) Close() error { return d.rc.Close() }
