package manifest_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

func date(s string) time.Time {
	d, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestGoldenManifest pins the JSON field names of format 1: the golden
// file must decode to these values, and encode back to the same bytes.
func TestGoldenManifest(t *testing.T) {
	data := readGolden(t, "manifest.json")
	m, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := &manifest.Manifest{
		Format:   1,
		Identity: "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910",
		Created:  date("2025-03-01T10:00:00Z"),
		Revision: "5d41402abc4b2a76b9719d911017c592",
		Timelines: []manifest.Timeline{
			{ID: 1, Created: date("2025-03-01T10:00:00Z")},
			{ID: 2, Parent: 1, Branch: 5000, Created: date("2025-03-03T08:30:00Z")},
		},
		Bases: []manifest.Base{
			{Timeline: 1, Sequence: 1000, Time: date("2025-03-01T10:00:05Z"), FileList: "bases/00000001/00000000000003e8/files.json",
				Size: 110111651, FileCount: 7, Digest: "sha256:ac7f39a1e0b7bcd03a4d2c83b773ae28ba3befa34bbfd0341e3fef15dfdfad84"},
			{Timeline: 2, Sequence: 6000, Time: date("2025-03-04T00:00:00Z"), FileList: "bases/00000002/0000000000001770/files.json",
				Size: 98765432, FileCount: 9},
		},
		Holes: []manifest.Hole{
			{Timeline: 1, From: 3001, To: 3500, Detected: date("2025-03-02T12:00:00Z"), Reason: "WAL 000042.log was deleted before it was archived"},
		},
		Writer: &manifest.Writer{Timeline: 2, Epoch: 2, ID: "archiver-1f2e3d4c", Host: "db-2", Since: date("2025-03-03T08:30:00Z")},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("golden manifest decodes to\n%+v\nwant\n%+v", m, want)
	}
	assertEncodesTo(t, context.Background(), m, data)
}

// assertEncodesTo checks that Create writes m as exactly want, apart from
// the revision, which it sets anew.
func assertEncodesTo(t *testing.T, ctx context.Context, m *manifest.Manifest, want []byte) {
	t.Helper()
	s := newStore(t)
	if _, err := manifest.Create(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Root(), manifest.ManifestKey))
	if err != nil {
		t.Fatal(err)
	}
	want = []byte(strings.Replace(string(want), "5d41402abc4b2a76b9719d911017c592", m.Revision, 1))
	if string(got) != string(want) {
		t.Errorf("Create wrote\n%s\nwant\n%s", got, want)
	}
}

func TestGoldenFileList(t *testing.T) {
	data := readGolden(t, "files.json")
	fl, err := manifest.ParseFileList(data)
	if err != nil {
		t.Fatal(err)
	}
	if fl.Format != 1 || fl.Identity != "7f6e5d4c-3b2a-4190-8f7e-6d5c4b3a2910" || fl.Timeline != 1 || fl.Sequence != 1000 ||
		!fl.Created.Equal(date("2025-03-01T10:00:05Z")) || fl.Options != "OPTIONS-000019" || len(fl.Files) != 7 {
		t.Fatalf("golden file list header decodes to %+v", fl)
	}
	wantFirst := manifest.File{Name: "000012.sst", Size: 67108864,
		SHA256: "373e6fcd657b82af6cf839135cc5b510b7852a2d4b79b52a4564ca9c61d8cfe4",
		Key:    "sst/373e6fcd657b82af6cf839135cc5b510b7852a2d4b79b52a4564ca9c61d8cfe4.sst"}
	if fl.Files[0] != wantFirst {
		t.Errorf("files[0] = %+v, want %+v", fl.Files[0], wantFirst)
	}
	if got, want := fl.Files[6].Key, "bases/00000001/00000000000003e8/OPTIONS-000019"; got != want {
		t.Errorf("files[6].key = %q, want %q", got, want)
	}
	// The golden manifest's first base is this list.
	m := goldenManifest(t)
	if got := fl.Base(); got.FileList != m.Bases[0].FileList || got.Size != m.Bases[0].Size || got.FileCount != m.Bases[0].FileCount {
		t.Errorf("Base() = %+v, want to match %+v", got, m.Bases[0])
	}
	s := newStore(t)
	if _, err := manifest.PutFileList(context.Background(), s, fl); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(s.Root(), fl.Base().FileList))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(data) {
		t.Errorf("PutFileList wrote\n%s\nwant\n%s", got, data)
	}
}

// hostile maps each file of testdata/manifest/hostile to what its error
// must mention (the bad field).
var hostile = map[string]string{
	"manifest-format-4":                    "version 4 is not supported",
	"manifest-encryption-missing":          "encryption: missing",
	"manifest-encryption-old-format":       "it needs format 3",
	"manifest-encryption-bad-id":           "not 16 lower-case hex",
	"manifest-encryption-no-ids":           "0 ids",
	"manifest-encryption-twice":            "listed twice",
	"manifest-encryption-bad-archive-id":   "encryption.archive_id",
	"manifest-format-missing":              "invalid format: missing",
	"manifest-format-string":               "invalid format",
	"manifest-dotdot-key":                  "bases[0].file_list",
	"manifest-absolute-key":                "bases[0].file_list",
	"manifest-backslash-key":               "bases[0].file_list",
	"manifest-nul-key":                     "bases[0].file_list",
	"manifest-wrong-key":                   "bases[0].file_list",
	"manifest-upper-hex-key":               "bases[0].file_list",
	"manifest-huge-size":                   "bases.size",
	"manifest-negative-size":               "bases[0].size",
	"manifest-absurd-size":                 "bases[0].size",
	"manifest-huge-count":                  "bases[0].file_count",
	"manifest-zero-count":                  "bases[0].file_count",
	"manifest-absurd-sequence":             "bases[0].sequence",
	"manifest-parent-cycle":                "timelines[0].parent",
	"manifest-parent-self":                 "timelines[1].parent",
	"manifest-parent-missing":              "timelines[1].parent",
	"manifest-duplicate-timeline":          "timelines[1].id",
	"manifest-timeline-zero":               "timelines[0].id",
	"manifest-negative-timeline":           "timelines.id",
	"manifest-no-timelines":                "invalid timelines",
	"manifest-branch-on-root":              "timelines[0].branch",
	"manifest-branch-before-parent-branch": "timelines[2].branch",
	"manifest-backward-hole":               "holes[0].from",
	"manifest-overlapping-holes":           "holes[1]",
	"manifest-hole-unknown-timeline":       "holes[0].timeline",
	"manifest-hole-before-branch":          "holes[1].from",
	"manifest-hole-control-reason":         "holes[0].reason",
	"manifest-base-unknown-timeline":       "bases[1].timeline",
	"manifest-base-before-branch":          "bases[1].sequence",
	"manifest-duplicate-base":              "bases[2]",
	"manifest-writer-unknown-timeline":     "writer.timeline",
	"manifest-writer-epoch-zero":           "writer.epoch",
	"manifest-writer-no-id":                "writer.id",
	"manifest-identity-empty":              "invalid identity",
	"manifest-revision-missing":            "invalid revision",
	"manifest-unknown-field":               `unknown field "segments"`,
	"manifest-trailing-data":               "data after the object",
	"manifest-not-json":                    "invalid json",
	"manifest-array":                       "invalid json",
	"files-format-9":                       "version 9 is not supported",
	"files-dotdot-name":                    "files[3].name",
	"files-absolute-name":                  "files[3].name",
	"files-backslash-name":                 "files[3].name",
	"files-nul-name":                       "files[3].name",
	"files-dot-name":                       "files[3].name",
	"files-long-name":                      "files[3].name",
	"files-own-name":                       "files[3].name",
	"files-sst-under-base":                 "files[0].key",
	"files-sst-other-hash":                 "files[0].key",
	"files-dotdot-key":                     "files[2].key",
	"files-other-base-key":                 "files[3].key",
	"files-huge-size":                      "files[0].size",
	"files-negative-size":                  "files[0].size",
	"files-bad-sha":                        "files[0].sha256",
	"files-duplicate-name":                 "files[7].name",
	"files-options-missing":                "invalid options",
	"files-options-not-options":            "invalid options",
	"files-empty":                          "invalid files",
	"files-timeline-zero":                  "invalid timeline",
	"files-unknown-field":                  `unknown field "mode"`,
}

// TestHostile loads every hostile file through the store, as the manifest
// or as the golden manifest's first file list: each must be refused with
// ErrInvalid, naming the object key and the bad field.
func TestHostile(t *testing.T) {
	names, err := filepath.Glob(filepath.Join(goldenDir, "hostile", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(hostile) {
		t.Errorf("%d hostile files, %d in the table", len(names), len(hostile))
	}
	ctx := context.Background()
	m := goldenManifest(t)
	for _, path := range names {
		name := strings.TrimSuffix(filepath.Base(path), ".json")
		field, ok := hostile[name]
		if !ok {
			t.Errorf("hostile file %s is not in the table", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			data := readGolden(t, filepath.Join("hostile", name+".json"))
			if strings.HasPrefix(name, "manifest-") {
				put(t, s, manifest.ManifestKey, data)
				_, _, err := manifest.Load(ctx, s)
				wantErr(t, err, manifest.ErrInvalid, manifest.ManifestKey, field)
				return
			}
			put(t, s, m.Bases[0].FileList, data)
			_, err := manifest.LoadFileList(ctx, s, m, m.Bases[0])
			wantErr(t, err, manifest.ErrInvalid, m.Bases[0].FileList, field)
		})
	}
}

// TestGoldenPassesLoad checks that the golden files pass through the
// store, so that TestHostile's refusals come from what each file changes.
func TestGoldenPassesLoad(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	put(t, s, manifest.ManifestKey, readGolden(t, "manifest.json"))
	m, etag, err := manifest.Load(ctx, s)
	if err != nil || etag == "" {
		t.Fatalf("Load of the golden manifest: %v, etag %q", err, etag)
	}
	put(t, s, m.Bases[0].FileList, readGolden(t, "files.json"))
	if _, err := manifest.LoadFileList(ctx, s, m, m.Bases[0]); err != nil {
		t.Fatal(err)
	}
}

// TestTooManyEntries checks the count limits, which would make files too
// large to keep in testdata.
func TestTooManyEntries(t *testing.T) {
	t.Parallel()
	m := goldenManifest(t)
	for id := uint32(3); len(m.Timelines) <= manifest.MaxEntries; id++ {
		m.Timelines = append(m.Timelines, manifest.Timeline{ID: id})
	}
	wantErr(t, m.Validate(), manifest.ErrInvalid, "invalid timelines", "100001 entries")

	m = goldenManifest(t)
	for len(m.Holes) <= manifest.MaxEntries {
		n := uint64(len(m.Holes))
		m.Holes = append(m.Holes, manifest.Hole{Timeline: 1, From: 10000 + n, To: 10000 + n, Reason: "x"})
	}
	wantErr(t, m.Validate(), manifest.ErrInvalid, "invalid holes")

	fl := &manifest.FileList{Format: 1, Identity: "id", Timeline: 1, Files: make([]manifest.File, manifest.MaxFiles+1)}
	err := fl.Validate()
	wantErr(t, err, manifest.ErrInvalid, "invalid files", "1000001 entries")
}

// TestValidationErrorField checks that a caller can get at the field.
func TestValidationErrorField(t *testing.T) {
	_, err := manifest.Parse(readGolden(t, "hostile/manifest-backward-hole.json"))
	var ve *manifest.ValidationError
	if !errors.As(err, &ve) || ve.Field != "holes[0].from" {
		t.Fatalf("error %v is not a *ValidationError for holes[0].from", err)
	}
	if want := "invalid holes[0].from: from 3500 is after to 3001"; ve.Error() != want {
		t.Errorf("message = %q", ve.Error())
	}
}

// TestGoldenManifestCFChanges pins the fields of column family changes:
// the golden file must decode to these values and encode back to the same
// bytes. A manifest without changes has no such field (TestGoldenManifest),
// so that older builds read it.
func TestGoldenManifestCFChanges(t *testing.T) {
	data := readGolden(t, "manifest-cfchanges.json")
	m, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	want := []manifest.ColumnFamilyChange{
		{Timeline: 1, After: 1500, Op: manifest.CFCreate, ID: 3, Name: "roomid_pduleaves",
			Options:  "compaction_style=kCompactionStyleUniversal;write_buffer_size=4194304;merge_operator=nullptr",
			Detected: date("2025-03-01T11:00:00Z")},
		{Timeline: 2, After: 6200, Op: manifest.CFDrop, ID: 3, Name: "roomid_pduleaves", Detected: date("2025-03-04T01:00:00Z")},
	}
	if !reflect.DeepEqual(m.ColumnFamilyChanges, want) {
		t.Fatalf("golden changes decode to\n%+v\nwant\n%+v", m.ColumnFamilyChanges, want)
	}
	assertEncodesTo(t, context.Background(), m, data)
}

// TestGoldenManifestEncrypted pins the encryption field of format 3: the
// key ids of an encrypted archive; builds that predate it refuse the
// format. AddKeyID adds an id once and raises the format.
func TestGoldenManifestEncrypted(t *testing.T) {
	data := readGolden(t, "manifest-encrypted.json")
	m, err := manifest.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Encrypted() || m.Format != manifest.FormatEncrypted ||
		!reflect.DeepEqual(m.Encryption.KeyIDs, []string{"3f2a0c9e41b7d685", "9c01e2f3a4b5c6d7"}) ||
		m.Encryption.ArchiveID != "5f1c2a7e9b0d4c3e8a6f1b2d3c4e5f60" {
		t.Fatalf("golden encrypted manifest decodes to format %d, %+v", m.Format, m.Encryption)
	}
	assertEncodesTo(t, context.Background(), m, data)

	plain, err := manifest.Parse(readGolden(t, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Encrypted() {
		t.Fatal("the plaintext golden manifest says it is encrypted")
	}
	if !plain.AddKeyID("3f2a0c9e41b7d685") || plain.AddKeyID("3f2a0c9e41b7d685") || !plain.AddKeyID("9c01e2f3a4b5c6d7") {
		t.Fatal("AddKeyID: an id is added once")
	}
	plain.Encryption.ArchiveID = "5f1c2a7e9b0d4c3e8a6f1b2d3c4e5f60"
	if plain.Format != manifest.FormatEncrypted {
		t.Fatalf("AddKeyID left format %d", plain.Format)
	}
	if err := plain.Validate(); err != nil {
		t.Fatal(err)
	}
	assertEncodesTo(t, context.Background(), plain, data)
}
