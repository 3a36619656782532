package manifest

import (
	"errors"
	"fmt"

	"github.com/rockstream/rockstream/objstore"
)

// Errors of the package, for errors.Is.
var (
	// ErrNoArchive means that the location holds no manifest.json. It wraps
	// objstore.ErrNotFound.
	ErrNoArchive = fmt.Errorf("no archive here: %w", objstore.ErrNotFound)
	// ErrExists means that Create found a manifest already there.
	ErrExists = errors.New("an archive already exists here")
	// ErrConflict means that the manifest changed since it was loaded: load
	// it again and redo the change.
	ErrConflict = errors.New("manifest changed concurrently")
	// ErrFenced means that another writer (a higher epoch, or the same epoch
	// under another identity) holds the archive: the caller must stop
	// writing.
	ErrFenced = errors.New("fenced: another writer holds the archive")
	// ErrInvalid means that a manifest, file list, key or segment list
	// breaks a rule of the format. Errors that match it are a
	// *ValidationError, which names the field.
	ErrInvalid = errors.New("invalid archive metadata")
	// ErrNotRestorable means that no base and chain of segments reaches the
	// sequence asked for.
	ErrNotRestorable = errors.New("not restorable")
)

// ValidationError is a value that breaks a rule of the format: which field,
// and why. It matches ErrInvalid.
type ValidationError struct {
	Field  string // "bases[2].file_list", "files[0].name", "format"...
	Reason string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Reason)
}

// Is makes errors.Is(err, ErrInvalid) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// invalid returns a *ValidationError for field with a formatted reason.
func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}
