package manifest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Limits of the format. A manifest or file list beyond them is refused as
// hostile or broken.
const (
	// Format is the version of files.json and the prune records, and of a
	// manifest.json without column family changes, that this package reads
	// and writes.
	Format = 1
	// FormatCFChanges is the version of a manifest.json that records
	// column family changes: builds that predate them refuse it by its
	// version (a manifest without changes stays at Format, readable by
	// them). This package reads both.
	FormatCFChanges = 2
	// FormatEncrypted is the version of a manifest.json of an encrypted
	// archive (Encryption set): builds that predate encryption refuse it
	// by its version rather than misread its objects. It may record column
	// family changes too.
	FormatEncrypted = 3
	// MaxSequence is the largest RocksDB sequence number (2^56-1).
	MaxSequence = 1<<56 - 1
	// MaxFileSize is the largest size of one file of a base (16 TiB).
	MaxFileSize = 16 << 40
	// MaxBaseSize is the largest total size of a base (1 EiB).
	MaxBaseSize = 1 << 60
	// MaxFiles is the largest number of files in one base.
	MaxFiles = 1_000_000
	// MaxEntries is the largest number of timelines, of bases and of holes
	// in a manifest.
	MaxEntries = 100_000
	// MaxManifestSize is the largest manifest.json that Load reads.
	MaxManifestSize = 64 << 20
	// MaxFileListSize is the largest files.json that LoadFileList reads:
	// enough for MaxFiles entries of about 250 bytes.
	MaxFileListSize = 256 << 20
)

// Manifest is the content of manifest.json: what the archive holds, apart
// from the segments, which are found by their keys.
type Manifest struct {
	// Format is the version of this document: Format (1).
	Format int `json:"format"`
	// Identity is the content of the database's IDENTITY file, trimmed of
	// surrounding white space. Every base and timeline belongs to it.
	Identity string `json:"identity"`
	// Created is when the archive was created.
	Created time.Time `json:"created"`
	// Revision is a random string that every write sets anew, so that a
	// writer can tell its own write from another's after an ambiguous
	// failure.
	Revision string `json:"revision"`
	// Timelines are the histories of the database, the first with ID 1.
	Timelines []Timeline `json:"timelines"`
	// Bases are the full copies of the database, in any order.
	Bases []Base `json:"bases"`
	// Holes are the ranges of sequences known to be missing.
	Holes []Hole `json:"holes"`
	// ColumnFamilyChanges are the column families created and dropped
	// while the database was archived, in the order they were recorded.
	// Absent when there are none, so that builds that predate them (which
	// refuse unknown fields) still read such an archive, and refuse one
	// that has them rather than restore it without them.
	ColumnFamilyChanges []ColumnFamilyChange `json:"column_family_changes,omitempty"`
	// Writer is the archiver allowed to add segments, or nil when none is.
	Writer *Writer `json:"writer,omitempty"`
	// Encryption, when set, says that every object of the archive but
	// manifest.json is encrypted (docs/ENCRYPTION.md). Absent in a
	// plaintext archive.
	Encryption *Encryption `json:"encryption,omitempty"`
}

// Encryption describes an encrypted archive.
type Encryption struct {
	// ArchiveID is a random id (32 hex digits) drawn when the archive was
	// created: the keys are bound to it (crypt.Key.Bind), so that one key
	// file used for two archives encrypts and names their objects
	// differently.
	ArchiveID string `json:"archive_id"`
	// KeyIDs are the ids (16 hex digits, crypt.ID) of the keys that its
	// objects were written with, in the order they were first used.
	KeyIDs []string `json:"key_ids"`
}

// Encrypted says whether the archive is encrypted.
func (m *Manifest) Encrypted() bool { return m.Encryption != nil }

// AddKeyID records that objects are written with the key id, marks the
// archive encrypted and raises its format to FormatEncrypted. It says
// whether the manifest changed.
func (m *Manifest) AddKeyID(id string) bool {
	if m.Encryption == nil {
		m.Encryption = &Encryption{}
	}
	m.Format = FormatEncrypted
	if slices.Contains(m.Encryption.KeyIDs, id) {
		return false
	}
	m.Encryption.KeyIDs = append(m.Encryption.KeyIDs, id)
	return true
}

// Timeline is one history of the database. A timeline with a parent holds
// the parent's batches up to Branch, then batches of its own.
type Timeline struct {
	// ID is the timeline's number, above 0; a child's is above its
	// parent's.
	ID uint32 `json:"id"`
	// Parent is the timeline it branched from, or 0 for the first.
	Parent uint32 `json:"parent"`
	// Branch is the last sequence of the parent that belongs to this
	// timeline; its own segments start at Branch+1. 0 without a parent.
	Branch uint64 `json:"branch"`
	// Created is when the timeline was created.
	Created time.Time `json:"created"`
}

// Base is a full copy of the database at one sequence.
type Base struct {
	// Timeline is the timeline the copy was taken on.
	Timeline uint32 `json:"timeline"`
	// Sequence is the exact last sequence the copy contains.
	Sequence uint64 `json:"sequence"`
	// Time is when the copy was taken.
	Time time.Time `json:"time"`
	// FileList is the key of its file list: FileListKey(Timeline, Sequence).
	FileList string `json:"file_list"`
	// Size is the total size in bytes of its files.
	Size int64 `json:"size"`
	// FileCount is the number of its files.
	FileCount int `json:"file_count"`
	// Digest, when set, is a digest of the database's logical content
	// (such as "sha256:<hex>"), to check a restore against.
	Digest string `json:"digest,omitempty"`
}

// Hole is a range of sequences of a timeline whose batches are missing
// from the archive.
type Hole struct {
	// Timeline is the timeline whose segments lack the batches.
	Timeline uint32 `json:"timeline"`
	// From and To are the first and last missing sequence, inclusive.
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
	// Detected is when the archiver noticed the hole.
	Detected time.Time `json:"detected"`
	// Reason says why the batches are missing.
	Reason string `json:"reason"`
}

// Writer is the archiver that may add segments and bases. Timeline, Epoch
// and ID identify it; Host and Since are for people.
type Writer struct {
	// Timeline is the timeline it writes.
	Timeline uint32 `json:"timeline"`
	// Epoch goes up by one at every change of writer.
	Epoch uint64 `json:"epoch"`
	// ID is unique per archiver process.
	ID string `json:"id"`
	// Host is the machine it runs on.
	Host string `json:"host"`
	// Since is when it took over.
	Since time.Time `json:"since"`
}

// New returns the manifest of a new archive of the database identity, with
// timeline 1 and no writer.
func New(identity string, now time.Time) *Manifest {
	now = now.UTC()
	return &Manifest{
		Format:    Format,
		Identity:  identity,
		Created:   now,
		Revision:  newRevision(),
		Timelines: []Timeline{{ID: 1, Created: now}},
	}
}

// Timeline returns the timeline id.
func (m *Manifest) Timeline(id uint32) (Timeline, bool) {
	for _, t := range m.Timelines {
		if t.ID == id {
			return t, true
		}
	}
	return Timeline{}, false
}

// AddTimeline adds a child of timeline parent that holds the parent's
// batches up to sequence branch, with the next free ID.
func (m *Manifest) AddTimeline(parent uint32, branch uint64, now time.Time) (Timeline, error) {
	p, ok := m.Timeline(parent)
	switch {
	case !ok:
		return Timeline{}, fmt.Errorf("add timeline: no parent timeline %d", parent)
	case p.Parent != 0 && branch < p.Branch:
		return Timeline{}, fmt.Errorf("add timeline: branch %d is before timeline %d's own branch point %d", branch, parent, p.Branch)
	case branch > MaxSequence:
		return Timeline{}, fmt.Errorf("add timeline: branch %d is beyond the largest sequence", branch)
	}
	t := Timeline{ID: m.nextTimelineID(), Parent: parent, Branch: branch, Created: now.UTC()}
	m.Timelines = append(m.Timelines, t)
	return t, nil
}

func (m *Manifest) nextTimelineID() uint32 {
	var last uint32
	for _, t := range m.Timelines {
		last = max(last, t.ID)
	}
	return last + 1
}

// Parse decodes and validates manifest.json.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := decodeStrict(data, MaxManifestSize, FormatEncrypted, &m); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// encode validates m and returns its JSON, indented, arrays never null.
func (m *Manifest) encode() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	c := *m
	c.Timelines = nonNil(c.Timelines)
	c.Bases = nonNil(c.Bases)
	c.Holes = nonNil(c.Holes)
	return marshal(&c)
}

// AddCFChange records a column family change, and raises the manifest's
// format to FormatCFChanges, which builds that predate changes refuse.
func (m *Manifest) AddCFChange(c ColumnFamilyChange) {
	m.ColumnFamilyChanges = append(m.ColumnFamilyChanges, c)
	m.Format = max(m.Format, FormatCFChanges)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func marshal(v any) ([]byte, error) {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// decodeStrict decodes one JSON object into v after checking its format
// version; unknown fields and trailing data are refused.
func decodeStrict(data []byte, limit int, newest int64, v any) error {
	if len(data) > limit {
		return invalid("size", "%d bytes, more than %d", len(data), limit)
	}
	if err := checkFormat(data, newest); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("json", "data after the object")
	}
	return nil
}

// checkFormat reads only the "format" field, so that a document of another
// version is refused by its version rather than by a field it adds: the
// versions from Format to newest are read.
func checkFormat(data []byte, newest int64) error {
	var head struct {
		Format *int64 `json:"format"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&head); err != nil {
		return jsonError(err)
	}
	switch {
	case head.Format == nil:
		return invalid("format", "missing")
	case *head.Format < Format || *head.Format > newest:
		return invalid("format", "version %d is not supported: this rockstream reads %s (upgrade it?)", *head.Format, formatsText(newest))
	}
	return nil
}

func formatsText(newest int64) string {
	if newest == Format {
		return fmt.Sprintf("format %d", Format)
	}
	return fmt.Sprintf("formats %d to %d", Format, newest)
}

func jsonError(err error) error {
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return invalid(te.Field, "%s does not fit %s", te.Value, te.Type)
	case te != nil:
		return invalid("json", "the document is %s %s, not an object", article(te.Value), te.Value)
	}
	return invalid("json", "%s", strings.TrimPrefix(err.Error(), "json: "))
}

func article(noun string) string {
	if noun != "" && strings.ContainsAny(noun[:1], "aeiou") {
		return "an"
	}
	return "a"
}

// newRevision returns 128 random bits in hex.
func newRevision() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// Piece is a stretch of a timeline's history: the sequences From to To
// (inclusive) of timeline Timeline.
type Piece struct {
	Timeline uint32
	From, To uint64
}

// Lineage returns the history of timeline tl, oldest first: each ancestor
// from its own start up to the branch point of the next, then tl's own
// sequences (To is the largest uint64). A missing ancestor ends the walk.
func (m *Manifest) Lineage(tl uint32) []Piece {
	return lineageOf(m.Timeline, tl)
}

func lineageOf(timeline func(uint32) (Timeline, bool), tl uint32) []Piece {
	var line []Piece
	hi := uint64(math.MaxUint64)
	for id := tl; id != 0; {
		t, ok := timeline(id)
		if !ok {
			break
		}
		lo := uint64(0)
		if t.Parent != 0 {
			lo = t.Branch + 1
		}
		line = append(line, Piece{Timeline: id, From: lo, To: hi})
		hi, id = t.Branch, t.Parent
	}
	slices.Reverse(line)
	return line
}
