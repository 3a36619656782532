package stream

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// waitLong bounds every wait of these tests: far more than anything takes
// on a loaded machine, there only to turn a hang into a failure.
const waitLong = 60 * time.Second

// newHubServer serves a Hub of ring bytes over HTTP; the cleanup ends its
// streams before it stops the server.
func newHubServer(t *testing.T, ring int) (*Hub, *httptest.Server) {
	t.Helper()
	h := NewHub(ring)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.CloseClientConnections()
		srv.Close()
	})
	return h, srv
}

// at is a fixed time of sequence seq.
func at(seq uint64) time.Time { return time.Unix(0, 1_700_000_000_000_000_000+int64(seq)*1000) }

// publisher publishes batches of a Hub started with timeline tl and epoch
// epoch, from seq, and keeps them.
type publisher struct {
	h         *Hub
	tl        uint32
	epoch     uint64
	seq       uint64
	published []Batch
}

func (p *publisher) add(count uint32, size int) Batch {
	b := Batch{Timeline: p.tl, Epoch: p.epoch, Seq: p.seq, Count: count, Time: at(p.seq), Data: pattern(byte(p.seq), size)}
	p.h.Publish(b.Seq, b.Count, b.Time, b.Data)
	p.seq = b.Next()
	p.published = append(p.published, b)
	return b
}

// streamConn reads a stream in the background.
type streamConn struct {
	resp   *http.Response
	frames chan Frame
	err    error // why the stream ended: set before frames is closed
	done   chan struct{}
}

func get(t *testing.T, srv *httptest.Server, query string) *http.Response {
	t.Helper()
	resp, err := http.Get(srv.URL + "/stream?" + query)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// status asks for a stream that must be refused with code, and returns
// the body.
func status(t *testing.T, srv *httptest.Server, query string, code int) string {
	t.Helper()
	resp := get(t, srv, query)
	if resp.StatusCode == http.StatusOK {
		resp.Body.Close() // a stream: never ends by itself
		t.Fatalf("GET /stream?%s: %s, want %d", query, resp.Status, code)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("GET /stream?%s: %s (%s), want %d", query, resp.Status, strings.TrimSpace(string(body)), code)
	}
	return string(body)
}

func openStream(t *testing.T, srv *httptest.Server, tl uint32, from uint64) *streamConn {
	t.Helper()
	resp := get(t, srv, fmt.Sprintf("timeline=%d&from=%d", tl, from))
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET from %d: %s: %s", from, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-rockstream-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	s := &streamConn{resp: resp, frames: make(chan Frame, 1<<16), done: make(chan struct{})}
	t.Cleanup(func() { close(s.done) })
	go func() {
		defer close(s.frames)
		r, err := NewReader(resp.Body)
		if err != nil {
			s.err = err
			return
		}
		for {
			f, err := r.Next()
			if err != nil {
				s.err = err
				return
			}
			select {
			case s.frames <- copyFrame(f):
			case <-s.done:
				s.err = errors.New("test over")
				return
			}
		}
	}()
	return s
}

// next returns the next frame, or false when the stream ended (s.err).
func (s *streamConn) next(t *testing.T) (Frame, bool) {
	t.Helper()
	return s.nextBy(t, time.Now().Add(waitLong))
}

// nextBy is next with a deadline.
func (s *streamConn) nextBy(t *testing.T, deadline time.Time) (Frame, bool) {
	t.Helper()
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
	select {
	case f, ok := <-s.frames:
		return f, ok
	case <-timeout.C:
		t.Fatalf("nothing in %v", waitLong)
		return Frame{}, false
	}
}

// batch returns the next batch, skipping heartbeats.
func (s *streamConn) batch(t *testing.T) Batch {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		f, ok := s.nextBy(t, deadline)
		if !ok {
			t.Fatalf("the stream ended (%v), want a batch", s.err)
		}
		if f.Batch != nil {
			return *f.Batch
		}
	}
}

// heartbeat returns the next heartbeat; no batch may come first.
func (s *streamConn) heartbeat(t *testing.T) Heartbeat {
	t.Helper()
	f, ok := s.next(t)
	if !ok {
		t.Fatalf("the stream ended (%v), want a heartbeat", s.err)
	}
	if f.Batch != nil {
		t.Fatalf("%s, want a heartbeat", showFrame(f))
	}
	return *f.Heartbeat
}

// end reads the stream to its end, which must be io.EOF with no batch
// before it, and returns the heartbeats read.
func (s *streamConn) end(t *testing.T) []Heartbeat {
	t.Helper()
	var hbs []Heartbeat
	deadline := time.Now().Add(waitLong)
	for {
		f, ok := s.nextBy(t, deadline)
		if !ok {
			if s.err != io.EOF {
				t.Fatalf("the stream ended with %v, want io.EOF", s.err)
			}
			return hbs
		}
		if f.Batch != nil {
			t.Fatalf("%s, want the end of the stream", showFrame(f))
		}
		hbs = append(hbs, *f.Heartbeat)
	}
}

// expect reads the next batch, which must be want (published before:
// the argument is evaluated first).
func (s *streamConn) expect(t *testing.T, want Batch) {
	t.Helper()
	sameBatch(t, s.batch(t), want)
}

func sameBatch(t *testing.T, got, want Batch) {
	t.Helper()
	if !sameFrame(batchFrame(got), batchFrame(want)) {
		t.Fatalf("got %s, want %s", showFrame(batchFrame(got)), showFrame(batchFrame(want)))
	}
}

// eventually polls cond until it holds.
func eventually(t *testing.T, what string, cond func() bool, show ...func() any) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			var shown []any
			for _, f := range show {
				shown = append(shown, f())
			}
			t.Fatalf("not in %v: %s %v", waitLong, what, shown)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestHubStream(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 7, 100)
	h.SetPosition(90, 120)
	p := &publisher{h: h, tl: 1, epoch: 7, seq: 100}
	p.add(3, 10)
	p.add(0, 5) // a prepare at 103
	p.add(2, 0) // 103
	p.add(1, 100)
	p.add(4, 3000)

	// From 103, a batch boundary: the batches from there, in order.
	s := openStream(t, srv, 1, 103)
	for _, want := range p.published[1:] {
		sameBatch(t, s.batch(t), want)
	}
	// Then the live ones, as they come.
	for i := range 20 {
		if i == 19 {
			h.SetPosition(100, 130)
		}
		want := p.add(uint32(i%3), i*10)
		sameBatch(t, s.batch(t), want)
	}
	// Then, idle, heartbeats saying where the archiver is.
	for range 2 {
		hb := s.heartbeat(t)
		if hb.Timeline != 1 || hb.Epoch != 7 || hb.Next != p.seq || hb.Archived != 100 || hb.Head != 130 {
			t.Fatalf("heartbeat %+v, want timeline 1, epoch 7, next %d, archived 100, head 130", hb, p.seq)
		}
		if time.Since(hb.Time) > waitLong || time.Until(hb.Time) > time.Minute {
			t.Fatalf("heartbeat time %v", hb.Time)
		}
	}
	// A new position shows in the heartbeats that follow.
	h.SetPosition(110, 140)
	for old := 0; ; old++ {
		hb := s.heartbeat(t)
		if hb.Archived == 110 && hb.Head == 140 && hb.Next == p.seq {
			break
		}
		// One heartbeat may say what it was when it was made, before.
		if hb.Archived != 100 || hb.Head != 130 || old > 0 {
			t.Fatalf("heartbeat %+v, want archived 110, head 140", hb)
		}
	}
	// And batches again.
	s.expect(t, p.add(1, 1))

	// The counters: sent batches are counted once the write returned.
	var bytes int64
	for _, b := range p.published[1:] {
		bytes += int64(len(b.Data))
	}
	eventually(t, "the batches sent are counted", func() bool { return h.Stats().Batches == int64(len(p.published)-1) })
	if st := h.Stats(); st.Clients != 1 || st.Served != 1 || st.Bytes != bytes || st.Behind != 0 {
		t.Errorf("stats %+v, want 1 client, 1 served, %d batches of %d bytes", st, len(p.published)-1, bytes)
	}

	// Two clients at once, from different places.
	s2 := openStream(t, srv, 1, 100)
	for _, want := range p.published {
		sameBatch(t, s2.batch(t), want)
	}
	want := p.add(2, 2)
	sameBatch(t, s.batch(t), want)
	sameBatch(t, s2.batch(t), want)
	if st := h.Stats(); st.Clients != 2 || st.Served != 2 {
		t.Errorf("stats %+v, want 2 clients, 2 served", st)
	}

	// A client that goes is no longer counted.
	s.resp.Body.Close()
	eventually(t, "the client that went is not counted", func() bool { return h.Stats().Clients == 1 })
}

func TestHubRefuses(t *testing.T) {
	h, srv := newHubServer(t, 0)
	status(t, srv, "timeline=1&from=1", http.StatusServiceUnavailable)
	h.Start(3, 1, 10)
	for _, q := range []string{
		"",
		"timeline=3",
		"from=10",
		"timeline=x&from=10",
		"timeline=3&from=y",
		"timeline=3&from=0",
		"timeline=3&from=-1",
		"timeline=-3&from=10",
		"timeline=4294967299&from=10", // 3 + 2^32
		"timeline=3&from=18446744073709551616",
		"timeline=3&from=1e3",
	} {
		status(t, srv, q, http.StatusBadRequest)
	}
	if body := status(t, srv, "timeline=2&from=10", http.StatusConflict); !strings.Contains(body, "timeline 3") {
		t.Errorf("409 says %q", body)
	}
	status(t, srv, "timeline=4&from=10", http.StatusConflict)
	s := openStream(t, srv, 3, 10)
	h.Close()
	s.end(t)
	status(t, srv, "timeline=3&from=10", http.StatusServiceUnavailable)
	// Started again, it serves again.
	h.Start(3, 1, 10)
	s = openStream(t, srv, 3, 10)
	p := &publisher{h: h, tl: 3, epoch: 1, seq: 10}
	s.expect(t, p.add(1, 1))
	if st := h.Stats(); st.Served != 2 {
		t.Errorf("stats %+v, want 2 served (the refused not counted)", st)
	}
}

func TestHubGone(t *testing.T) {
	h, srv := newHubServer(t, 10*(100+BatchOverhead))
	h.Start(1, 1, 1)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	for range 20 {
		p.add(2, 100) // 1, 3, ..., 39: the ring keeps 21 to 39
	}
	q := func(from uint64) string { return fmt.Sprintf("timeline=1&from=%d", from) }
	for _, from := range []uint64{1, 2, 3, 19, 20} {
		if body := status(t, srv, q(from), http.StatusGone); !strings.Contains(body, "read the bucket") || !strings.Contains(body, "holds from 21") {
			t.Errorf("410 says %q", body)
		}
	}
	// Inside a batch: no batch starts there.
	for _, from := range []uint64{22, 30, 38, 40} {
		status(t, srv, q(from), http.StatusGone)
	}
	// The oldest the ring holds, a later one, the last.
	for i, from := range []uint64{21, 31, 39} {
		s := openStream(t, srv, 1, from)
		for _, want := range p.published[10+5*i:] {
			sameBatch(t, s.batch(t), want)
		}
	}
	// next (41): the batches to come.
	s := openStream(t, srv, 1, 41)
	s.expect(t, p.add(1, 10))

	// A batch larger than the ring is kept alone.
	big := p.add(3, 5000)
	status(t, srv, q(big.Seq-1), http.StatusGone)
	sameBatch(t, openStream(t, srv, 1, big.Seq).batch(t), big)
	sameBatch(t, s.batch(t), big)

	// After a gap the ring is empty: all before the gap is gone.
	p.seq += 10
	p.add(1, 10)
	s.end(t)
	status(t, srv, q(big.Seq), http.StatusGone)
	status(t, srv, q(p.seq-1), http.StatusGone)
	s = openStream(t, srv, 1, p.seq)
	s.expect(t, p.add(1, 10))
}

// TestHubPrepares: a batch that uses no sequence (a prepare) shares its
// Seq with the batch after it: a client from that Seq gets the prepare
// first, and one the ring lost makes that Seq gone.
func TestHubPrepares(t *testing.T) {
	h, srv := newHubServer(t, 3*(100+BatchOverhead)) // 3 batches of 100 bytes
	h.Start(1, 1, 1)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	p.add(1, 100)         // 1
	prep := p.add(0, 100) // 2, and next stays 2
	s := openStream(t, srv, 1, 2)
	s.expect(t, prep)
	b2 := p.add(2, 100) // 2..3
	s.expect(t, b2)
	q := func(from uint64) string { return fmt.Sprintf("timeline=1&from=%d", from) }

	b4 := p.add(1, 100) // the ring drops 1
	s.expect(t, b4)
	status(t, srv, q(1), http.StatusGone)
	s2 := openStream(t, srv, 1, 2)
	for _, want := range []Batch{prep, b2, b4} {
		s2.expect(t, want)
	}
	b5 := p.add(1, 100) // the ring drops the prepare, and keeps 2..3
	status(t, srv, q(2), http.StatusGone)
	s3 := openStream(t, srv, 1, 4)
	s3.expect(t, b4)
	s3.expect(t, b5)
	b6 := p.add(1, 100) // the ring drops 2..3
	status(t, srv, q(2), http.StatusGone)
	openStream(t, srv, 1, 4).expect(t, b4)

	// Each client has what was published (a reset drops what a client
	// was not sent yet: it must not race with the sending).
	for _, c := range []*streamConn{s, s2} {
		c.expect(t, b5)
	}
	for _, c := range []*streamConn{s, s2, s3} {
		c.expect(t, b6)
	}
	// A prepare that does not continue the ring resets it: the clients'
	// streams end, and its Seq is gone, also once a batch continues there.
	p.seq = 20
	p.add(0, 10)
	for _, c := range []*streamConn{s, s2, s3} {
		c.end(t)
	}
	status(t, srv, q(20), http.StatusGone)
	p.add(1, 10) // 20
	status(t, srv, q(20), http.StatusGone)
	s = openStream(t, srv, 1, 21)
	s.expect(t, p.add(1, 10))
}

// TestHubFromAhead: a client from beyond what the archiver read gets the
// batches from there once published.
func TestHubFromAhead(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 100)
	s := openStream(t, srv, 1, 106)
	eventually(t, "the client is served", func() bool { return h.Stats().Clients == 1 })
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 100}
	p.add(3, 10)                                              // 100
	p.add(2, 10)                                              // 103
	p.add(1, 10)                                              // 105
	want := []Batch{p.add(0, 10), p.add(2, 10), p.add(1, 10)} // 106 (a prepare), 106, 108
	for _, w := range want {
		sameBatch(t, s.batch(t), w)
	}
	eventually(t, "3 batches counted sent", func() bool { return h.Stats().Batches == 3 })
}

// TestHubEnds: a batch that does not continue the ring, a batch too
// large, and Start with another epoch or timeline end the streams, with
// io.EOF; Start with the same place does not.
func TestHubEnds(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 1)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	p.add(1, 10)
	s := openStream(t, srv, 1, 1)
	sameBatch(t, s.batch(t), p.published[0])

	// A gap.
	p.seq = 5
	p.add(1, 10)
	s.end(t)
	status(t, srv, "timeline=1&from=2", http.StatusGone)
	status(t, srv, "timeline=1&from=5", http.StatusGone)

	// Start at the same place: the streams go on.
	s = openStream(t, srv, 1, 6)
	h.Start(1, 1, 6)
	s.expect(t, p.add(1, 10))

	// A batch too large: not served, and the streams end.
	s2 := openStream(t, srv, 1, 6)
	sameBatch(t, s2.batch(t), p.published[len(p.published)-1])
	h.Publish(p.seq, 1, at(p.seq), make([]byte, MaxBatchData+1))
	s.end(t)
	s2.end(t)
	status(t, srv, fmt.Sprintf("timeline=1&from=%d", p.seq), http.StatusGone)
	p.seq++
	s = openStream(t, srv, 1, p.seq)
	s.expect(t, p.add(1, 10))
	if st := h.Stats(); st.Bytes > 1000 {
		t.Errorf("stats %+v: the large batch was sent", st)
	}

	// Start with another epoch at the same sequence.
	h.Start(1, 2, p.seq)
	s.end(t)
	p.epoch = 2
	s = openStream(t, srv, 1, p.seq)
	s.expect(t, p.add(1, 10))

	// Start with another timeline.
	h.Start(2, 2, p.seq)
	s.end(t)
	status(t, srv, fmt.Sprintf("timeline=1&from=%d", p.seq), http.StatusConflict)
	eventually(t, "no client is counted", func() bool { return h.Stats().Clients == 0 })
}

// TestHubSlowClient: a client that does not read loses its stream once
// it falls behind the ring, counted in Behind, and Publish never waits
// for it.
func TestHubSlowClient(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name          string
		ring          int
		first, second int // batches of 64 KiB published, one part then the other
	}{
		// The publisher outruns the stream, which finds itself behind.
		{"small ring", 256 << 10, 0, 1024},
		// The first part is more than the connection's buffers hold and
		// fits the ring: the stream is stuck in a write when the second
		// leaves it behind, and only its write deadline (writeWait, the
		// length of this test) ends it.
		{"stuck in a write", 16 << 20, 192, 768},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.first > 0 && testing.Short() {
				t.Skip("waits for writeWait")
			}
			t.Parallel()
			testSlowClient(t, c.ring, c.first, c.second)
		})
	}
}

func testSlowClient(t *testing.T, ring, first, second int) {
	const size = 64 << 10
	h, srv := newHubServer(t, ring)
	h.Start(1, 1, 1)
	resp := get(t, srv, "timeline=1&from=1") // not read while publishing
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.Status)
	}
	eventually(t, "the client is served", func() bool { return h.Stats().Clients == 1 })

	batches := first + second
	published := make(chan struct{})
	var mu sync.Mutex
	var last int
	go func() {
		defer close(published)
		data := pattern(1, size)
		for i := range batches {
			h.Publish(uint64(1+i), 1, at(uint64(1+i)), data)
			mu.Lock()
			last = i + 1
			mu.Unlock()
		}
	}()
	select {
	case <-published:
	case <-time.After(waitLong):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("Publish blocked after batch %d of %d", last, batches)
	}
	start := time.Now()
	eventually(t, "the stream ends", func() bool { return h.Stats().Clients == 0 })
	if st := h.Stats(); st.Behind != 1 || st.Batches >= int64(batches) {
		t.Errorf("stats %+v, want 1 behind", st)
	}
	t.Logf("the stream ended %v after the last Publish: %+v", time.Since(start).Round(time.Millisecond), h.Stats())

	// What the client reads now is a part of the stream from 1, then the
	// stream ends.
	r, err := NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for {
		f, err := r.Next()
		if err != nil {
			t.Logf("the client read %d batches of %d, then %v", next-1, batches, err)
			break
		}
		if f.Batch != nil {
			if f.Batch.Seq != next || len(f.Batch.Data) != size {
				t.Fatalf("%s, want batch %d", showFrame(f), next)
			}
			next++
		}
	}
	if next > uint64(batches) {
		t.Errorf("the client read all %d batches: it was not behind", batches)
	}
	status(t, srv, fmt.Sprintf("timeline=1&from=%d", next), http.StatusGone)
}

// TestHubClose: a stream gets everything published before Close, then a
// heartbeat, then io.EOF.
func TestHubClose(t *testing.T) {
	h, srv := newHubServer(t, 0)
	h.Start(1, 1, 1)
	h.SetPosition(0, 5000)
	p := &publisher{h: h, tl: 1, epoch: 1, seq: 1}
	s := openStream(t, srv, 1, 1)
	idle := openStream(t, srv, 1, 1)
	for i := range 60 {
		p.add(uint32(i%4), i*i*50) // up to 174 KiB: several writes of the stream
	}
	h.Close()
	for _, c := range []*streamConn{s, idle} {
		for _, want := range p.published {
			sameBatch(t, c.batch(t), want)
		}
		hbs := c.end(t)
		if len(hbs) == 0 {
			t.Fatal("no heartbeat before the end")
		}
		if last := hbs[len(hbs)-1]; last.Next != p.seq || last.Head != 5000 || last.Time.IsZero() {
			t.Errorf("the last heartbeat is %+v, want next %d", last, p.seq)
		}
	}
	eventually(t, "no client is counted", func() bool { return h.Stats().Clients == 0 })
	status(t, srv, "timeline=1&from=1", http.StatusServiceUnavailable)
	if st := h.Stats(); st.Served != 2 || st.Batches != 2*int64(len(p.published)) || st.Behind != 0 {
		t.Errorf("stats %+v", st)
	}
}
