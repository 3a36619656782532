// Package s3count counts the S3 requests that a program makes: a reverse
// proxy on a loopback port, in front of an S3 server, that classifies each
// request (PUT, GET, HEAD, LIST, DELETE, POST) and passes it on unchanged.
// The Host header is kept, so SigV4 signatures made for the proxy's address
// stay valid at the server. Give each program its own Proxy to count it
// alone.
package s3count

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Kinds of requests, as Counts names them.
const (
	Put    = "PUT"
	Get    = "GET"
	Head   = "HEAD"
	List   = "LIST"
	Delete = "DELETE"
	Post   = "POST"   // multipart create and complete, batch deletes
	Failed = "FAILED" // not passed on: the client gave up or the server is down
)

// Counts is the number of requests of each kind.
type Counts map[string]int64

// Sub returns c minus o, kind by kind.
func (c Counts) Sub(o Counts) Counts {
	d := Counts{}
	for k, v := range c {
		if v-o[k] != 0 {
			d[k] = v - o[k]
		}
	}
	return d
}

// Total is the number of requests of every kind.
func (c Counts) Total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// Proxy is a counting reverse proxy.
type Proxy struct {
	// Endpoint is the proxy's address, http://127.0.0.1:PORT, to give to
	// the program instead of the server's.
	Endpoint string
	srv      *http.Server
	mu       sync.Mutex
	counts   Counts
	byPrefix Counts
}

// Start starts a proxy in front of the server at target (http://HOST:PORT).
func Start(target string) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{Endpoint: "http://" + l.Addr().String(), counts: Counts{}, byPrefix: Counts{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the signature covers the Host header
		},
		// A request that cannot be passed on (the client gave up, the
		// server is down) is counted as Failed and answered 502: the
		// client sees the failure; the proxy logs nothing.
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, _ error) {
			p.count(Failed, "")
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(Classify(r), Prefix(r))
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(l)
	return p, nil
}

func (p *Proxy) count(kind, prefix string) {
	p.mu.Lock()
	p.counts[kind]++
	p.byPrefix[kind+" "+prefix]++
	p.mu.Unlock()
}

// Counts returns a copy of the counts so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.counts)
}

// ByPrefix returns a copy of the counts so far by kind and by the first
// element of the object key: "PUT segments/", "GET manifest.json", "LIST "
// (a bucket listing).
func (p *Proxy) ByPrefix() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	return clone(p.byPrefix)
}

func clone(c Counts) Counts {
	out := Counts{}
	for k, v := range c {
		out[k] = v
	}
	return out
}

// Close stops the proxy.
func (p *Proxy) Close() error { return p.srv.Close() }

// Classify names the kind of an S3 request. A GET on a bucket (path-style,
// no object key) or with a list-type parameter is a LIST.
func Classify(r *http.Request) string {
	switch r.Method {
	case http.MethodPut:
		return Put
	case http.MethodHead:
		return Head
	case http.MethodDelete:
		return Delete
	case http.MethodPost:
		return Post
	case http.MethodGet:
		q := r.URL.Query()
		if q.Has("list-type") || q.Has("uploads") || isBucketPath(r.URL.Path) {
			return List
		}
		return Get
	}
	return r.Method
}

// Prefix is the first element of the object key of a path-style request
// ("segments/" for /bucket/segments/...), the key itself when it has no
// slash, or "" for the bucket.
func Prefix(r *http.Request) string {
	path := strings.TrimPrefix(r.URL.Path, "/")
	_, key, _ := strings.Cut(path, "/")
	if i := strings.IndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return key
}

// isBucketPath reports a path-style path that names only a bucket: "/b" or
// "/b/".
func isBucketPath(path string) bool {
	if len(path) < 2 || path[0] != '/' {
		return false
	}
	for i := 1; i < len(path); i++ {
		if path[i] == '/' {
			return i == len(path)-1
		}
	}
	return true
}
