package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/standby"
)

// streamStatus is the standby's /status, as these tests read it.
func sbStatus(t *testing.T, addr string) standby.Status {
	t.Helper()
	var st standby.Status
	json.Unmarshal([]byte(httpGet("http://"+addr+"/status", "")), &st)
	return st
}

// TestStreamFailover: a standby started with --primary applies the
// archiver's live stream, while the bucket holds nothing past the base
// (segments are sealed by size only: --segment-age 1h). Killed with -9,
// the archiver leaves the bucket without those batches: the promotion
// uploads them as timeline 1's next segment before its fence, so that a
// restore of timeline 2 holds every batch the standby applied.
func TestStreamFailover(t *testing.T) {
	t.Run("plain", func(t *testing.T) { streamFailover(t, nil) })
	// Encrypted: the segment the promotion uploads is sealed with the key.
	t.Run("encrypted", func(t *testing.T) {
		key := filepath.Join(t.TempDir(), "key")
		if code, out, errOut := runCLI(t, "keygen", key); code != exitOK {
			t.Fatalf("keygen: exit %d\n%s%s", code, out, errOut)
		}
		streamFailover(t, []string{"--encryption-key-file", key})
	})
}

func streamFailover(t *testing.T, keyArgs []string) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, append([]string{"archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h", "--writer-id", "old"}, keyArgs...)...)
	waitManifest(t, store)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, append([]string{"standby", "--from", url, "--listen", sbAddr, "--primary", "http://" + archAddr, "--poll", "20ms", "--writer-id", "new"}, append(keyArgs, sbDir)...)...)
	waitUntilT(t, "the standby to stream", func() bool {
		st := sbStatus(t, sbAddr)
		return st.Stream != nil && st.Stream.Connected
	})
	for i := range 5 {
		putN(t, app.db, fmt.Sprintf("s%d-", i), 200)
	}
	want := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the standby to apply the stream", func() bool { sb.failIfExited(t); return sbStatus(t, sbAddr).Applied == want })
	st := sbStatus(t, sbAddr)
	if st.Stream.Batches == 0 || st.Stream.Unarchived == 0 {
		t.Fatalf("the standby applied %d batches from the stream, %d of them not archived: %+v", st.Stream.Batches, st.Stream.Unarchived, st.Stream)
	}
	if got := archivedTo(t, store, 1); got >= want {
		t.Fatalf("the bucket holds timeline 1 up to %d already (the test needs it behind the stream, at %d)", got, want)
	}
	if !strings.Contains(httpGet("http://"+sbAddr+"/metrics", ""), "rockstream_standby_stream_connected 1") {
		t.Fatalf("/metrics does not show the stream connected")
	}

	// The primary dies: the archiver with it, before it uploaded them.
	arch.cmd.Process.Signal(syscall.SIGKILL)
	arch.wait(t, 30*time.Second)
	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+sbAddr)
	if code != exitOK || !strings.Contains(out, "by the live stream only") {
		t.Fatalf("promote: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	if len(keyArgs) == 0 {
		if got := archivedTo(t, store, 1); got != want {
			t.Fatalf("after the promotion the bucket holds timeline 1 up to %d, the standby applied %d", got, want)
		}
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, append(append([]string{"restore", "--from", url, "--timeline", "2"}, keyArgs...), restored)...); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, wantSeq := testdb.Digest(t, sbDir)
	if d := got.Diff(wantD); gotSeq != want || wantSeq != want || d != "" {
		t.Fatalf("restored timeline 2: sequence %d; the standby: %d; the writer acknowledged %d; %s", gotSeq, wantSeq, want, d)
	}
	if code, out, errOut := runCLI(t, append([]string{"verify", "--from", url}, keyArgs...)...); code != exitOK {
		t.Fatalf("verify after the promotion: exit %d\n%s%s", code, out, errOut)
	}
}

// TestStreamPlannedFailover: the application stops, its archiver still
// runs: the promotion drains the stream first, so the standby holds every
// batch the writer acknowledged (RPO 0) though the bucket lacks them; the
// old archiver is then fenced (exit 4).
func TestStreamPlannedFailover(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h",
		"--writer-id", "old", "--fence-check", "200ms")
	waitManifest(t, store)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", sbAddr, "--primary", "http://"+archAddr, "--poll", "20ms", "--writer-id", "new",
		"--stream-drain", "1m", sbDir) // the drain ends once caught up: the bound only guards a slow machine
	waitUntilT(t, "the standby to stream", func() bool {
		st := sbStatus(t, sbAddr)
		return st.Stream != nil && st.Stream.Connected
	})
	putN(t, app.db, "last-", 500)
	want := app.db.GetLatestSequenceNumber()
	// No wait for the standby: the promotion's drain is what brings it up.
	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+sbAddr)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("after sequence %d;", want)) {
		t.Fatalf("promote: exit %d, want the branch at %d (every acknowledged write)\n%s%s\nstandby:\n%s", code, want, out, errOut, sb.out)
	}
	if code := arch.wait(t, 60*time.Second); code != exitFenced {
		t.Fatalf("the old archiver: exit %d, want %d\n%s", code, exitFenced, arch.out)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, _ := testdb.Digest(t, app.dir)
	if d := got.Diff(wantD); gotSeq != want || d != "" {
		t.Fatalf("restored timeline 2 at %d; the writer acknowledged %d; %s", gotSeq, want, d)
	}
}

// TestStreamTwoStandbys: two standbys stream from one archiver, which then
// dies (-9) with the bucket lacking what they applied. Both are promoted at
// once: one wins (exit 0), the other is fenced (exit 4); the batches that
// only the standbys held are uploaded once to timeline 1 (the loser's
// create-only upload finds the winner's segment), and timeline 2 restores
// to every batch the writer acknowledged. The loser's stream of timeline 1
// never applies past the branch.
func TestStreamTwoStandbys(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr := freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h", "--writer-id", "old")
	waitManifest(t, store)
	type sb struct {
		addr, dir string
		p         *proc
	}
	var sbs []sb
	for i := range 2 {
		s := sb{addr: freeAddr(t), dir: filepath.Join(t.TempDir(), fmt.Sprint("standby", i))}
		s.p = startCLI(t, nil, "standby", "--from", url, "--listen", s.addr, "--primary", "http://"+archAddr, "--poll", "20ms",
			"--writer-id", fmt.Sprint("new", i), s.dir)
		sbs = append(sbs, s)
	}
	putN(t, app.db, "x", 800)
	want := app.db.GetLatestSequenceNumber()
	for _, s := range sbs {
		waitUntilT(t, "the standbys to apply the stream", func() bool { s.p.failIfExited(t); return sbStatus(t, s.addr).Applied == want })
	}
	if got := archivedTo(t, store, 1); got >= want {
		t.Fatalf("the bucket holds timeline 1 up to %d already (the test needs it behind the stream, at %d)", got, want)
	}
	arch.cmd.Process.Signal(syscall.SIGKILL)
	arch.wait(t, 30*time.Second)

	var proms []*proc
	for _, s := range sbs {
		proms = append(proms, startCLI(t, nil, "promote", "--standby", "http://"+s.addr))
	}
	won := -1
	for i, p := range proms {
		switch code := p.wait(t, time.Minute); code {
		case exitOK:
			if won >= 0 {
				t.Fatalf("both promotions succeeded:\n%s\n%s", proms[0].out, proms[1].out)
			}
			won = i
		case exitFenced:
		default:
			t.Fatalf("promote standby %d: exit %d, want 0 or %d\n%s", i, code, exitFenced, p.out)
		}
	}
	if won < 0 {
		t.Fatalf("no promotion succeeded:\n%s\n%s", proms[0].out, proms[1].out)
	}
	if got := archivedTo(t, store, 1); got != want {
		t.Fatalf("timeline 1 in the bucket ends at %d, the standbys applied %d", got, want)
	}
	for i, s := range sbs {
		if i == won {
			s.p.stop(t)
			continue
		}
		if st := sbStatus(t, s.addr); st.Applied != want {
			t.Fatalf("the standby that lost applied %d, the branch is at %d", st.Applied, want)
		}
		s.p.stop(t)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	got, gotSeq := testdb.Digest(t, restored)
	wantD, _ := testdb.Digest(t, app.dir)
	if d := got.Diff(wantD); gotSeq != want || d != "" {
		t.Fatalf("restored timeline 2 at %d; the writer acknowledged %d; %s", gotSeq, want, d)
	}
	if code, out, errOut := runCLI(t, "verify", "--from", url); code != exitOK {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
}

// TestStreamFencedPrimary: after a promotion, the old primary goes on
// writing and its archiver (not fenced yet: it uploads nothing, and checks
// the manifest rarely) goes on streaming timeline 1. A second standby that
// follows the new timeline never applies those batches: it asks for
// timeline 2, which that archiver does not write (409), and its database
// stays at the branch.
func TestStreamFencedPrimary(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr := freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h",
		"--writer-id", "old", "--fence-check", "1h")
	waitManifest(t, store)
	a := struct{ addr, dir string }{freeAddr(t), filepath.Join(t.TempDir(), "a")}
	b := struct{ addr, dir string }{freeAddr(t), filepath.Join(t.TempDir(), "b")}
	pa := startCLI(t, nil, "standby", "--from", url, "--listen", a.addr, "--primary", "http://"+archAddr, "--poll", "20ms", "--writer-id", "a", a.dir)
	pb := startCLI(t, nil, "standby", "--from", url, "--listen", b.addr, "--primary", "http://"+archAddr, "--poll", "20ms", "--writer-id", "b", b.dir)
	putN(t, app.db, "before-", 300)
	branch := app.db.GetLatestSequenceNumber()
	for _, addr := range []string{a.addr, b.addr} {
		waitUntilT(t, "the standbys to apply the stream", func() bool { return sbStatus(t, addr).Applied == branch })
	}
	if code, out, errOut := runCLI(t, "promote", "--standby", "http://"+a.addr); code != exitOK {
		t.Fatalf("promote: exit %d\n%s%s", code, out, errOut)
	}
	waitUntilT(t, "standby b to follow timeline 2", func() bool { pb.failIfExited(t); return sbStatus(t, b.addr).Timeline == 2 })
	// Split brain: the old primary writes on; its archiver reads it.
	putN(t, app.db, "after-", 300)
	old := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the old archiver to read the new writes", func() bool {
		var st struct {
			Stats struct {
				LastSequence uint64 `json:"last_sequence"`
			} `json:"stats"`
		}
		json.Unmarshal([]byte(httpGet("http://"+archAddr+"/status", "")), &st)
		return st.Stats.LastSequence == old
	})
	waitUntilT(t, "standby b's stream to be refused", func() bool {
		st := sbStatus(t, b.addr)
		return st.Stream != nil && strings.Contains(st.Stream.Error, "409")
	})
	if st := sbStatus(t, b.addr); st.Applied != branch || st.State != standby.Following {
		t.Fatalf("standby b: %s at %d, want following at the branch %d (the old primary wrote up to %d)", st.State, st.Applied, branch, old)
	}
	pb.stop(t)
	pa.stop(t)
	arch.stop(t)
}

// TestStreamKillUnderLoad: db_bench writes, the archiver streams to a
// standby, and the primary is stopped at a random point: a planned
// failover (db_bench finishes, the archiver runs on) must lose nothing, the
// promoted database equal to the writer's; an unplanned one (the writer
// and the archiver killed with -9) may lose what the stream had not
// brought, but never what the standby had applied when the primary died,
// and the archive's timeline 2 is the promoted database. 3 rounds of each
// (10 with ROCKSTREAM_LONG=1); the losses are logged.
func TestStreamKillUnderLoad(t *testing.T) {
	rounds := 3
	if os.Getenv("ROCKSTREAM_LONG") == "1" {
		rounds = 10
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	for round := range rounds {
		for _, planned := range []bool{true, false} {
			name := fmt.Sprintf("round%d/planned=%v", round, planned)
			t.Run(name, func(t *testing.T) { streamKillRound(t, planned, rng.IntN(4000)+500) })
		}
	}
}

func streamKillRound(t *testing.T, planned bool, writes int) {
	root := t.TempDir()
	dir, bucket := filepath.Join(root, "db"), filepath.Join(root, "bucket")
	url := "file://" + bucket
	waitCmd(t, dbBench(t, dir, "--benchmarks=fillrandom", "--num=2000"))
	store, err := filestore.New(bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "200ms", "--writer-id", "old", "--fence-check", "200ms")
	waitManifest(t, store)
	sbDir := filepath.Join(root, "standby")
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", sbAddr, "--primary", "http://"+archAddr, "--poll", "20ms", "--writer-id", "new",
		"--stream-drain", "1m", sbDir)
	waitUntilT(t, "the standby to stream", func() bool {
		st := sbStatus(t, sbAddr)
		return st.Stream != nil && st.Stream.Connected
	})
	// About 1,700 writes a second: the kill lands while it writes.
	w := dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", fmt.Sprintf("--num=%d", writes), "--benchmark_write_rate_limit=200000")
	var appliedAtKill uint64
	if planned {
		waitCmd(t, w) // the application stops; its archiver runs on
	} else {
		// Die somewhere in the middle of the writes.
		time.Sleep(time.Duration(rand.IntN(writes/2)+50) * time.Millisecond)
		appliedAtKill = sbStatus(t, sbAddr).Applied
		w.Process.Signal(syscall.SIGKILL)
		arch.cmd.Process.Signal(syscall.SIGKILL)
		w.Wait()
		arch.wait(t, 30*time.Second)
	}
	wantD, writerSeq := testdb.Digest(t, dir)
	code, out, errOut := runCLI(t, "promote", "--standby", "http://"+sbAddr)
	if code != exitOK {
		t.Fatalf("promote: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	if planned {
		if code := arch.wait(t, time.Minute); code != exitFenced {
			t.Fatalf("the old archiver: exit %d, want %d\n%s", code, exitFenced, arch.out)
		}
	}
	got, branch := testdb.Digest(t, sbDir)
	t.Logf("writer at %d, promoted at %d (lost %d sequences); standby had applied %d when the primary died; %s",
		writerSeq, branch, writerSeq-branch, appliedAtKill, strings.TrimSpace(out))
	switch {
	case planned && (branch != writerSeq || got.Diff(wantD) != ""):
		t.Fatalf("planned failover: promoted at %d, the writer acknowledged up to %d: %s", branch, writerSeq, got.Diff(wantD))
	case !planned && (branch < appliedAtKill || branch > writerSeq):
		t.Fatalf("unplanned failover: promoted at %d, outside [%d applied at the kill, %d written]", branch, appliedAtKill, writerSeq)
	}
	restored := filepath.Join(root, "restored")
	if code, out, errOut := runCLI(t, "restore", "--from", url, "--timeline", "2", restored); code != exitOK {
		t.Fatalf("restore --timeline 2: exit %d\n%s%s", code, out, errOut)
	}
	if r, seq := testdb.Digest(t, restored); seq != branch || r.Diff(got) != "" {
		t.Fatalf("timeline 2 restores to %d, the promoted database is at %d: %s", seq, branch, r.Diff(got))
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rockstream test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	return certFile, keyFile
}

// TestStreamTLSAndToken: the stream over HTTPS with a token: a standby that
// trusts the certificate and sends the token streams; one that does not
// trust it, or sends no token, reads the bucket and says why in /status.
// The flags' mistakes are exit 2.
func TestStreamTLSAndToken(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	cert, key := selfSigned(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokenFile, []byte("stream-secret\n"), 0o600)
	archAddr := freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h",
		"--tls-cert", cert, "--tls-key", key, "--token-file", tokenFile)
	waitManifest(t, store)
	primary := "https://" + archAddr
	good, noCA, noToken := freeAddr(t), freeAddr(t), freeAddr(t)
	for _, s := range []struct {
		addr string
		args []string
	}{
		{good, []string{"--primary-ca", cert, "--primary-token-file", tokenFile}},
		{noCA, []string{"--primary-token-file", tokenFile}},
		{noToken, []string{"--primary-ca", cert}},
	} {
		args := append([]string{"standby", "--from", url, "--listen", s.addr, "--primary", primary, "--poll", "20ms"}, s.args...)
		startCLI(t, nil, append(args, filepath.Join(t.TempDir(), "sb"))...)
	}
	putN(t, app.db, "tls-", 300)
	want := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the standby that trusts the certificate to stream", func() bool {
		st := sbStatus(t, good)
		return st.Applied == want && st.Stream != nil && st.Stream.Batches > 0
	})
	waitUntilT(t, "the others to say why they do not stream", func() bool {
		a, b := sbStatus(t, noCA), sbStatus(t, noToken)
		return a.Stream != nil && strings.Contains(a.Stream.Error, "certificate") &&
			b.Stream != nil && strings.Contains(b.Stream.Error, "401")
	})
	if st := sbStatus(t, noCA); st.Applied >= want || st.State != standby.Following {
		t.Fatalf("a standby without the stream applied %d (%s): the bucket does not hold it yet", st.Applied, st.State)
	}
	if out := httpGet("https://"+archAddr+"/metrics", ""); out != "" {
		t.Fatalf("plain client read https /metrics without trusting the certificate: %.100s", out)
	}
	arch.stop(t)

	db := newDB(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"archive", "--db", db, "--to", "file://" + t.TempDir(), "--stream", "--listen", ""}, "--stream needs --listen"},
		{[]string{"archive", "--db", db, "--to", "file://" + t.TempDir(), "--stream", "--listen", "0.0.0.0:0"}, "not a loopback address"},
		{[]string{"archive", "--db", db, "--to", "file://" + t.TempDir(), "--listen", freeAddr(t), "--tls-cert", cert}, "--tls-cert and --tls-key go together"},
		{[]string{"archive", "--db", db, "--to", "file://" + t.TempDir(), "--listen", freeAddr(t), "--tls-cert", key, "--tls-key", key}, "--tls-cert"},
		{[]string{"archive", "--db", db, "--to", "file://" + t.TempDir(), "--stream", "--stream-buffer", "lots"}, "stream-buffer"},
		{[]string{"standby", "--from", url, "--primary", "ftp://x", t.TempDir()}, "--primary: want http://HOST:PORT"},
		{[]string{"standby", "--from", url, "--primary", "http://u:p@host:1", t.TempDir()}, "without credentials"},
		{[]string{"standby", "--from", url, "--primary-token-file", tokenFile, t.TempDir()}, "without --primary"},
		{[]string{"standby", "--from", url, "--primary", "http://127.0.0.1:1", "--primary-ca", cert, t.TempDir()}, "needs an https --primary"},
		{[]string{"standby", "--from", url, "--primary", "https://127.0.0.1:1", "--primary-ca", tokenFile, t.TempDir()}, "no PEM certificate"},
	} {
		code, out, errOut := runCLI(t, tc.args...)
		if code != exitUsage || !strings.Contains(errOut, tc.want) || strings.Contains(out+errOut, "stream-secret") {
			t.Errorf("%q: exit %d, want %d saying %q\n%s%s", tc.args, code, exitUsage, tc.want, out, errOut)
		}
	}
}

// TestStreamRestartAhead: a standby restarted after it applied batches from
// the stream that the bucket lacks does not stream again until the bucket
// holds its start (a transaction prepared by stream only could not be read
// back), follows the bucket meanwhile, and ends equal to the writer.
func TestStreamRestartAhead(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h")
	waitManifest(t, store)
	sbDir := filepath.Join(t.TempDir(), "standby")
	args := []string{"standby", "--from", url, "--listen", sbAddr, "--primary", "http://" + archAddr, "--poll", "20ms", sbDir}
	sb := startCLI(t, nil, args...)
	putN(t, app.db, "a-", 300)
	want := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the standby to apply the stream", func() bool { return sbStatus(t, sbAddr).Applied == want })
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	sb = startCLI(t, nil, args...)
	waitUntilT(t, "the restarted standby to say it waits for the bucket", func() bool {
		return strings.Contains(sb.out.String(), "ahead of the bucket")
	})
	putN(t, app.db, "b-", 100)
	want = app.db.GetLatestSequenceNumber()
	if st := sbStatus(t, sbAddr); st.Stream == nil || st.Stream.Connects != 0 {
		t.Fatalf("the restarted standby streamed before the bucket held its start: %+v", st.Stream)
	}
	waitUntilT(t, "the archiver to read the new writes", func() bool {
		var st struct {
			Stats struct {
				LastSequence uint64 `json:"last_sequence"`
			} `json:"stats"`
		}
		json.Unmarshal([]byte(httpGet("http://"+archAddr+"/status", "")), &st)
		return st.Stats.LastSequence == want
	})
	if code := arch.stop(t); code != exitOK { // uploads what it read
		t.Fatalf("archive: exit %d\n%s", code, arch.out)
	}
	for deadline := time.Now().Add(20 * time.Second); sbStatus(t, sbAddr).Applied != want; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not apply the bucket: %s\n%s\narchiver:\n%s", httpGet("http://"+sbAddr+"/status", ""), sb.out, arch.out)
		}
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	got, _ := testdb.Digest(t, sbDir)
	wantD, _ := testdb.Digest(t, app.dir)
	if d := got.Diff(wantD); d != "" {
		t.Fatalf("the standby differs from the writer: %s", d)
	}
}

// TestStreamColumnFamilies: a column family created while a standby
// streams, written at once, and a merge-free transaction-free workload
// around it: the standby applies the family's creation (recorded in the
// manifest before its first batch is served) and its keys, from the
// stream, and ends equal to the writer, family by family.
func TestStreamColumnFamilies(t *testing.T) {
	app := newAppDB(t, "app")
	url := "file://" + app.bucket
	store, err := filestore.New(app.bucket)
	if err != nil {
		t.Fatal(err)
	}
	archAddr, sbAddr := freeAddr(t), freeAddr(t)
	arch := startCLI(t, nil, "archive", "--db", app.dir, "--to", url, "--listen", archAddr, "--stream", "--segment-age", "1h")
	waitManifest(t, store)
	sbDir := filepath.Join(t.TempDir(), "standby")
	sb := startCLI(t, nil, "standby", "--from", url, "--listen", sbAddr, "--primary", "http://"+archAddr, "--poll", "20ms", sbDir)
	waitUntilT(t, "the standby to stream", func() bool {
		st := sbStatus(t, sbAddr)
		return st.Stream != nil && st.Stream.Connected
	})
	opts := grocksdb.NewDefaultOptions()
	defer opts.Destroy()
	wo := grocksdb.NewDefaultWriteOptions()
	defer wo.Destroy()
	for i := range 3 {
		cf, err := app.db.CreateColumnFamily(opts, fmt.Sprintf("family%d", i))
		if err != nil {
			t.Fatal(err)
		}
		for k := range 50 {
			if err := app.db.PutCF(wo, cf, fmt.Appendf(nil, "k%03d", k), fmt.Appendf(nil, "v%d-%d", i, k)); err != nil {
				t.Fatal(err)
			}
		}
		putN(t, app.db, fmt.Sprintf("default%d-", i), 20)
		cf.Destroy()
	}
	want := app.db.GetLatestSequenceNumber()
	waitUntilT(t, "the standby to apply the families", func() bool { sb.failIfExited(t); return sbStatus(t, sbAddr).Applied == want })
	st := sbStatus(t, sbAddr)
	if st.Stream.Batches == 0 || archivedTo(t, store, 1) >= want {
		t.Fatalf("the families did not come by the stream: %+v, the bucket holds up to %d", st.Stream, archivedTo(t, store, 1))
	}
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("standby: exit %d\n%s", code, sb.out)
	}
	arch.stop(t)
	got, _ := testdb.Digest(t, sbDir)
	wantD, _ := testdb.Digest(t, app.dir)
	if d := got.Diff(wantD); d != "" || len(got) != 4 {
		t.Fatalf("the standby has %d families, differs from the writer: %s", len(got), d)
	}
}

// TestStreamConfigFile: an archiver of two databases from a config file
// serves /stream/NAME for each; a standby of a streams from its path, and
// one of a pointed at b's path is refused (409: another database's
// archive) and reads its bucket instead, applying nothing of b.
func TestStreamConfigFile(t *testing.T) {
	a, b := newAppDB(t, "a"), newAppDB(t, "b")
	archAddr := freeAddr(t)
	cfg := writeConfig(t, fmt.Sprintf("listen: %s\nstream: true\nsegment-age: 1h\ndatabases:\n"+
		"  - name: a\n    db: %s\n    to: file://%s\n  - name: b\n    db: %s\n    to: file://%s\n", archAddr, a.dir, a.bucket, b.dir, b.bucket))
	arch := startCLI(t, nil, "archive", "--config", cfg)
	for _, d := range []*appDB{a, b} {
		store, err := filestore.New(d.bucket)
		if err != nil {
			t.Fatal(err)
		}
		waitManifest(t, store)
	}
	good, wrong := freeAddr(t), freeAddr(t)
	startCLI(t, nil, "standby", "--from", "file://"+a.bucket, "--listen", good, "--primary", "http://"+archAddr+"/stream/a", "--poll", "20ms",
		filepath.Join(t.TempDir(), "good"))
	startCLI(t, nil, "standby", "--from", "file://"+a.bucket, "--listen", wrong, "--primary", "http://"+archAddr+"/stream/b", "--poll", "20ms",
		filepath.Join(t.TempDir(), "wrong"))
	putN(t, a.db, "a-", 200)
	putN(t, b.db, "b-", 400)
	want := a.db.GetLatestSequenceNumber()
	waitUntilT(t, "the standby of a to stream a", func() bool {
		st := sbStatus(t, good)
		return st.Applied == want && st.Stream != nil && st.Stream.Batches > 0
	})
	waitUntilT(t, "the standby pointed at b's stream to be refused", func() bool {
		st := sbStatus(t, wrong)
		return st.Stream != nil && strings.Contains(st.Stream.Error, "409") && strings.Contains(st.Stream.Error, "database")
	})
	if st := sbStatus(t, wrong); st.Stream.Batches != 0 || st.Applied >= want {
		t.Fatalf("the standby of a pointed at b's stream applied %d batches from it, and is at %d (a's bucket holds less than %d)", st.Stream.Batches, st.Applied, want)
	}
	if code := arch.stop(t); code != exitOK {
		t.Fatalf("archive --config: exit %d\n%s", code, arch.out)
	}
}
