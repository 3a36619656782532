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
	"sync"
)

// Kinds of requests, as Counts names them.
const (
	Put    = "PUT"
	Get    = "GET"
	Head   = "HEAD"
	List   = "LIST"
	Delete = "DELETE"
	Post   = "POST" // multipart create and complete, batch deletes
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
	p := &Proxy{Endpoint: "http://" + l.Addr().String(), counts: Counts{}}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Host = r.In.Host // the signature covers the Host header
		},
	}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.count(Classify(r))
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(l)
	return p, nil
}

func (p *Proxy) count(kind string) {
	p.mu.Lock()
	p.counts[kind]++
	p.mu.Unlock()
}

// Counts returns a copy of the counts so far.
func (p *Proxy) Counts() Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := Counts{}
	for k, v := range p.counts {
		c[k] = v
	}
	return c
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
