package miniotest

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
	"testing"
	"time"
)

// Faults says which requests a FaultProxy spoils: every SlowDown-th request
// is answered 503 SlowDown, every Internal-th 500 InternalError, every
// ResetBefore-th has its connection reset before the request reaches the
// server, every ResetAfter-th after the server applied it (the answer is
// lost: a PUT landed, the client does not know). 0 turns a fault off. Each
// request is also delayed by up to MaxLatency.
type Faults struct {
	SlowDown, Internal, ResetBefore, ResetAfter int
	MaxLatency                                  time.Duration
}

// FaultProxy is an HTTP proxy in front of a server (a MinIO) that spoils
// requests as a real S3 endpoint now and then does, counted by request so
// that a run is repeatable. Clients see the faults exactly as they would
// from S3: the AWS SDK inside s3store retries them, or gives up.
type FaultProxy struct {
	URL    string // the proxy's endpoint, for s3store.Options.Endpoint or ?endpoint=
	srv    *httptest.Server
	target *url.URL
	proxy  *httputil.ReverseProxy
	faults atomic.Pointer[Faults]
	n      atomic.Int64
	// Injected counts the faults of each kind so far.
	SlowDowns, Internals, ResetsBefore, ResetsAfter atomic.Int64
}

// NewFaultProxy starts a proxy in front of endpoint with no faults; Set
// turns them on. It stops when the test ends.
func NewFaultProxy(tb testing.TB, endpoint string) *FaultProxy {
	tb.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		tb.Fatal(err)
	}
	p := &FaultProxy{target: target, proxy: httputil.NewSingleHostReverseProxy(target)}
	p.faults.Store(&Faults{})
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL
	tb.Cleanup(p.srv.Close)
	return p
}

// Set replaces the faults.
func (p *FaultProxy) Set(f Faults) { p.faults.Store(&f) }

// Injected is the number of requests spoiled so far (latency not counted).
func (p *FaultProxy) Injected() int64 {
	return p.SlowDowns.Load() + p.Internals.Load() + p.ResetsBefore.Load() + p.ResetsAfter.Load()
}

// ServeHTTP spoils or forwards one request. The Host header is kept, so
// that the server checks the client's signature against it.
func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f := p.faults.Load()
	n := p.n.Add(1)
	if f.MaxLatency > 0 {
		time.Sleep(time.Duration(n*7919) % f.MaxLatency)
	}
	switch {
	case every(n, f.SlowDown):
		p.SlowDowns.Add(1)
		s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate. (injected)")
	case every(n, f.Internal):
		p.Internals.Add(1)
		s3Error(w, http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again. (injected)")
	case every(n, f.ResetBefore):
		p.ResetsBefore.Add(1)
		io.Copy(io.Discard, r.Body)
		reset(w)
	case every(n, f.ResetAfter):
		p.ResetsAfter.Add(1)
		p.forwardAndDrop(r)
		reset(w)
	default:
		p.proxy.ServeHTTP(w, r)
	}
}

func every(n int64, k int) bool { return k > 0 && n%int64(k) == 0 }

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	io.WriteString(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"+code+"</Code><Message>"+msg+"</Message></Error>")
}

// forwardAndDrop sends r to the server and throws its answer away.
func (p *FaultProxy) forwardAndDrop(r *http.Request) {
	out := r.Clone(r.Context())
	out.RequestURI = ""
	out.URL.Scheme, out.URL.Host = p.target.Scheme, p.target.Host
	out.Host = r.Host
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// reset closes the client's connection with a TCP RST, answering nothing.
func reset(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic("miniotest: the proxy's connection cannot be hijacked")
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		tcp.SetLinger(0)
	}
	conn.Close()
}
