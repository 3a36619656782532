package manifest

import (
	"fmt"
	"strings"
	"time"
)

// FileList is the content of a base's files.json: every file of the
// checkpoint and where it is stored. It is written once and never changed.
type FileList struct {
	// Format is the version of this document: Format (1).
	Format int `json:"format"`
	// Identity is the database's identity, as in the manifest.
	Identity string `json:"identity"`
	// Timeline and Sequence are the base's: the copy contains exactly the
	// batches up to Sequence of Timeline's history.
	Timeline uint32 `json:"timeline"`
	Sequence uint64 `json:"sequence"`
	// Created is when the checkpoint was taken.
	Created time.Time `json:"created"`
	// Options, when set, is the name of the RocksDB options file among
	// Files (OPTIONS-*), for a restore to open the database with.
	Options string `json:"options,omitempty"`
	// Files are the files of the checkpoint.
	Files []File `json:"files"`
}

// File is one file of a base.
type File struct {
	// Name is the file's name in the RocksDB directory (see ValidateName).
	Name string `json:"name"`
	// Size is its size in bytes.
	Size int64 `json:"size"`
	// SHA256 is the lower-case hex SHA-256 of its bytes.
	SHA256 string `json:"sha256"`
	// Key is the object that holds it: FileKey(Timeline, Sequence, Name,
	// SHA256).
	Key string `json:"key"`
}

// ParseFileList decodes and validates a files.json.
func ParseFileList(data []byte) (*FileList, error) {
	var fl FileList
	if err := decodeStrict(data, MaxFileListSize, Format, &fl); err != nil {
		return nil, err
	}
	if err := fl.Validate(); err != nil {
		return nil, err
	}
	return &fl, nil
}

// Validate checks every rule of the file list format; the error is a
// *ValidationError naming the first bad field.
func (fl *FileList) Validate() error {
	if err := fl.checkHeader(); err != nil {
		return err
	}
	names := make(map[string]int, len(fl.Files))
	var total int64
	for i, f := range fl.Files {
		if err := fl.checkFile(i, f); err != nil {
			return err
		}
		if j, dup := names[f.Name]; dup {
			return invalid(fmt.Sprintf("files[%d].name", i), "%s is also files[%d]", short(f.Name), j)
		}
		names[f.Name] = i
		if total += f.Size; total > MaxBaseSize {
			return invalid(fmt.Sprintf("files[%d].size", i), "the total passes %d", int64(MaxBaseSize))
		}
	}
	return fl.checkOptions(names)
}

func (fl *FileList) checkHeader() error {
	switch {
	case fl.Format != Format:
		return invalid("format", "version %d is not supported: this rockstream reads format %d", fl.Format, Format)
	case fl.Timeline == 0:
		return invalid("timeline", "0 (ids start at 1)")
	case fl.Sequence > MaxSequence:
		return invalid("sequence", "%d is beyond the largest sequence %d", fl.Sequence, uint64(MaxSequence))
	case len(fl.Files) < 1 || len(fl.Files) > MaxFiles:
		return invalid("files", "%d entries, not between 1 and %d", len(fl.Files), MaxFiles)
	}
	return checkText("identity", fl.Identity, 1, maxIdentityLen)
}

func (fl *FileList) checkFile(i int, f File) error {
	field := fmt.Sprintf("files[%d]", i)
	if p := nameProblem(f.Name); p != "" {
		return invalid(field+".name", "%s", p)
	}
	if f.Name == FileListName {
		return invalid(field+".name", "%q is the file list's own name", f.Name)
	}
	if f.Size < 0 || f.Size > MaxFileSize {
		return invalid(field+".size", "%d is not between 0 and %d", f.Size, int64(MaxFileSize))
	}
	if !isSHA256Hex(f.SHA256) {
		return invalid(field+".sha256", "%s is not 64 lower-case hex digits", short(f.SHA256))
	}
	want, err := FileKey(fl.Timeline, fl.Sequence, f.Name, f.SHA256)
	if err != nil {
		return invalid(field+".key", "%v", err)
	}
	return checkKey(field+".key", f.Key, want)
}

func (fl *FileList) checkOptions(names map[string]int) error {
	if fl.Options == "" {
		return nil
	}
	if !strings.HasPrefix(fl.Options, "OPTIONS-") {
		return invalid("options", "%s is not an OPTIONS-* file", short(fl.Options))
	}
	if _, ok := names[fl.Options]; !ok {
		return invalid("options", "%s is not among the files", short(fl.Options))
	}
	return nil
}

// Size is the total size of the files.
func (fl *FileList) Size() int64 {
	var n int64
	for _, f := range fl.Files {
		n += f.Size
	}
	return n
}

// Base is the manifest entry for this file list, without a digest.
func (fl *FileList) Base() Base {
	return Base{
		Timeline:  fl.Timeline,
		Sequence:  fl.Sequence,
		Time:      fl.Created,
		FileList:  FileListKey(fl.Timeline, fl.Sequence),
		Size:      fl.Size(),
		FileCount: len(fl.Files),
	}
}

// match checks that the file list is the one that base b of a manifest of
// the database identity names.
func (fl *FileList) match(identity string, b Base) error {
	switch {
	case fl.Identity != identity:
		return invalid("identity", "%s, but the manifest's is %s", short(fl.Identity), short(identity))
	case fl.Timeline != b.Timeline || fl.Sequence != b.Sequence:
		return invalid("sequence", "timeline %d sequence %d, but the base is timeline %d sequence %d",
			fl.Timeline, fl.Sequence, b.Timeline, b.Sequence)
	case len(fl.Files) != b.FileCount:
		return invalid("files", "%d files, but the base says %d", len(fl.Files), b.FileCount)
	case fl.Size() != b.Size:
		return invalid("files", "%d bytes in all, but the base says %d", fl.Size(), b.Size)
	}
	return nil
}
