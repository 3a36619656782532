package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Client reads an archiver's stream for a standby: it connects from the
// position that From gives, hands each frame to Frames, and connects again
// whenever the stream ends, with a growing wait while it fails.
type Client struct {
	// URL is the stream's URL: http://HOST:PORT/stream/NAME, or the
	// archiver's address http://HOST:PORT (its --listen), to which
	// /stream is added.
	URL string
	// Token, when set, is sent as a bearer token.
	Token string
	// Identity, when set, is the archive's database identity: an archiver
	// of another database refuses the stream (409).
	Identity string
	// From gives the timeline to ask for and the first sequence wanted:
	// the standby's latest sequence plus one. ok false: not now (the
	// client waits and asks again).
	From func() (tl uint32, from uint64, ok bool)
	// HTTP defaults to a client without a timeout (a stream lasts).
	HTTP *http.Client
	// MaxBytes bounds the batch bytes handed on and not yet Released, each
	// batch counting BatchOverhead more (default 64 MiB): past it the
	// client stops reading, and ends the stream after holdWait.
	MaxBytes int
	Logger   *slog.Logger

	frames chan Frame
	hurry  chan struct{}
	mu     sync.Mutex
	cond   *sync.Cond
	held   int
	cancel context.CancelFunc // the connection's
	asked  bool               // Reconnect cancelled it
	st     ClientStatus
}

// ClientStatus says what the stream does.
type ClientStatus struct {
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since"`
	Error     string    `json:"error,omitempty"`
	// Connects counts the streams opened; Batches the batches read.
	Connects int64 `json:"connects"`
	Batches  int64 `json:"batches"`
	// Last is the newest heartbeat, and when it came.
	Last   Heartbeat `json:"-"`
	LastAt time.Time `json:"last_heartbeat"`
	// FailedAt is when a stream last failed to open or ended on an error.
	FailedAt time.Time `json:"failed_at"`
}

// Frames is where the frames come, in order. A Batch's Data is the
// client's copy: Release its length once applied or dropped.
func (c *Client) Frames() <-chan Frame {
	c.init()
	return c.frames
}

func (c *Client) init() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frames == nil {
		c.frames = make(chan Frame, 1024)
		c.hurry = make(chan struct{}, 1)
		c.cond = sync.NewCond(&c.mu)
		if c.MaxBytes <= 0 {
			c.MaxBytes = 64 << 20
		}
		if c.HTTP == nil {
			c.HTTP = &http.Client{}
		}
		if c.Logger == nil {
			c.Logger = slog.Default()
		}
	}
}

// Release returns a batch of n bytes handed on (its BatchOverhead too).
func (c *Client) Release(n int) {
	c.mu.Lock()
	c.held -= n + BatchOverhead
	c.cond.Broadcast()
	c.mu.Unlock()
}

// Reconnect ends the current stream: the client connects again from what
// From says then (after a gap, or batches it must not apply). The frames
// of the ended connection still queued are stale: skip those of a Conn
// up to Conns() read before the call.
func (c *Client) Reconnect() {
	c.mu.Lock()
	if c.cancel != nil {
		c.asked = true
		c.cancel()
	}
	c.mu.Unlock()
}

// reconnecting reports (and forgets) a Reconnect of the current stream.
func (c *Client) reconnecting() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	asked := c.asked
	c.asked = false
	return asked
}

// Hurry makes a client that waits to connect again try now.
func (c *Client) Hurry() {
	c.init()
	select {
	case c.hurry <- struct{}{}:
	default:
	}
}

// Conns is the number of the newest connection.
func (c *Client) Conns() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Connects
}

// Status returns the stream's state.
func (c *Client) Status() ClientStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

// Run reads streams until ctx ends.
func (c *Client) Run(ctx context.Context) {
	c.init()
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		tl, from, ok := c.From()
		if !ok {
			sleep(ctx, 100*time.Millisecond)
			continue
		}
		got, err := c.once(ctx, tl, from)
		c.mu.Lock()
		c.st.Connected = false
		if err != nil && ctx.Err() == nil {
			c.st.Error, c.st.FailedAt = err.Error(), time.Now()
		}
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if got {
			wait = 100 * time.Millisecond
		} else {
			wait = min(2*wait, 2*time.Second)
		}
		if err != nil {
			c.Logger.Debug("stream: will connect again", "in", wait, "error", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-c.hurry:
		}
		t.Stop()
	}
}

// idleTimeout ends a stream that brought no frame for this long (the Hub
// sends a heartbeat every heartbeatEvery while idle): a connection that a
// partition or a dead host left half open.
const idleTimeout = 4 * heartbeatEvery

// once reads one stream; got says whether it delivered anything.
func (c *Client) once(ctx context.Context, tl uint32, from uint64) (bool, error) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	c.cancel = cancel
	c.mu.Unlock()
	u := c.URL
	if p, err := url.Parse(u); err == nil && (p.Path == "" || p.Path == "/") {
		u = strings.TrimSuffix(u, "/") + "/stream"
	}
	q := url.Values{"timeline": {fmt.Sprint(tl)}, "from": {fmt.Sprint(from)}}
	if c.Identity != "" {
		q.Set("identity", c.Identity)
	}
	u += "?" + q.Encode()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return false, fmt.Errorf("GET %s: %s: %s", redactURL(u), resp.Status, strings.TrimSpace(string(msg)))
	}
	r, err := NewReader(resp.Body)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	c.st.Connected, c.st.Since, c.st.Error = true, time.Now(), ""
	c.st.Connects++
	conn := c.st.Connects
	c.mu.Unlock()
	got := false
	idle := time.AfterFunc(idleTimeout, cancel)
	defer idle.Stop()
	for {
		f, err := r.Next()
		idle.Reset(idleTimeout)
		if err != nil {
			if ctx.Err() == nil && cctx.Err() != nil && !c.reconnecting() {
				return got, fmt.Errorf("no frame for %s: the connection is gone", idleTimeout)
			}
			if errors.Is(err, io.EOF) || cctx.Err() != nil {
				return got, nil
			}
			return got, err
		}
		f.Conn = conn
		if f.Batch != nil {
			b := *f.Batch
			b.Data = append([]byte(nil), b.Data...)
			if !c.hold(cctx, len(b.Data)) {
				return got, nil
			}
			f.Batch = &b
		} else {
			c.mu.Lock()
			c.st.Last, c.st.LastAt = *f.Heartbeat, time.Now()
			c.mu.Unlock()
		}
		select {
		case c.frames <- f:
			got = true
			if f.Batch != nil {
				c.mu.Lock()
				c.st.Batches++
				c.mu.Unlock()
			}
		case <-cctx.Done():
			if f.Batch != nil {
				c.Release(len(f.Batch.Data))
			}
			return got, nil
		}
	}
}

// holdWait bounds the wait for room in the budget: past it the stream
// ends (the standby reads the bucket, which frees the room).
const holdWait = 5 * time.Second

// hold waits until n more bytes may be handed on, up to holdWait.
func (c *Client) hold(ctx context.Context, n int) bool {
	ctx, cancel := context.WithTimeout(ctx, holdWait)
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	n += BatchOverhead
	for c.held > 0 && c.held+n > c.MaxBytes && ctx.Err() == nil {
		c.cond.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	c.held += n
	return true
}

func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.User = nil
		return p.String()
	}
	return "the stream"
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
