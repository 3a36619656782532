package location_test

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/objstore/s3store"
)

func TestMain(m *testing.M) { os.Exit(miniotest.Main(m)) }

func TestParse(t *testing.T) {
	good := []struct {
		raw  string
		want location.Location
	}{
		{"file:///var/backups/db", location.Location{Scheme: "file", Path: "/var/backups/db"}},
		{"file:///var/backups/db/", location.Location{Scheme: "file", Path: "/var/backups/db"}},
		{"s3://my-bucket", location.Location{Scheme: "s3", Bucket: "my-bucket"}},
		{"s3://my-bucket/a/b/", location.Location{Scheme: "s3", Bucket: "my-bucket", Prefix: "a/b"}},
		{"file:///srv/user%40host/db", location.Location{Scheme: "file", Path: "/srv/user@host/db"}},
		{"s3://b.example/p?endpoint=http://127.0.0.1:9000&region=eu-west-1&profile=prod",
			location.Location{Scheme: "s3", Bucket: "b.example", Prefix: "p", Endpoint: "http://127.0.0.1:9000", Region: "eu-west-1", Profile: "prod"}},
	}
	for _, g := range good {
		got, err := location.Parse(g.raw)
		if err != nil || got != g.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", g.raw, got, err, g.want)
			continue
		}
		again, err := location.Parse(got.String())
		if err != nil || again != got {
			t.Errorf("Parse(%q).String() = %q does not parse back: %+v, %v", g.raw, got.String(), again, err)
		}
	}
}

func TestParseBad(t *testing.T) {
	bad := map[string]string{
		"":                                   "empty",
		"/var/backups":                       "no scheme",
		"relative/path":                      "no scheme",
		"ftp://host/x":                       "unknown scheme",
		"gs://bucket":                        "unknown scheme",
		"file://relative/path":               "empty host",
		"file:relative":                      "absolute",
		"file:///x?y=1":                      "no query",
		"s3://":                              "no bucket",
		"s3:///prefix":                       "no bucket",
		"s3://UPPER/x":                       "valid bucket",
		"s3://ab/x":                          "valid bucket",
		"s3://b_c/x":                         "valid bucket",
		"s3://bucket/a/../b":                 "prefix",
		"s3://bucket/x?endpoint=ftp://h":     "endpoint",
		"s3://bucket/x?endpoint=":            "endpoint",
		"s3://bucket/x?secret=abc":           "query parameter 1 of 1 is unknown",
		"s3://key:secret@bucket/x":           "credentials",
		"s3://bucket/x?region=a&region=b":    "given twice",
		"s3://bucket/x#frag":                 "fragment",
		"s3://bucket/%zz":                    "invalid URL escape",
		"s3://bucket/x?endpoint=http://%zz":  "invalid URL escape",
		"s3://bucket/x?endpoint=not-a-url/x": "endpoint",
	}
	for raw, want := range bad {
		_, err := location.Parse(raw)
		if !errors.Is(err, location.ErrBadURL) || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q): %v, want ErrBadURL saying %q", raw, err, want)
		}
	}
}

// TestParseNeverShowsSecrets: a secret put in a URL (as a user or
// password, in an unknown query parameter, in the endpoint) is refused, and
// the error never shows it.
func TestParseNeverShowsSecrets(t *testing.T) {
	const s = "S3cr3tM4rk3r"
	for _, raw := range []string{
		"s3://AKIA" + s + ":" + s + "@bucket/x",
		"s3://:" + s + "@bucket/x",
		"s3://AKIA:" + s + "/with+slash@bucket/x", // AWS secret keys hold / and +
		"s3://AKIA:" + s + "%zz@bucket/x",
		"file://user:" + s + "@/srv/x",
		"s3://bucket/x?secret_access_key=" + s,
		"s3://bucket/x?region=eu&aws_secret=" + s + "&x=%zz",
		"s3://bucket/x?endpoint=http://AKIA:" + s + "@127.0.0.1:9000",
		"s3://bucket/x?endpoint=ftp://AKIA:" + s + "@127.0.0.1:9000",
		"s3://bucket/x#" + s,
		"gs://AKIA:" + s + "@bucket/x",
		// A ? or # inside the password, or an @ after the query: the @ is
		// looked for, and redacted up to, over the whole URL.
		"s3://AKIA:" + s + "?ss@bucket/prefix",
		"s3://AKIA:" + s + "#ss@bucket/prefix",
		"s3://AKIA:1234?" + s + "@bucket/prefix",
		"s3://bucket/prefix?endpoint=http://AKIA:" + s + "?ss@minio:9000",
		"s3://bucket/prefix?endpoint=http://AKIA:" + s + "%23ss@minio:9000",
		"file:///srv/x?AKIA:" + s + "@y",
		// Unknown query parameters: neither name nor value is shown.
		"s3://bucket/prefix?" + s,
		"s3://bucket/prefix?" + s + "=x",
		"s3://bucket/prefix?region=eu&" + s + "=%zz",
		// url.Parse's errors quote pieces of the URL (invalid port ":...").
		"s3://AKIA:" + s + "%40bucket/x",
		"file://user:" + s + "%40/srv/x",
		"s3://bucket/x?endpoint=http://AKIA:" + s + "%40127.0.0.1:9000",
	} {
		_, err := location.Parse(raw)
		if !errors.Is(err, location.ErrBadURL) {
			t.Errorf("Parse(%q) = %v, want ErrBadURL", raw, err)
			continue
		}
		if strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "with+slash") {
			t.Errorf("Parse(%q) shows the secret: %v", raw, err)
		}
	}
}

// TestParseAt: an @ is refused anywhere in a URL (it is how a URL carries
// credentials); a folder whose name holds one is written %40 in a file URL,
// and String writes it so. No s3 location needs one.
func TestParseAt(t *testing.T) {
	for _, raw := range []string{"file:///srv/user@host/db", "s3://bucket/a@b", "s3://bucket/x?region=eu@1"} {
		_, err := location.Parse(raw)
		if !errors.Is(err, location.ErrBadURL) || !strings.Contains(err.Error(), "an @ is not allowed") || !strings.Contains(err.Error(), "%40") {
			t.Errorf("Parse(%q): %v, want ErrBadURL refusing the @, with the %%40 hint", raw, err)
		}
	}
	loc, err := location.Parse("file:///srv/user%40host/db")
	if err != nil || loc.Path != "/srv/user@host/db" || loc.String() != "file:///srv/user%40host/db" {
		t.Errorf("file:///srv/user%%40host/db: %+v (%s), %v", loc, loc.String(), err)
	}
	for _, raw := range []string{"s3://bucket/a%40b", "s3://bucket/x?endpoint=http://a%40127.0.0.1:9000"} {
		if _, err := location.Parse(raw); !errors.Is(err, location.ErrBadURL) {
			t.Errorf("Parse(%q): %v, want ErrBadURL", raw, err)
		}
	}
}

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	s, err := location.Open(context.Background(), "file://"+dir, location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "k", strings.NewReader("v"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/k"); err != nil {
		t.Fatalf("the object is not a file in the folder: %v", err)
	}
	// What the store prints is a URL that opens the same folder.
	odd := filepath.Join(dir, "a b@c%d")
	s, err = location.Open(context.Background(), strings.ReplaceAll((&url.URL{Scheme: "file", Path: odd}).String(), "@", "%40"), location.Options{})
	if err != nil {
		t.Fatal(err)
	}
	loc, err := location.Parse(s.String())
	if err != nil || loc.Path != odd {
		t.Fatalf("the store prints %q, which names %q (%v), not %q", s.String(), loc.Path, err, odd)
	}
}

func TestOpenS3(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := srv.NewBucket(t)
	opts := location.Options{S3: s3store.Options{Credentials: srv.Credentials()}}
	s, err := location.Open(context.Background(), "s3://"+bucket+"/pre?endpoint="+srv.Endpoint, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "k", strings.NewReader("v"), 1, objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Client(miniotest.AccessKey, miniotest.SecretKey).HeadObject(context.Background(), headInput(bucket, "pre/k")); err != nil {
		t.Fatalf("the object is not at the prefix: %v", err)
	}
	// What the store prints is a URL that opens the same store again.
	for _, raw := range []string{"s3://" + bucket + "/pre?endpoint=" + srv.Endpoint, "s3://" + bucket + "/a/b?endpoint=" + srv.Endpoint + "&region=eu-west-3"} {
		first, err := location.Open(context.Background(), raw, opts)
		if err != nil {
			t.Fatal(err)
		}
		again, err := location.Open(context.Background(), first.String(), opts)
		if err != nil || again.String() != first.String() {
			t.Fatalf("%s printed %q, which opens %v (%v)", raw, first.String(), again, err)
		}
		if want, _ := location.Parse(raw); first.String() != want.String() {
			t.Fatalf("%s printed %q; the location is %q", raw, first.String(), want.String())
		}
	}
	// The endpoint from the environment, as the AWS tools take it.
	t.Setenv("AWS_ENDPOINT_URL_S3", srv.Endpoint)
	if _, err := location.Open(context.Background(), "s3://"+bucket, opts); err != nil {
		t.Fatalf("endpoint from AWS_ENDPOINT_URL_S3: %v", err)
	}
	_, err = location.Open(context.Background(), "s3://missing-bucket-xyz", opts)
	if !errors.Is(err, objstore.ErrNoBucket) {
		t.Fatalf("missing bucket: %v", err)
	}
}
