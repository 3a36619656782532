package manifest_test

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/manifest"
)

func TestSegmentKey(t *testing.T) {
	tests := []struct {
		tl    uint32
		first uint64
		want  string
	}{
		{1, 1, "segments/00000001/0000000000000001.seg"},
		{1, 1201, "segments/00000001/00000000000004b1.seg"},
		{0xabcdef12, 1<<56 - 1, "segments/abcdef12/00ffffffffffffff.seg"},
		{0xffffffff, 1<<64 - 1, "segments/ffffffff/ffffffffffffffff.seg"},
	}
	for _, tt := range tests {
		got := manifest.SegmentKey(tt.tl, tt.first)
		if got != tt.want {
			t.Errorf("SegmentKey(%d, %d) = %q, want %q", tt.tl, tt.first, got, tt.want)
		}
		if !strings.HasPrefix(got, manifest.SegmentPrefix(tt.tl)) {
			t.Errorf("%q is not under SegmentPrefix(%d) = %q", got, tt.tl, manifest.SegmentPrefix(tt.tl))
		}
		tl, first, err := manifest.ParseSegmentKey(got)
		if err != nil || tl != tt.tl || first != tt.first {
			t.Errorf("ParseSegmentKey(%q) = %d, %d, %v; want %d, %d", got, tl, first, err, tt.tl, tt.first)
		}
	}
}

// TestSegmentKeyOrder checks that key order is sequence order, within and
// across timelines.
func TestSegmentKeyOrder(t *testing.T) {
	type seg struct {
		tl    uint32
		first uint64
	}
	r := rand.New(rand.NewPCG(1, 2))
	segs := make([]seg, 2000)
	for i := range segs {
		segs[i] = seg{uint32(r.IntN(20) + 1), r.Uint64() >> uint(r.IntN(64))}
	}
	keys := make([]string, len(segs))
	for i, s := range segs {
		keys[i] = manifest.SegmentKey(s.tl, s.first)
	}
	slices.Sort(keys)
	slices.SortFunc(segs, func(a, b seg) int {
		if a.tl != b.tl {
			return int(a.tl) - int(b.tl)
		}
		return compareU64(a.first, b.first)
	})
	for i, s := range segs {
		if keys[i] != manifest.SegmentKey(s.tl, s.first) {
			t.Fatalf("key order differs from sequence order at %d: %q", i, keys[i])
		}
	}
}

func compareU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestParseSegmentKeyStrict(t *testing.T) {
	bad := []string{
		"",
		"segments/00000001/0000000000000001",
		"segments/00000001/0000000000000001.seg.tmp",
		"segments/00000001/000000000000001.seg",
		"segments/00000001/00000000000000001.seg",
		"segments/0000001/0000000000000001.seg",
		"segments/00000001/00000000000004B1.seg",
		"segments/0000000G/0000000000000001.seg",
		"segments/00000000/0000000000000001.seg", // timeline 0
		"segments/00000001/+000000000000001.seg",
		"segments/00000001/ 000000000000001.seg",
		"/segments/00000001/0000000000000001.seg",
		"x/segments/00000001/0000000000000001.seg",
		"segments//00000001/000000000000001.seg",
		"segments/00000001_0000000000000001.seg",
		"segments/00000001/0000000000000001.sst",
		"bases/00000001/0000000000000001.seg",
	}
	for _, key := range bad {
		if tl, first, err := manifest.ParseSegmentKey(key); err == nil {
			t.Errorf("ParseSegmentKey(%q) = %d, %d, nil; want an error", key, tl, first)
		} else {
			wantErr(t, err, manifest.ErrInvalid, "segment key")
		}
	}
}

func TestBaseKeys(t *testing.T) {
	if got, want := manifest.BasePrefix(2, 6000), "bases/00000002/0000000000001770/"; got != want {
		t.Errorf("BasePrefix = %q, want %q", got, want)
	}
	if got, want := manifest.FileListKey(2, 6000), "bases/00000002/0000000000001770/files.json"; got != want {
		t.Errorf("FileListKey = %q, want %q", got, want)
	}
	got, err := manifest.BaseFileKey(2, 6000, "MANIFEST-000017")
	if want := "bases/00000002/0000000000001770/MANIFEST-000017"; err != nil || got != want {
		t.Errorf("BaseFileKey = %q, %v; want %q", got, err, want)
	}
	for _, name := range []string{"files.json", "../CURRENT", "a/b", ""} {
		if key, err := manifest.BaseFileKey(2, 6000, name); err == nil {
			t.Errorf("BaseFileKey(%q) = %q, want an error", name, key)
		}
	}
}

func TestSSTKey(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 4)
	key, err := manifest.SSTKey(sum)
	if want := "sst/" + sum + ".sst"; err != nil || key != want {
		t.Fatalf("SSTKey = %q, %v; want %q", key, err, want)
	}
	if got, err := manifest.ParseSSTKey(key); err != nil || got != sum {
		t.Errorf("ParseSSTKey(%q) = %q, %v", key, got, err)
	}
	for _, bad := range []string{"", sum[:63], strings.ToUpper(sum), sum + "0", "../" + sum[3:], strings.Repeat("g", 64)} {
		if key, err := manifest.SSTKey(bad); err == nil {
			t.Errorf("SSTKey(%q) = %q, want an error", bad, key)
		}
	}
	for _, bad := range []string{"sst/" + sum, "sst/" + sum[:63] + ".sst", "sst/x/" + sum + ".sst", sum + ".sst"} {
		if got, err := manifest.ParseSSTKey(bad); err == nil {
			t.Errorf("ParseSSTKey(%q) = %q, want an error", bad, got)
		}
	}
}

func TestFileKey(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct{ name, want string }{
		{"000012.sst", "sst/" + sum + ".sst"},
		{"000018.log", "bases/00000001/00000000000003e8/000018.log"},
		{"CURRENT", "bases/00000001/00000000000003e8/CURRENT"},
		{"OPTIONS-000019", "bases/00000001/00000000000003e8/OPTIONS-000019"},
	}
	for _, tt := range tests {
		if got, err := manifest.FileKey(1, 1000, tt.name, sum); err != nil || got != tt.want {
			t.Errorf("FileKey(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	if key, err := manifest.FileKey(1, 1000, "000012.sst", "nothex"); err == nil {
		t.Errorf("FileKey with a bad sum = %q, want an error", key)
	}
}

func TestValidateName(t *testing.T) {
	good := []string{"CURRENT", "IDENTITY", "MANIFEST-000017", "OPTIONS-000019", "000012.sst", "000018.log", "000020.blob", strings.Repeat("x", 255), "a.b.c", "LOG.old.1700000000"}
	for _, name := range good {
		if err := manifest.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q) = %v, want nil", name, err)
		}
	}
	bad := []string{"", ".", "..", "../CURRENT", "a..b", "/etc/passwd", "a/b", `a\b`, `C:CURRENT`, "CUR\x00RENT", "x\ny", "\x7f", strings.Repeat("x", 256), "\xff\xfe"}
	for _, name := range bad {
		err := manifest.ValidateName(name)
		if err == nil {
			t.Errorf("ValidateName(%q) = nil, want an error", name)
			continue
		}
		wantErr(t, err, manifest.ErrInvalid, "file name")
	}
}
