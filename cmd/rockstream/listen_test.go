package main

import (
	"net"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/objstore/filestore"
)

// TestArchiveListenDefault: the archiver listens on loopback by default.
// When that address is taken (a second archiver on the machine), it warns
// and archives without its endpoints; an address given and taken is bad
// usage (exit 2), with the address in the message.
func TestArchiveListenDefault(t *testing.T) {
	if code, out, _ := runCLI(t, "archive", "--help"); code != exitOK || !strings.Contains(out, `(default: "`+defaultArchiveListen+`")`) {
		t.Fatalf("archive --help: exit %d, no default --listen %s:\n%s", code, defaultArchiveListen, out)
	}
	// Hold the default address for the test (if another process holds it
	// already, it is taken all the same).
	if l, err := net.Listen("tcp", defaultArchiveListen); err == nil {
		defer l.Close()
	}
	dir := newDB(t)
	bucket := t.TempDir()
	store, err := filestore.New(bucket)
	if err != nil {
		t.Fatal(err)
	}
	p := startCLI(t, nil, "archive", "--db", dir, "--to", "file://"+bucket, "--segment-age", "50ms")
	waitManifest(t, store)
	if code := p.stop(t); code != exitOK || !strings.Contains(p.out.String(), "default --listen address is taken") {
		t.Fatalf("archive with its default address taken: exit %d, want %d and a warning\n%s", code, exitOK, p.out)
	}

	busy := freeAddr(t)
	l, err := net.Listen("tcp", busy)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	code, out, errOut := runCLI(t, "archive", "--db", dir, "--to", "file://"+t.TempDir(), "--listen", busy)
	if code != exitUsage || !strings.Contains(errOut, busy) {
		t.Fatalf("archive --listen %s (taken): exit %d, want %d naming the address\n%s%s", busy, code, exitUsage, out, errOut)
	}
}
