package stream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// runClient runs c until the test ends.
func runClient(t *testing.T, c *Client) {
	t.Helper()
	c.Logger = discardLogger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(waitLong):
			t.Error("Run did not return once its context ended")
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// stopServer stops srv when the test ends, after the clients run later
// (cleanups run last first): its handlers may wait for their client.
func stopServer(t *testing.T, srv *httptest.Server) {
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
}

// serveFrames serves a stream of frames, then heartbeats while idle as
// a Hub does, until the client goes.
func serveFrames(w http.ResponseWriter, r *http.Request, frames ...Frame) {
	sw, _ := NewWriter(w)
	for _, f := range frames {
		writeFrame(sw, f)
	}
	for {
		if sw.Flush() != nil {
			return
		}
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
			return
		case <-time.After(heartbeatEvery):
		}
		sw.WriteHeartbeat(Heartbeat{Timeline: 1, Epoch: 1, Time: time.Now()})
	}
}

// position is a standby's position: the sequence it wants next.
type position struct{ next atomic.Uint64 }

func (p *position) from() (uint32, uint64, bool) { return 1, p.next.Load(), true }

func nextFrame(t *testing.T, c *Client) Frame {
	t.Helper()
	return nextFrameBy(t, c, time.Now().Add(waitLong))
}

func nextFrameBy(t *testing.T, c *Client, deadline time.Time) Frame {
	t.Helper()
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	select {
	case f := <-c.Frames():
		return f
	case <-timeout.C:
		t.Fatalf("nothing in %v; status %+v", waitLong, c.Status())
		return Frame{}
	}
}

// nextBatch returns the next batch frame, skipping heartbeats.
func nextBatch(t *testing.T, c *Client) Frame {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		if f := nextFrameBy(t, c, deadline); f.Batch != nil {
			return f
		}
	}
}

// noBatch checks that no batch comes for a while. It cannot fail on a
// slow machine, only miss a batch that comes later.
func noBatch(t *testing.T, c *Client) {
	t.Helper()
	timeout := time.After(2 * heartbeatEvery)
	for {
		select {
		case f := <-c.Frames():
			if f.Batch != nil {
				t.Fatalf("%s came", showFrame(f))
			}
		case <-timeout:
			return
		}
	}
}

func TestClientFrames(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 1)
	h.SetPosition(3, 40)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	for i := range 5 {
		p.add(uint32(i%2+1), 1000*i)
	}
	pos := &position{}
	pos.next.Store(1)
	c := &Client{URL: srv.URL, From: pos.from}
	runClient(t, c)

	var got []Frame
	for i := range 10 {
		if i == 5 {
			// Live ones.
			for j := range 5 {
				p.add(1, j)
			}
		}
		f := nextBatch(t, c)
		if f.Conn != 1 {
			t.Errorf("batch %d came on connection %d, want 1", f.Batch.Seq, f.Conn)
		}
		got = append(got, f)
		c.Release(len(f.Batch.Data))
	}
	// Each batch's data is the client's: none was overwritten since.
	for i, f := range got {
		if !sameFrame(f, batchFrame(p.published[i])) {
			t.Errorf("batch %d = %s, want %s", i, showFrame(f), showFrame(batchFrame(p.published[i])))
		}
	}
	// Idle: heartbeats.
	var hb Frame
	for hb.Heartbeat == nil {
		hb = nextFrame(t, c)
		if hb.Batch != nil {
			t.Fatalf("%s, want a heartbeat", showFrame(hb))
		}
	}
	if hb.Conn != 1 || hb.Heartbeat.Next != p.seq || hb.Heartbeat.Archived != 3 || hb.Heartbeat.Head != 40 {
		t.Errorf("heartbeat %s on connection %d", showFrame(hb), hb.Conn)
	}
	st := c.Status()
	if !st.Connected || st.Connects != 1 || st.Batches != 10 || st.Error != "" || st.Since.IsZero() ||
		st.Last.Next != p.seq || st.LastAt.IsZero() || c.Conns() != 1 {
		t.Errorf("status %+v", st)
	}
}

// TestClientURL: the client asks for /stream at an address, and for the
// URL as it is when it has a path.
func TestClientURL(t *testing.T) {
	h := NewHub(0)
	h.Start(1, 1, 1)
	h.Publish(1, 1, at(1), []byte("one"))
	t.Cleanup(h.Close)
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	stopServer(t, srv)
	for _, c := range []struct{ name, url, path string }{
		{"address", srv.URL, "/stream"},
		{"address/", srv.URL + "/", "/stream"},
		{"stream URL", srv.URL + "/stream/db1", "/stream/db1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pos := &position{}
			pos.next.Store(1)
			cl := &Client{URL: c.url, From: pos.from}
			runClient(t, cl)
			if f := nextBatch(t, cl); f.Batch.Seq != 1 {
				t.Fatalf("batch %d", f.Batch.Seq)
			}
			mu.Lock()
			defer mu.Unlock()
			if paths[len(paths)-1] != c.path {
				t.Errorf("URL %s: asked for %s, want %s", c.url, paths[len(paths)-1], c.path)
			}
		})
	}
}

// TestClientReconnect: Reconnect makes the client connect again from what
// From says then, on a new connection.
func TestClientReconnect(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 1)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	for range 10 {
		p.add(1, 10)
	}
	pos := &position{}
	pos.next.Store(1)
	c := &Client{URL: srv.URL, From: pos.from}
	runClient(t, c)
	for i := range 10 {
		f := nextBatch(t, c)
		if f.Conn != 1 || f.Batch.Seq != uint64(1+i) {
			t.Fatalf("%s on connection %d, want batch %d on 1", showFrame(f), f.Conn, 1+i)
		}
	}
	for round, from := range []uint64{4, 11, 2} {
		pos.next.Store(from)
		stale := c.Conns()
		c.Reconnect()
		if from == 11 {
			p.add(1, 10) // 11: published once it waits
		}
		var f Frame
		deadline := time.Now().Add(waitLong)
		for f.Batch == nil || f.Conn <= stale {
			f = nextFrameBy(t, c, deadline)
			if f.Conn > stale+1 {
				t.Fatalf("frame on connection %d after %d", f.Conn, stale)
			}
		}
		if f.Batch.Seq != from {
			t.Fatalf("round %d: the new connection starts with batch %d, want %d", round, f.Batch.Seq, from)
		}
		for seq := from + 1; seq < p.seq; seq++ {
			if f := nextBatch(t, c); f.Batch.Seq != seq || f.Conn != stale+1 {
				t.Fatalf("%s on connection %d, want batch %d on %d", showFrame(f), f.Conn, seq, stale+1)
			}
		}
		if got := c.Conns(); got != stale+1 {
			t.Errorf("Conns %d, want %d", got, stale+1)
		}
	}
}

// TestClientMaxBytes: the client hands on no more than MaxBytes of
// batches not Released (each counted with BatchOverhead), and goes on
// once they are.
func TestClientMaxBytes(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 1)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	for range 50 {
		p.add(1, 100)
	}
	// From continues after the last batch handed on: if a connection
	// ends while the client waits for room, the next one goes on.
	var c *Client
	c = &Client{URL: srv.URL, MaxBytes: 10 * (100 + BatchOverhead), From: func() (uint32, uint64, bool) { return 1, 1 + uint64(c.Status().Batches), true }}
	runClient(t, c)

	next := uint64(1)
	// take reads the batches in the channel: they must be the next ones.
	take := func(want int) {
		t.Helper()
		got := 0
		for len(c.Frames()) > 0 {
			f := <-c.Frames()
			if f.Batch == nil {
				continue
			}
			if f.Batch.Seq != next {
				t.Fatalf("batch %d, want %d", f.Batch.Seq, next)
			}
			next++
			got++
		}
		if got != want {
			t.Fatalf("%d batches in the channel, want %d", got, want)
		}
	}
	// Nothing Released: 10 batches, and no more. (The sleep
	// waits for what must not come: it cannot make the test fail.)
	eventually(t, "10 batches handed on", func() bool { return c.Status().Batches == 10 }, func() any { return c.Status() }, func() any { return h.Stats() }, func() any { return len(c.Frames()) })
	time.Sleep(2 * heartbeatEvery)
	take(10)

	// 3 batches Released: 3 more.
	for range 3 {
		c.Release(100)
	}
	eventually(t, "13 batches handed on", func() bool { return c.Status().Batches == 13 })
	time.Sleep(2 * heartbeatEvery)
	take(3)
	noBatch(t, c)

	// All Released as they come: the rest, in order.
	for range 10 {
		c.Release(100)
	}
	for next < p.seq {
		f := nextBatch(t, c)
		if f.Batch.Seq != next {
			t.Fatalf("batch %d, want %d", f.Batch.Seq, next)
		}
		next++
		c.Release(len(f.Batch.Data))
	}
}

// TestClientRetries: a refused stream (410) shows in the status, and the
// client asks again until it is served.
func TestClientRetries(t *testing.T) {
	var calls atomic.Int32
	proceed := make(chan struct{})
	want := Batch{Timeline: 1, Epoch: 1, Seq: 5, Count: 1, Time: at(5), Data: []byte("five")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("from"); got != "5" {
			t.Errorf("asked from %q", got)
		}
		if calls.Add(1) == 1 {
			http.Error(w, "sequence 5 is no longer in memory (it holds from 9): read the bucket", http.StatusGone)
			return
		}
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		serveFrames(w, r, batchFrame(want))
	}))
	stopServer(t, srv)
	pos := &position{}
	pos.next.Store(5)
	c := &Client{URL: srv.URL, From: pos.from}
	runClient(t, c)

	eventually(t, "the status shows the 410", func() bool { return strings.Contains(c.Status().Error, "410") })
	st := c.Status()
	if st.Connected || st.Connects != 0 || !strings.Contains(st.Error, "read the bucket") {
		t.Errorf("status %+v", st)
	}
	close(proceed)
	if f := nextBatch(t, c); !sameFrame(f, batchFrame(want)) || f.Conn != 1 {
		t.Fatalf("%s on connection %d", showFrame(f), f.Conn)
	}
	st = c.Status()
	if !st.Connected || st.Connects != 1 || st.Error != "" {
		t.Errorf("status %+v, want connected", st)
	}
}

// TestClientToken: the token goes as a bearer token.
func TestClientToken(t *testing.T) {
	h := NewHub(0)
	h.Start(1, 1, 1)
	h.Publish(1, 1, at(1), []byte("one"))
	t.Cleanup(h.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "no entry", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	stopServer(t, srv)
	pos := &position{}
	pos.next.Store(1)

	t.Run("right", func(t *testing.T) {
		c := &Client{URL: srv.URL, Token: "s3cret", From: pos.from}
		runClient(t, c)
		if f := nextBatch(t, c); f.Batch.Seq != 1 {
			t.Fatalf("batch %d", f.Batch.Seq)
		}
	})
	t.Run("wrong", func(t *testing.T) {
		c := &Client{URL: srv.URL, Token: "guess", From: pos.from}
		runClient(t, c)
		eventually(t, "the status shows the 401", func() bool { return strings.Contains(c.Status().Error, "401") })
		if st := c.Status(); st.Connects != 0 || strings.Contains(st.Error, "guess") {
			t.Errorf("status %+v", st)
		}
	})
}

// TestClientCut: a stream cut inside a frame: the client does not hand
// on the part, and connects again.
func TestClientCut(t *testing.T) {
	b1 := Batch{Timeline: 1, Epoch: 1, Seq: 1, Count: 1, Time: at(1), Data: []byte("one")}
	b2 := Batch{Timeline: 1, Epoch: 1, Seq: 2, Count: 1, Time: at(2), Data: pattern(2, 500)}
	full := encode(t, batchFrame(b1), batchFrame(b2))
	cut := full[:len(full)-250]
	var calls atomic.Int32
	proceed := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Write(cut)
			return
		}
		select {
		case <-proceed:
		case <-r.Context().Done():
			return
		}
		serveFrames(w, r, batchFrame(b1), batchFrame(b2))
	}))
	stopServer(t, srv)
	pos := &position{}
	pos.next.Store(1)
	c := &Client{URL: srv.URL, From: pos.from}
	runClient(t, c)

	if f := nextBatch(t, c); f.Conn != 1 || !sameFrame(f, batchFrame(b1)) {
		t.Fatalf("%s on connection %d", showFrame(f), f.Conn)
	}
	eventually(t, "the status shows the cut", func() bool { return strings.Contains(c.Status().Error, io.ErrUnexpectedEOF.Error()) })
	if len(c.Frames()) != 0 {
		t.Fatalf("%s handed on from the cut stream", showFrame(<-c.Frames()))
	}
	close(proceed)
	for _, want := range []Batch{b1, b2} {
		if f := nextBatch(t, c); f.Conn != 2 || !sameFrame(f, batchFrame(want)) {
			t.Fatalf("%s on connection %d, want %s on 2", showFrame(f), f.Conn, showFrame(batchFrame(want)))
		}
	}
	if st := c.Status(); !st.Connected || st.Connects != 2 || st.Batches != 3 || st.Error != "" {
		t.Errorf("status %+v", st)
	}
}

// TestClientWaitsForFrom: while From says not now, the client asks
// nothing.
func TestClientWaitsForFrom(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 1)
	h.Publish(1, 1, at(1), []byte("one"))
	var ready atomic.Bool
	asked := make(chan struct{}, 100)
	c := &Client{URL: srv.URL, From: func() (uint32, uint64, bool) {
		asked <- struct{}{}
		return 1, 1, ready.Load()
	}}
	runClient(t, c)
	for range 3 {
		<-asked
	}
	if st := h.Stats(); st.Served != 0 || c.Status().Connects != 0 {
		t.Fatalf("served %d streams while From said not now", st.Served)
	}
	ready.Store(true)
	if f := nextBatch(t, c); f.Batch.Seq != 1 {
		t.Fatalf("batch %d", f.Batch.Seq)
	}
}
