package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/internal/miniotest"
	"github.com/rockstream/rockstream/internal/testdb"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/prune"
)

// canary is a key and value written to a database whose archive must not
// show them: its value is 64 random bytes (incompressible, so that a
// plaintext archive holds it as it is, in an SST file, a WAL file or a
// zstd segment), its key a name with random hex digits.
type canary struct {
	class string // where the value is: "sst", "base wal", "segment"
	key   string
	value []byte
}

func newCanaries(rng *rand.Rand) []canary {
	var out []canary
	for _, class := range []string{"sst", "base wal", "segment", "last segment"} {
		for i := range 8 {
			c := canary{class: class, value: make([]byte, 64)}
			for j := range c.value {
				c.value[j] = byte(rng.Uint32())
			}
			c.key = fmt.Sprintf("canary-%s-%02d-%016x", strings.ReplaceAll(class, " ", "-"), i, rng.Uint64())
			out = append(out, c)
		}
	}
	return out
}

// needles are what must not be found in an encrypted archive for c: its
// value, its value compressed with zstd (the fastest and the default
// level), and its key.
func (c canary) needles(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{"value": c.value, "key": []byte(c.key)}
	for name, level := range map[string]zstd.EncoderLevel{"zstd fastest": zstd.SpeedFastest, "zstd default": zstd.SpeedDefault} {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level))
		if err != nil {
			t.Fatal(err)
		}
		out["value, "+name] = enc.EncodeAll(c.value, nil)
		enc.Close()
	}
	return out
}

// archiveCanaries writes the canaries to a new database and archives it to
// a new file location, with keyFile ("" for a plaintext archive): the
// "sst" ones flushed before the first base, the "base wal" ones written
// before it but not flushed, the "segment" ones after it (and before a
// second base, taken with 'rockstream base'), the "last segment" ones
// after the second base. It returns the archive's folder and the SHA-256
// of each SST file of the database.
func archiveCanaries(t *testing.T, canaries []canary, encrypted bool) (string, []string) {
	t.Helper()
	f := newEncFixture(t)
	keyFile, store := "", f.plain
	if encrypted {
		keyFile, store = f.key, f.store
	}
	put := func(class string) {
		for _, c := range canaries {
			if c.class == class {
				if err := f.db.Put(f.wo, []byte(c.key), c.value); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	put("sst")
	f.flush(t)
	put("base wal")
	p := f.archiver(t, keyFile)
	put("segment")
	f.waitArchived(t, store, p)
	args := []string{"--log-level", "warn", "base", "--db", f.dir, "--to", f.url}
	if encrypted {
		args = append(args, "--encryption-key-file", keyFile)
	}
	if code, out, errOut := runCLI(t, args...); code != exitOK {
		t.Fatalf("base: exit %d\n%s%s", code, out, errOut)
	}
	put("last segment")
	f.waitArchived(t, store, p)
	if code := p.stop(t); code != exitOK {
		t.Fatalf("archive: exit %d\n%s", code, p.out)
	}
	ssts, _ := filepath.Glob(filepath.Join(f.dir, "*.sst"))
	if len(ssts) == 0 {
		t.Fatalf("no SST file in %s", f.dir)
	}
	var sums []string
	for _, path := range ssts {
		sum := sha256.Sum256(readAll(t, path))
		sums = append(sums, hex.EncodeToString(sum[:]))
	}
	m, _, err := manifest.Load(t.Context(), f.plain)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Bases) != 2 || m.Encrypted() != encrypted {
		t.Fatalf("the archive has %d bases (want 2), encrypted %v (want %v)", len(m.Bases), m.Encrypted(), encrypted)
	}
	return f.bucket, sums
}

// TestEncryptedBucketHoldsNoPlaintext archives a database of known keys
// and values, some in SST files of the bases, some in the bases' WAL files,
// some in segments only, with a key, and reads every byte of every object
// of the archive: none may hold a value, a value as zstd compresses it, or
// a key; every object but manifest.json is encrypted (its header); no
// object is named by the SHA-256 of an SST file. The control: the same
// writes archived without a key show every value, and SST files named by
// their SHA-256, so the scan finds what is there.
func TestEncryptedBucketHoldsNoPlaintext(t *testing.T) {
	canaries := newCanaries(rand.New(rand.NewPCG(11, 12)))
	needles := make([]map[string][]byte, len(canaries))
	for i, c := range canaries {
		needles[i] = c.needles(t)
	}
	type found struct{ what, object string }
	scan := func(bucket string, sums []string) (hits map[int][]found, sstNamed int) {
		hits = map[int][]found{}
		objects := objectFiles(t, bucket)
		for key, path := range objects {
			data := readAll(t, path)
			for i := range canaries {
				for what, needle := range needles[i] {
					if bytes.Contains(data, needle) {
						hits[i] = append(hits[i], found{what, key})
					}
				}
			}
			for _, sum := range sums {
				if strings.Contains(key, sum) {
					sstNamed++
				}
			}
		}
		return hits, sstNamed
	}

	bucket, sums := archiveCanaries(t, canaries, true)
	hits, sstNamed := scan(bucket, sums)
	for i, hs := range hits {
		for _, h := range hs {
			t.Errorf("the encrypted archive shows the %s of canary %s (%s) in %s", h.what, canaries[i].key, canaries[i].class, h.object)
		}
	}
	if sstNamed > 0 {
		t.Errorf("%d objects of the encrypted archive are named by the SHA-256 of an SST file", sstNamed)
	}
	objects := objectFiles(t, bucket)
	var sstObjects, total int
	for key, path := range objects {
		total++
		if strings.HasPrefix(key, "sst/") {
			sstObjects++
		}
		data := readAll(t, path)
		if key == manifest.ManifestKey || strings.HasPrefix(key, "probe/") {
			continue
		}
		if !crypt.IsEncrypted(data) {
			t.Errorf("%s is not encrypted: it starts %q", key, data[:min(len(data), 16)])
		}
	}
	if sstObjects == 0 {
		t.Fatalf("the encrypted archive holds no SST file: the scan did not see one")
	}

	plainBucket, plainSums := archiveCanaries(t, canaries, false)
	hits, sstNamed = scan(plainBucket, plainSums)
	byClass := map[string]int{}
	keys := 0
	where := map[string]string{"sst": "sst/", "base wal": "bases/", "segment": "segments/", "last segment": "segments/"}
	for i, c := range canaries {
		value := false
		for _, h := range hits[i] {
			value = value || h.what == "value" && strings.HasPrefix(h.object, where[c.class])
			if h.what == "key" {
				keys++
			}
		}
		if !value {
			t.Errorf("control: the plaintext archive does not show the value of canary %s (%s) under %s: the scan cannot fail (found: %v)",
				c.key, c.class, where[c.class], hits[i])
		} else {
			byClass[c.class]++
		}
	}
	if sstNamed == 0 {
		t.Errorf("control: no object of the plaintext archive is named by the SHA-256 of an SST file")
	}
	t.Logf("encrypted: %d objects (%d SST files) scanned for %d canaries, none found; plaintext control: values found %v, %d key names, %d SST files named by their SHA-256",
		total, sstObjects, len(canaries), byClass, keys, sstNamed)
}

// TestEncryptedFlowMinIO is the whole life of an encrypted archive in a
// real MinIO bucket: 'keygen'; 'archive' with the key file as the sidecar
// of a database that db_bench writes (WAL retention, 1 MiB memtables, a
// base every second, so that SST files are uploaded); a 'standby' that
// follows with the key (given by ROCKSTREAM_ENCRYPTION_KEY_FILE) and
// equals the primary; restores of the latest state and of two sequences
// between, each equal to the WAL oracle (ldb dump_wal); 'verify --drill'
// and 'status'; 'promote --standby', after which the promoted database
// equals the primary at the promotion point and the standby process
// archives timeline 2, encrypted; 'prune' with a retention policy, after
// which verify passes, no SST object is left that no base names, and the
// latest restore equals the promoted database. Every object in the bucket
// but the manifest is encrypted with the key.
func TestEncryptedFlowMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	url := "s3://" + srv.NewBucket(t) + "/app?endpoint=" + srv.Endpoint
	env := []string{"AWS_ACCESS_KEY_ID=" + miniotest.AccessKey, "AWS_SECRET_ACCESS_KEY=" + miniotest.SecretKey}
	t.Setenv("AWS_ACCESS_KEY_ID", miniotest.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", miniotest.SecretKey)
	ctx := t.Context()
	keyFile := filepath.Join(t.TempDir(), "app.key")
	keyID := keygenFile(t, keyFile, false)
	if code, _, errOut := runCLI(t, "keygen", keyFile); code != exitUsage || !strings.Contains(errOut, keyFile) {
		t.Fatalf("keygen over an existing key file: exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	plain := openLocation(t, url)
	store := encryptedStore(t, url, keyFile)

	dir := newDB(t)
	old := startCLI(t, env, "--log-level", "warn", "archive", "--db", dir, "--to", url, "--encryption-key-file", keyFile,
		"--segment-age", "100ms", "--fence-check", "200ms", "--base-interval", "1s", "--writer-id", "old-primary", "--nice", "0")
	waitManifest(t, plain)
	if m, _, err := manifest.Load(ctx, plain); err != nil || m.Format != manifest.FormatEncrypted || m.Encryption == nil ||
		!slices.Equal(m.Encryption.KeyIDs, []string{keyID}) {
		t.Fatalf("the new archive's manifest: %+v, %v; want format %d, encrypted with key %s", m, err, manifest.FormatEncrypted, keyID)
	}
	sbDir, addr := filepath.Join(t.TempDir(), "standby"), freeAddr(t)
	sb := startCLI(t, append(env, "ROCKSTREAM_ENCRYPTION_KEY_FILE="+keyFile), "--log-level", "warn", "standby", "--from", url,
		"--listen", addr, "--poll", "20ms", "--segment-age", "100ms", "--fence-check", "200ms", "--writer-id", "new-primary", sbDir)
	waitCmd(t, dbBench(t, dir, "--benchmarks=overwrite", "--use_existing_db=1", "--num=40000", "--batch_size=4",
		"--benchmark_write_rate_limit=2000000"))
	want := dbLatest(t, dir)
	waitUntilT(t, "the archive", func() bool { old.failIfExited(t); return archivedTo(t, store, 1) == want })
	waitUntilT(t, "the standby to catch up", func() bool { sb.failIfExited(t); a, _ := standbyApplied(addr); return a == want })
	primary, _ := testdb.Digest(t, dir)
	if d := secondaryDigest(t, sbDir).Diff(primary); d != "" {
		t.Fatalf("the standby differs from the primary: %s", d)
	}
	// A base a second: SST files are uploaded once db_bench has flushed.
	var ssts int
	var m *manifest.Manifest
	waitUntilT(t, "SST files under sst/ and two bases", func() bool {
		old.failIfExited(t)
		ssts = 0
		for info, err := range plain.List(ctx, "sst/", "") {
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(info.Key, ".sst") {
				ssts++
			}
		}
		m = mustManifest(t, plain)
		return ssts > 0 && len(m.Bases) >= 2
	})

	// Restores of the latest state and of two points between, with the
	// key, against the WAL oracle.
	first := slices.MinFunc(m.Bases, func(a, b manifest.Base) int { return compareSeq(a.Sequence, b.Sequence) }).Sequence
	mid1, mid2 := first+(want-first)/3, first+2*(want-first)/3
	states, batches, last := walOracle(t, dir, []uint64{mid1, mid2, want})
	if last != want {
		t.Fatalf("the WAL oracle ends at %d, the database at %d", last, want)
	}
	for _, n := range []uint64{mid1, mid2} {
		mustRestoreEqual(t, fmt.Sprintf("restore --to-seq %d", n), url, keyFile, states[n].Seq, states[n].Digest, "--to-seq", fmt.Sprint(n))
	}
	mustRestoreEqual(t, "restore of the latest state", url, keyFile, want, states[want].Digest)
	code, out, errOut := runCLI(t, "--log-level", "warn", "verify", "--from", url, "--encryption-key-file", keyFile, "--drill")
	if code != exitOK || !strings.Contains(out, "OK") || !strings.Contains(out, "Drill") {
		t.Fatalf("verify --drill: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "status", "--from", url, "--encryption-key-file", keyFile)
	if code != exitOK || !strings.Contains(out, "Encrypted with keys "+keyID) {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}

	// Promotion.
	code, out, errOut = runCLI(t, "promote", "--standby", "http://"+addr)
	if code != exitOK || !strings.Contains(out, fmt.Sprintf("timeline 2 branches from timeline 1 after sequence %d", want)) {
		t.Fatalf("promote: exit %d\n%s%s\nstandby:\n%s", code, out, errOut, sb.out)
	}
	if code := old.wait(t, 30*time.Second); code != exitFenced {
		t.Fatalf("the old archiver: exit %d, want %d (fenced)\n%s", code, exitFenced, old.out)
	}
	if got, seq := testdb.Digest(t, sbDir); seq != want || got.Diff(primary) != "" {
		t.Fatalf("the promoted database at %d (the primary at %d): %s", seq, want, got.Diff(primary))
	}
	app := testdb.Open(t, sbDir)
	putN(t, app, "after-promotion-", 500)
	newSeq := app.GetLatestSequenceNumber()
	waitUntilT(t, "timeline 2 to be archived", func() bool { sb.failIfExited(t); return archivedTo(t, store, 2) == newSeq })
	app.Close()
	if code := sb.stop(t); code != exitOK {
		t.Fatalf("the standby turned archiver: exit %d\n%s", code, sb.out)
	}
	promoted, _ := testdb.Digest(t, sbDir)
	mustRestoreEqual(t, "restore of timeline 2", url, keyFile, newSeq, promoted, "--timeline", "2")

	// Retention.
	before := len(mustManifest(t, plain).Bases)
	code, out, errOut = runCLI(t, "--log-level", "warn", "prune", "--from", url, "--encryption-key-file", keyFile,
		"--keep-last", "1", "--grace", "0", "--json")
	var rep prune.Report
	if err := json.Unmarshal([]byte(out), &rep); code != exitOK || err != nil || len(rep.Dropped) == 0 {
		t.Fatalf("prune: exit %d (%v)\n%s%s", code, err, out, errOut)
	}
	var deleted int
	for _, sw := range rep.Swept {
		deleted += sw.Deleted
	}
	m = mustManifest(t, plain)
	if deleted == 0 || len(m.Bases) >= before {
		t.Fatalf("prune deleted %d objects; %d bases before, %d after", deleted, before, len(m.Bases))
	}
	if code, out, errOut := runCLI(t, "--log-level", "warn", "verify", "--from", url, "--encryption-key-file", keyFile); code != exitOK {
		t.Fatalf("verify after the prune: exit %d\n%s%s", code, out, errOut)
	}
	noOrphanSSTs(t, plain, store, m)
	mustRestoreEqual(t, "restore of the latest state after the prune", url, keyFile, newSeq, promoted)
	allEncrypted(t, plain, keyID)
	t.Logf("%d batches to %d, %d SST objects, restores at %d, %d, %d; promoted, timeline 2 to %d; prune dropped %d bases, deleted %d objects",
		batches, want, ssts, mid1, mid2, want, newSeq, len(rep.Dropped), deleted)
}

func mustManifest(t *testing.T, s objstore.Store) *manifest.Manifest {
	t.Helper()
	m, _, err := manifest.Load(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// noOrphanSSTs checks that the bucket holds one SST object for each SST
// file that a base of m names (the archive has one key: one keyed name
// each), and that each of those reads.
func noOrphanSSTs(t *testing.T, plain, store objstore.Store, m *manifest.Manifest) {
	t.Helper()
	named := map[string]bool{}
	for _, b := range m.Bases {
		fl, err := manifest.LoadFileList(t.Context(), store, m, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fl.Files {
			if manifest.IsSST(f.Name) {
				named[f.Key] = true
			}
		}
	}
	for key := range named {
		if _, err := store.Head(t.Context(), key); err != nil {
			t.Errorf("%s, named by a base: %v", key, err)
		}
	}
	var stored []string
	for info, err := range plain.List(t.Context(), "sst/", "") {
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, info.Key)
	}
	if len(stored) != len(named) {
		t.Errorf("after the prune the bucket holds %d SST objects, the bases name %d SST files", len(stored), len(named))
	}
}

// allEncrypted checks that every object in the bucket but the manifest
// and the probe's starts with an encryption header naming the key id.
func allEncrypted(t *testing.T, plain objstore.Store, id string) {
	t.Helper()
	n := 0
	for info, err := range plain.List(t.Context(), "", "") {
		if err != nil {
			t.Fatal(err)
		}
		if info.Key == manifest.ManifestKey || strings.HasPrefix(info.Key, "probe/") {
			continue
		}
		rc, _, err := plain.Get(t.Context(), info.Key, objstore.GetOptions{Length: crypt.HeaderSize})
		if err != nil {
			t.Fatal(err)
		}
		hdr, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		h, err := crypt.ParseHeader(info.Key, hdr)
		if err != nil || h.ID.String() != id {
			t.Errorf("%s: header %q: %v (want key %s)", info.Key, hdr, err, id)
		}
		n++
	}
	if n == 0 {
		t.Fatal("no object in the bucket")
	}
}
