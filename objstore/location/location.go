// Package location turns a location URL into an objstore.Store.
//
//	file:///ABSOLUTE/PATH                      a folder on this machine
//	s3://BUCKET[/PREFIX][?endpoint=URL&region=R&profile=P]
//
// For s3, the endpoint is optional (AWS S3 by default; AWS_ENDPOINT_URL_S3
// and AWS_ENDPOINT_URL are honoured), credentials come from the standard AWS
// chain, never from the URL, so a URL can be logged and shown.
package location

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/objstore/s3store"
)

// ErrBadURL is a location that cannot be parsed or is not allowed.
var ErrBadURL = errors.New("bad location URL")

// Location is a parsed location URL.
type Location struct {
	Scheme   string // "file" or "s3"
	Path     string // file: the absolute folder
	Bucket   string // s3
	Prefix   string // s3: "" or a key prefix without slashes at the ends
	Endpoint string // s3: custom endpoint, from the URL only
	Region   string // s3
	Profile  string // s3: shared AWS config profile
}

var bucketName = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)

// Parse checks a location URL.
func Parse(raw string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w %q: %s", ErrBadURL, redacted(raw), fmt.Sprintf(format, args...))
	}
	if raw == "" {
		return bad("empty; give file:///ABSOLUTE/PATH or s3://BUCKET/PREFIX")
	}
	if main, _, _ := strings.Cut(raw, "?"); strings.Contains(main, "@") {
		return bad("credentials do not belong in a URL (nor an @ anywhere before its query); use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile")
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may hold a secret
		}
		return bad("%v", err)
	}
	switch u.Scheme {
	case "file":
		return parseFile(u, bad)
	case "s3":
		return parseS3(u, bad)
	case "":
		return bad("no scheme; give file:///ABSOLUTE/PATH or s3://BUCKET/PREFIX")
	default:
		return bad("unknown scheme %q; rockstream knows file:// and s3://", u.Scheme)
	}
}

type badFunc func(string, ...any) (Location, error)

// knownQuery are the query parameters of an s3 URL: their values are
// never secret.
var knownQuery = map[string]bool{"endpoint": true, "region": true, "profile": true}

// redacted is raw as an error may show it: without what comes before an @
// (a user and password), and without the values of query parameters that
// are not known, since a secret may have been put there.
func redacted(raw string) string {
	main, tail := raw, ""
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		main, tail = raw[:i], raw[i:]
	}
	if at := strings.LastIndex(main, "@"); at >= 0 {
		start := 0
		if i := strings.Index(main, "://"); i >= 0 && i+3 <= at {
			start = i + 3
		}
		main = main[:start] + "REDACTED" + main[at:]
	}
	if tail == "" {
		return main
	}
	query, _, hasFragment := strings.Cut(tail[1:], "#")
	if tail[0] == '#' {
		return main + "#REDACTED"
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return main + "?REDACTED"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(q)) {
		for _, v := range q[k] {
			switch {
			case k == "endpoint":
				v = redacted(v)
			case !knownQuery[k]:
				v = "REDACTED"
			}
			parts = append(parts, k+"="+v)
		}
	}
	out := main + "?" + strings.Join(parts, "&")
	if hasFragment {
		out += "#REDACTED"
	}
	return out
}

func parseFile(u *url.URL, bad badFunc) (Location, error) {
	if u.Host != "" {
		return bad("a file URL has an empty host and an absolute path: file:///%s%s", u.Host, u.Path)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("a file URL takes no query or fragment")
	}
	if !filepath.IsAbs(u.Path) {
		return bad("the path must be absolute (file:///ABSOLUTE/PATH)")
	}
	return Location{Scheme: "file", Path: filepath.Clean(u.Path)}, nil
}

func parseS3(u *url.URL, bad badFunc) (Location, error) {
	if u.Host == "" {
		return bad("no bucket; give s3://BUCKET/PREFIX")
	}
	if !bucketName.MatchString(u.Host) || strings.Contains(u.Host, "..") {
		return bad("%q is not a valid bucket name (3-63 lower-case letters, digits, dots and hyphens)", u.Host)
	}
	loc := Location{Scheme: "s3", Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if loc.Prefix != "" {
		if err := objstore.ValidateKey(loc.Prefix); err != nil {
			return bad("prefix: %v", err)
		}
	}
	if u.Fragment != "" {
		return bad("an s3 URL takes no fragment")
	}
	query, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return bad("query: %v", err)
	}
	for k, v := range query {
		if len(v) != 1 {
			return bad("query parameter %q given %d times", k, len(v))
		}
		switch k {
		case "endpoint":
			e, err := url.Parse(v[0])
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return bad("endpoint %q is not an http:// or https:// URL", redacted(v[0]))
			}
			if e.User != nil || e.RawQuery != "" {
				return bad("the endpoint is a scheme, a host and a port, with no credentials or query")
			}
			loc.Endpoint = v[0]
		case "region":
			loc.Region = v[0]
		case "profile":
			loc.Profile = v[0]
		default:
			return bad("unknown query parameter %q (known: endpoint, region, profile)", k)
		}
	}
	return loc, nil
}

// String is the location as a URL; it never holds a secret.
func (l Location) String() string {
	if l.Scheme == "file" {
		return (&url.URL{Scheme: "file", Path: l.Path}).String()
	}
	u := url.URL{Scheme: "s3", Host: l.Bucket, Path: "/" + l.Prefix}
	q := url.Values{}
	for k, v := range map[string]string{"endpoint": l.Endpoint, "region": l.Region, "profile": l.Profile} {
		if v != "" {
			q.Set(k, v)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Options tune the stores that Open makes.
type Options struct {
	// S3 is the base of the options of an S3 store; the URL's fields
	// override its Bucket, Prefix, Endpoint, Region and Profile.
	S3 s3store.Options
}

// Open parses raw and opens its store. An s3 store checks at once that the
// bucket exists and that the credentials may read it.
func Open(ctx context.Context, raw string, opts Options) (objstore.Store, error) {
	loc, err := Parse(raw)
	if err != nil {
		return nil, err
	}
	return loc.Open(ctx, opts)
}

// Open opens the store of the location.
func (l Location) Open(ctx context.Context, opts Options) (objstore.Store, error) {
	if l.Scheme == "file" {
		return filestore.New(l.Path)
	}
	o := opts.S3
	o.Bucket, o.Prefix = l.Bucket, l.Prefix
	if l.Endpoint != "" {
		o.Endpoint = l.Endpoint
	}
	if l.Region != "" {
		o.Region = l.Region
	}
	if l.Profile != "" {
		o.Profile = l.Profile
	}
	return s3store.New(ctx, o)
}
