package restore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/objstore"
)

// Read-ahead of segments: each object is read in chunks of chunkSize, at
// most perObject chunks ahead of its reader.
const (
	chunkSize = 256 << 10
	perObject = 8
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// prefetch reads the segments of a restore ahead of the replay, in order:
// up to `objects` objects at once, each at most perObject chunks ahead of
// its reader. Network transfers and GET latency overlap with applying
// batches, and memory stays at objects × (perObject+2) chunks whatever
// the size of the archive: the state of an object (its channel, context)
// is made only when its fetch starts, so a plan of many segments costs
// nothing more here than its list of keys.
type prefetch struct {
	ctx    context.Context
	cancel context.CancelFunc
	keys   []string
	ready  chan *fetched // the started fetches, in order; closed after the last key
	slots  chan struct{}
	wg     sync.WaitGroup
}

// fetched is one object being read ahead.
type fetched struct {
	key      string
	ch       chan chunk // closed after the chunk that carries io.EOF or an error
	ctx      context.Context
	cancel   context.CancelFunc
	released chan struct{} // closed when its reader is closed
}

// chunk is a part of an object, or its end (err io.EOF), or a failure.
type chunk struct {
	buf *[]byte
	n   int
	err error
}

func startPrefetch(ctx context.Context, s objstore.Store, keys []string, objects int) *prefetch {
	ctx, cancel := context.WithCancel(ctx)
	objects = max(objects, 1)
	p := &prefetch{ctx: ctx, cancel: cancel, keys: keys,
		ready: make(chan *fetched, objects), slots: make(chan struct{}, objects)}
	p.wg.Add(1)
	go p.run(s)
	return p
}

// run starts the fetch of each object in order, once a slot is free, and
// hands it to open through p.ready; the slot is freed when the object's
// reader is closed. A fetch holds its slot from before it enters p.ready,
// so p.ready (as large as the slots) never blocks run.
func (p *prefetch) run(s objstore.Store) {
	defer p.wg.Done()
	defer close(p.ready)
	for _, k := range p.keys {
		select {
		case p.slots <- struct{}{}:
		case <-p.ctx.Done():
			return
		}
		octx, ocancel := context.WithCancel(p.ctx)
		o := &fetched{key: k, ch: make(chan chunk, perObject), ctx: octx, cancel: ocancel, released: make(chan struct{})}
		p.ready <- o
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			o.fetch(s)
			select {
			case <-o.released:
			case <-p.ctx.Done():
			}
			<-p.slots
		}()
	}
}

// fetch reads the object into its channel. A transfer that breaks off
// (a connection reset, or a body shorter than the object) is resumed with
// a ranged get from where it stopped, up to resumeAttempts times: a
// reader ahead of a slow replay may sit idle long enough for a server to
// drop its connection.
func (o *fetched) fetch(s objstore.Store) {
	defer close(o.ch)
	var st stream
	for attempt := 1; ; attempt++ {
		err := o.stream(s, &st)
		if err == nil || o.ctx.Err() != nil {
			return
		}
		var broken *brokenTransfer
		if attempt == resumeAttempts || !errors.As(err, &broken) {
			o.send(chunk{err: err})
			return
		}
	}
}

const resumeAttempts = 3

// stream is the progress of one object's transfer.
type stream struct {
	off  int64  // bytes sent on
	size int64  // the object's size, from the first get
	etag string // its ETag, from the first get
}

// brokenTransfer is a transfer that stopped before the object's end.
type brokenTransfer struct{ err error }

func (b *brokenTransfer) Error() string { return b.err.Error() }
func (b *brokenTransfer) Unwrap() error { return b.err }

// stream gets the object from st.off and sends its chunks; it returns nil
// once the end was sent (or the reader is gone), a *brokenTransfer when
// the transfer stopped early, or the get's error.
func (o *fetched) stream(s objstore.Store, st *stream) error {
	rc, info, err := s.Get(o.ctx, o.key, objstore.GetOptions{Offset: st.off})
	if err != nil {
		return err
	}
	defer rc.Close()
	if st.etag == "" {
		st.size, st.etag = info.Size, info.ETag
	} else if info.ETag != st.etag || info.Size != st.size {
		return fmt.Errorf("the object changed while it was read (etag %s, then %s)", st.etag, info.ETag)
	}
	for {
		b := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(rc, *b)
		st.off += int64(n)
		end := st.off >= st.size
		if err != nil && !end {
			if n > 0 && !o.send(chunk{buf: b, n: n}) {
				return nil
			}
			if crypt.IsPermanent(err) {
				return err // the object is what is wrong: reading it again cannot help
			}
			// %v: an early end of the transfer is not a truncated segment.
			return &brokenTransfer{fmt.Errorf("the transfer stopped at byte %d of %d: %v", st.off, st.size, err)}
		}
		c := chunk{buf: b, n: n}
		if end {
			c.err = io.EOF
		}
		if !o.send(c) || end {
			return nil
		}
	}
}

func (o *fetched) send(c chunk) bool {
	select {
	case o.ch <- c:
		return true
	case <-o.ctx.Done():
		if c.buf != nil {
			chunkPool.Put(c.buf)
		}
		return false
	}
}

// open returns the reader of the next object, which must be key. Close it
// when done, read to the end or not, to free its slot.
func (p *prefetch) open(key string) (*objReader, error) {
	var o *fetched
	select {
	case o = <-p.ready:
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	if o == nil || o.key != key {
		if o != nil {
			(&objReader{o: o}).Close()
		}
		return nil, fmt.Errorf("segment %s: read out of the planned order", key)
	}
	return &objReader{o: o}, nil
}

// close stops every fetch and waits for them.
func (p *prefetch) close() {
	p.cancel()
	p.wg.Wait()
}

// objReader reads one prefetched object.
type objReader struct {
	o      *fetched
	buf    *[]byte
	n, off int
	err    error
	closed bool
}

func (r *objReader) Read(b []byte) (int, error) {
	for r.off == r.n {
		if r.err != nil {
			return 0, r.err
		}
		r.putBuf()
		select {
		case c, ok := <-r.o.ch:
			if !ok {
				r.err = cmp.Or(r.o.ctx.Err(), io.ErrUnexpectedEOF)
				continue
			}
			r.buf, r.n, r.off, r.err = c.buf, c.n, 0, c.err
		case <-r.o.ctx.Done():
			r.err = r.o.ctx.Err()
		}
	}
	n := copy(b, (*r.buf)[r.off:r.n])
	r.off += n
	return n, nil
}

func (r *objReader) putBuf() {
	if r.buf != nil {
		chunkPool.Put(r.buf)
		r.buf, r.n, r.off = nil, 0, 0
	}
}

// Close stops the object's fetch, drops what it read ahead and frees its
// slot for the next object.
func (r *objReader) Close() error {
	if r.closed {
		return nil
	}
	r.closed = true
	r.o.cancel()
	close(r.o.released)
	r.putBuf()
	for {
		select {
		case c, ok := <-r.o.ch:
			if !ok {
				return nil
			}
			if c.buf != nil {
				chunkPool.Put(c.buf)
			}
		default:
			return nil
		}
	}
}
