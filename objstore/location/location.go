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
	"net/url"
	"path/filepath"
	"regexp"
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

// Parse checks a location URL. Its errors show the URL with REDACTED in
// place of anything that may be a secret: what comes before an @, the
// fragment, and the query parameters that are not known.
//
// An @ is refused anywhere in the URL: it is how a URL carries credentials
// (s3://KEY:SECRET@bucket), and neither a bucket, a key prefix nor an
// endpoint of ours needs one. A folder whose name holds an @ is written
// %40 in a file URL (file:///srv/a%40b).
func Parse(raw string) (Location, error) {
	bad := func(format string, args ...any) (Location, error) {
		return Location{}, fmt.Errorf("%w %q: %s", ErrBadURL, redacted(raw), fmt.Sprintf(format, args...))
	}
	if raw == "" {
		return bad("empty; give file:///ABSOLUTE/PATH or s3://BUCKET/PREFIX")
	}
	if strings.Contains(raw, "@") {
		return bad("an @ is not allowed in a location URL: credentials do not belong in a URL; use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or a profile " +
			"(a folder name with an @ is written %%40 in a file URL)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("%s", parseErrText(err))
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

// quoted matches the quoted parts of url.Parse's errors, which repeat
// pieces of the URL (invalid port ":SECRET" after host).
var quoted = regexp.MustCompile(`"[^"]*"`)

// parseErrText is url.Parse's error without the URL and without the
// pieces of it that the message quotes: they may hold a secret.
func parseErrText(err error) string {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	var esc url.EscapeError
	if errors.As(err, &esc) {
		return "invalid URL escape (a % not followed by two hexadecimal digits)"
	}
	return strings.Join(strings.Fields(quoted.ReplaceAllString(err.Error(), "")), " ")
}

// redacted is raw as an error may show it: without what comes before the
// last @ or %40 (a user and password, wherever it is), without a fragment, and
// with the query parameters that are not known replaced by REDACTED, names
// and values: a secret may have been put there.
func redacted(raw string) string {
	if at := max(strings.LastIndex(raw, "@"), strings.LastIndex(raw, "%40")); at >= 0 {
		start := 0
		if i := strings.Index(raw, "://"); i >= 0 && i+3 <= at {
			start = i + 3
		}
		raw = raw[:start] + "REDACTED" + raw[at:]
	}
	main, tail := raw, ""
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		main, tail = raw[:i], raw[i:]
	}
	if tail == "" {
		return main
	}
	if tail[0] == '#' {
		return main + "#REDACTED"
	}
	query, _, hasFragment := strings.Cut(tail[1:], "#")
	out := main + "?" + redactedQuery(query)
	if hasFragment {
		out += "#REDACTED"
	}
	return out
}

// redactedQuery shows the known parameters of query, in their order, and
// REDACTED for each other one.
func redactedQuery(query string) string {
	var parts []string
	for _, p := range strings.Split(query, "&") {
		k, v, _ := strings.Cut(p, "=")
		k, kerr := url.QueryUnescape(k)
		v, verr := url.QueryUnescape(v)
		switch {
		case kerr != nil || verr != nil || !knownQuery[k]:
			parts = append(parts, "REDACTED")
		case k == "endpoint":
			parts = append(parts, k+"="+redacted(v))
		default:
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, "&")
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
	if strings.Contains(loc.Prefix, "@") {
		return bad("the prefix holds an @ (written %%40): an s3 location has none")
	}
	if loc.Prefix != "" {
		if err := objstore.ValidateKey(loc.Prefix); err != nil {
			return bad("prefix: %v", err)
		}
	}
	if u.Fragment != "" {
		return bad("an s3 URL takes no fragment")
	}
	if u.RawQuery == "" {
		return loc, nil
	}
	return parseQuery(loc, strings.Split(u.RawQuery, "&"), bad)
}

// parseQuery sets the fields of loc from the query parameters params. An
// unknown parameter is named by its position only: its name or value may
// be a secret.
func parseQuery(loc Location, params []string, bad badFunc) (Location, error) {
	seen := map[string]bool{}
	for i, p := range params {
		k, v, _ := strings.Cut(p, "=")
		k, kerr := url.QueryUnescape(k)
		v, verr := url.QueryUnescape(v)
		switch {
		case kerr != nil || verr != nil:
			return bad("query parameter %d of %d: invalid URL escape (a %% not followed by two hexadecimal digits)", i+1, len(params))
		case !knownQuery[k]:
			return bad("query parameter %d of %d is unknown (known: endpoint, region, profile); its name and value are not shown, "+
				"in case they hold a secret", i+1, len(params))
		case seen[k]:
			return bad("query parameter %q given twice", k)
		}
		seen[k] = true
		switch k {
		case "endpoint":
			if err := checkEndpoint(v); err != nil {
				return bad("%v", err)
			}
			loc.Endpoint = v
		case "region":
			loc.Region = v
		case "profile":
			loc.Profile = v
		}
	}
	return loc, nil
}

// checkEndpoint checks an endpoint URL: a scheme, a host and a port.
func checkEndpoint(v string) error {
	if strings.Contains(v, "@") {
		return errors.New("the endpoint is a scheme, a host and a port, with no credentials or query")
	}
	e, err := url.Parse(v)
	if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
		return fmt.Errorf("endpoint %q is not an http:// or https:// URL", redacted(v))
	}
	if e.User != nil || e.RawQuery != "" || e.Fragment != "" {
		return errors.New("the endpoint is a scheme, a host and a port, with no credentials or query")
	}
	return nil
}

// String is the location as a URL; it never holds a secret.
func (l Location) String() string {
	if l.Scheme == "file" { // an @ in the path is written %40, as Parse takes it
		return strings.ReplaceAll((&url.URL{Scheme: "file", Path: l.Path}).String(), "@", "%40")
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
