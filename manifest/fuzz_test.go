package manifest_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/rockstream/rockstream/manifest"
)

// FuzzLoad feeds any bytes to Parse, ParseFileList and ParsePruneRecord,
// the decoders of Load, LoadFileList and LoadPruneRecord.
// Nothing may panic; what is accepted must encode and decode again to the
// same thing; and the ranges of an accepted manifest, over segments drawn
// from the same bytes, must compute without a panic.
func FuzzLoad(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(goldenDir, "*.json"))
	hostile, _ := filepath.Glob(filepath.Join(goldenDir, "hostile", "*.json"))
	for _, p := range append(paths, hostile...) {
		f.Add(readGolden(f, p[len(goldenDir)+1:]))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if m, err := manifest.Parse(data); err == nil {
			checkManifestRoundTrip(t, m)
			checkRanges(t, m, data)
		}
		if fl, err := manifest.ParseFileList(data); err == nil {
			checkFileListRoundTrip(t, fl)
		}
		if r, err := manifest.ParsePruneRecord(data); err == nil {
			checkPruneRecord(t, r)
		}
	})
}

// checkManifestRoundTrip checks that an accepted manifest encodes to JSON
// that decodes to the same manifest.
func checkManifestRoundTrip(t *testing.T, m *manifest.Manifest) {
	a := encodeJSON(t, m)
	m2, err := manifest.Parse(a)
	if err != nil {
		t.Fatalf("an accepted manifest does not decode once encoded: %v\n%s", err, a)
	}
	if b := encodeJSON(t, m2); !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the manifest:\n%s\n%s", a, b)
	}
}

func checkFileListRoundTrip(t *testing.T, fl *manifest.FileList) {
	a := encodeJSON(t, fl)
	fl2, err := manifest.ParseFileList(a)
	if err != nil {
		t.Fatalf("an accepted file list does not decode once encoded: %v\n%s", err, a)
	}
	if b := encodeJSON(t, fl2); !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the file list:\n%s\n%s", a, b)
	}
}

func encodeJSON(t *testing.T, v any) []byte {
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// checkRanges draws segments for the manifest's timelines from data and
// computes the ranges and a plan. Errors are fine; panics are not.
func checkRanges(t *testing.T, m *manifest.Manifest, data []byte) {
	segs := map[uint32][]manifest.Segment{}
	for i := 0; i+16 <= len(data) && i < 16*64; i += 16 {
		tl := m.Timelines[int(data[i])%len(m.Timelines)]
		first := tl.Branch + 1 + uint64(binary.LittleEndian.Uint32(data[i:]))%4096
		length := uint64(binary.LittleEndian.Uint32(data[i+8:])) % 512
		segs[tl.ID] = append(segs[tl.ID], manifest.Segment{First: first, Next: first + length})
	}
	cov, err := manifest.Restorable(m, segs)
	if err != nil {
		return
	}
	for _, c := range cov {
		for _, r := range c.Ranges {
			if _, err := manifest.PlanRestore(m, segs, c.Timeline, r.To); err != nil {
				t.Fatalf("the end %d of a restorable range of timeline %d does not plan: %v", r.To, c.Timeline, err)
			}
		}
	}
}

// checkPruneRecord checks that an accepted pending record names only
// objects that prune may delete, and survives a round trip.
func checkPruneRecord(t *testing.T, r *manifest.PruneRecord) {
	for _, o := range r.Objects {
		if err := manifest.CheckPrunable(o.Key); err != nil {
			t.Fatalf("an accepted record names %q: %v", o.Key, err)
		}
	}
	a := encodeJSON(t, r)
	r2, err := manifest.ParsePruneRecord(a)
	if err != nil {
		t.Fatalf("an accepted record does not decode once encoded: %v\n%s", err, a)
	}
	if b := encodeJSON(t, r2); !bytes.Equal(a, b) {
		t.Fatalf("round trip changed the record:\n%s\n%s", a, b)
	}
}
