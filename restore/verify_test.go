package restore

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/faultstore"
)

func verify(t *testing.T, s objstore.Store, drill bool) *Report {
	t.Helper()
	return verifyIn(t, s, drill, t.TempDir())
}

func verifyIn(t *testing.T, s objstore.Store, drill bool, scratch string) *Report {
	t.Helper()
	rep, err := Verify(context.Background(), s, VerifyOptions{Drill: drill, ScratchDir: scratch, Logger: quiet()})
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	for _, p := range rep.Problems {
		t.Logf("problem: %s", p)
	}
	return rep
}

// hasProblem checks that rep names key with a problem that says says.
func hasProblem(t *testing.T, rep *Report, key, says string) {
	t.Helper()
	for _, p := range rep.Problems {
		if p.Key == key && strings.Contains(p.What, says) {
			return
		}
	}
	t.Fatalf("no problem of %s saying %q among %d: %v", key, says, len(rep.Problems), rep.Problems)
}

func TestVerifyHealthy(t *testing.T) {
	a := sharedArchive(t)
	rep := verify(t, fileStore(t, a.bucket), false)
	if !rep.OK() {
		t.Fatalf("a healthy archive has %d problems", len(rep.Problems))
	}
	segs := segmentKeys(t, a)
	if rep.Bases != 2 || rep.Segments != len(segs) || rep.Files == 0 || rep.Batches == 0 {
		t.Fatalf("read %d bases, %d files, %d segments (of %d), %d batches", rep.Bases, rep.Files, rep.Segments, len(segs), rep.Batches)
	}
	want := []manifest.Range{{From: a.bases[0], To: a.latest}}
	if len(rep.Coverage) != 1 || !slices.Equal(rep.Coverage[0].Ranges, want) {
		t.Fatalf("coverage %+v, want %v", rep.Coverage, want)
	}
}

// TestVerifyFindsEveryDamage damages an archive in several places at once
// and checks that verify names each bad object.
func TestVerifyFindsEveryDamage(t *testing.T) {
	a := sharedArchive(t)
	_, fs := copyBucket(t, a)
	root := fs.Root()
	segs := segmentKeys(t, a)
	flipped, deleted, before, copied := segs[1], segs[4], segs[3], segs[6]
	flipOnDisk(t, filepath.Join(root, flipped.Key), flipped.Size/2)
	os.Remove(filepath.Join(root, deleted.Key))
	copyFile(t, filepath.Join(root, segs[7].Key), filepath.Join(root, copied.Key))
	sst := largestSST(t, baseFiles(t, a, 1))
	os.Truncate(filepath.Join(root, sst.Key), sst.Size-1)
	list0 := manifest.FileListKey(1, a.bases[0])
	editFile(t, filepath.Join(root, list0), `"name": "CURRENT"`, `"name": "../CURRENT"`)

	rep := verify(t, fs, false)
	hasProblem(t, rep, flipped.Key, "checksum")
	hasProblem(t, rep, before.Key, "no hole is recorded")
	hasProblem(t, rep, copied.Key, "its header says")
	hasProblem(t, rep, sst.Key, "bytes, files.json says")
	hasProblem(t, rep, list0, `"../CURRENT"`)
	hasProblem(t, rep, "", "status says restorable")
}

// TestVerifyMissingAndChangedBaseFile: a base file gone, another changed.
func TestVerifyMissingAndChangedBaseFile(t *testing.T) {
	a := sharedArchive(t)
	_, fs := copyBucket(t, a)
	fl := baseFiles(t, a, 1)
	var changed, gone manifest.File
	for _, f := range fl.Files {
		switch {
		case strings.HasPrefix(f.Name, "MANIFEST-"):
			changed = f
		case f.Name == "CURRENT":
			gone = f
		}
	}
	flipOnDisk(t, filepath.Join(fs.Root(), changed.Key), 0)
	os.Remove(filepath.Join(fs.Root(), gone.Key))
	rep := verify(t, fs, false)
	hasProblem(t, rep, changed.Key, "sha256")
	hasProblem(t, rep, gone.Key, "missing")
	if want := []manifest.Range{{From: a.bases[0], To: a.latest}}; !slices.Equal(rep.Coverage[0].Ranges, want) {
		t.Fatalf("without base %d the objects allow %v, want %v", a.bases[1], rep.Coverage[0].Ranges, want)
	}
}

// TestVerifyDamagedLastSegment: status cannot read the archive when the
// last segment's trailer is damaged; verify says so and names the key.
func TestVerifyDamagedLastSegment(t *testing.T) {
	a := sharedArchive(t)
	_, fs := copyBucket(t, a)
	segs := segmentKeys(t, a)
	last := segs[len(segs)-1]
	flipOnDisk(t, filepath.Join(fs.Root(), last.Key), last.Size-20)
	rep := verify(t, fs, false)
	hasProblem(t, rep, last.Key, "corrupt")
	hasProblem(t, rep, "", "status cannot read the archive")
}

func TestVerifyNoArchive(t *testing.T) {
	_, err := Verify(context.Background(), fileStore(t, t.TempDir()), VerifyOptions{Logger: quiet()})
	if err == nil || !strings.Contains(err.Error(), "no archive") {
		t.Fatalf("verify of an empty location: %v", err)
	}
}

// TestVerifyDrill: the drill restores the latest state and reproduces the
// newest base from the older one, compared first with the base's
// checkpoint, then with a recorded digest, then with a wrong one.
func TestVerifyDrill(t *testing.T) {
	a := sharedArchive(t)
	_, fs := copyBucket(t, a)
	scratch := t.TempDir()
	rep := verifyIn(t, fs, true, scratch)
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Fatalf("the drill left %v in its scratch folder", left)
	}
	d := rep.Drill
	if !rep.OK() || d == nil || !d.OK || d.Latest != a.latest || d.Sequence != a.bases[1] || d.FromBase != a.bases[0] ||
		d.Segments == 0 || !strings.Contains(d.Comparison, "checkpoint") {
		t.Fatalf("drill %+v, problems %v", d, rep.Problems)
	}
	t.Logf("drill: %s: %s", d.Comparison, d.Digest)

	setDigest(t, fs, a.bases[1], d.Digest)
	rep = verify(t, fs, true)
	if !rep.OK() || !rep.Drill.OK || !strings.Contains(rep.Drill.Comparison, "recorded") {
		t.Fatalf("drill with a recorded digest: %+v, problems %v", rep.Drill, rep.Problems)
	}

	wrong := DigestPrefix + strings.Repeat("0", 64)
	setDigest(t, fs, a.bases[1], wrong)
	rep = verify(t, fs, true)
	if rep.OK() || rep.Drill.OK {
		t.Fatal("the drill accepted a wrong recorded digest")
	}
	hasProblem(t, rep, manifest.FileListKey(1, a.bases[1]), wrong)
}

func setDigest(t *testing.T, s objstore.Store, seq uint64, digest string) {
	t.Helper()
	_, _, err := manifest.Update(context.Background(), s, nil, func(m *manifest.Manifest) error {
		for i := range m.Bases {
			if m.Bases[i].Sequence == seq {
				m.Bases[i].Digest = digest
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	out.Close()
}

func editFile(t *testing.T, path, old, new string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not hold %q", path, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyRecordedHole: a segment whose batches are gone, with the hole
// recorded in the manifest as the writer's rules say, is no problem:
// the segment before it ends where the hole begins.
func TestVerifyRecordedHole(t *testing.T) {
	a := sharedArchive(t)
	_, fs := copyBucket(t, a)
	segs := segmentKeys(t, a)
	gone := segs[3]
	os.Remove(filepath.Join(fs.Root(), gone.Key))
	_, _, err := manifest.Update(context.Background(), fs, nil, func(m *manifest.Manifest) error {
		m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: gone.First, To: gone.Next - 1, Reason: "test: the WAL was gone"})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rep := verify(t, fs, false)
	want := []manifest.Range{{From: a.bases[0], To: gone.First - 1}, {From: a.bases[1], To: a.latest}}
	if !rep.OK() || !slices.Equal(rep.Coverage[0].Ranges, want) {
		t.Fatalf("problems %v, coverage %v; want none and %v", rep.Problems, rep.Coverage[0].Ranges, want)
	}
	mustFail(t, fs, Options{ToSeq: seqp(gone.First + 1)}, manifest.ErrNotRestorable, manifest.RangesText(want))
}

// TestVerifyBrokenTransfers: a segment or a base file whose transfer
// breaks off once is read again, and is no problem; one that always breaks
// stops verify with a failure of the store, never a corrupt object.
func TestVerifyBrokenTransfers(t *testing.T) {
	a := sharedArchive(t)
	seg := segmentAfter(t, a, a.bases[0])
	sst := largestSST(t, baseFiles(t, a, 1))
	fs := faultstore.New(fileStore(t, a.bucket))
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: seg.Key, Nth: 1, Cut: true, CutAt: seg.Size / 2})
	fs.Add(faultstore.Rule{Op: faultstore.Get, KeyContains: sst.Key, Nth: 1, Cut: true, CutAt: sst.Size / 2})
	if rep := verify(t, fs, false); !rep.OK() {
		t.Fatalf("verify through one broken transfer of %s and of %s: %v", seg.Key, sst.Key, rep.Problems)
	}
	for _, key := range []string{seg.Key, sst.Key} {
		fs := faultstore.New(fileStore(t, a.bucket))
		fs.CutShort(key, 100)
		_, err := Verify(context.Background(), fs, VerifyOptions{Logger: quiet()})
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "transfer stopped") {
			t.Fatalf("a transfer of %s that always breaks: %v, want verify to stop naming it", key, err)
		}
	}
}
