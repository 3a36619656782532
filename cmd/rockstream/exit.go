package main

import (
	"errors"
	"strings"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/crypt"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
	"github.com/rockstream/rockstream/restore"
	"github.com/rockstream/rockstream/rocks"
	"github.com/rockstream/rockstream/segments"
	"github.com/rockstream/rockstream/standby"
)

// Exit codes: part of the command line's contract, listed in --help.
const (
	exitOK          = 0
	exitFailure     = 1 // any other failure
	exitUsage       = 2 // bad flags, arguments or location URL
	exitUnreachable = 3 // store unreachable, access denied or no such bucket
	exitFenced      = 4 // another writer took over the archive
	exitCorrupt     = 5 // corrupt or inconsistent archive content, or a standby that must be rebuilt
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  failure not listed below
   2  bad usage: a missing or malformed flag, argument or location URL, or an
      encryption key file that is missing, unusable or not the archive's
   3  the store cannot be used: unreachable, access denied, or no such bucket
   4  fenced: another writer took over the archive (a promotion, or a second archiver)
   5  the archive's content is corrupt or inconsistent (a checksum, a gap, a hostile manifest),
      or a standby that must be rebuilt from an empty folder`

// usageError marks an error as bad usage.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func exitCode(err error) int {
	var u usageError
	switch {
	case errors.As(err, &u), errors.Is(err, location.ErrBadURL), strings.HasPrefix(err.Error(), "No help topic"):
		return exitUsage
	case errors.Is(err, manifest.ErrFenced), errors.Is(err, archive.ErrWriterActive):
		return exitFenced
	case errors.Is(err, manifest.ErrKeyRequired), errors.Is(err, manifest.ErrNotEncrypted), errors.Is(err, manifest.ErrWrongKey),
		errors.Is(err, crypt.ErrKeyFile), errors.As(err, new(*crypt.MissingKeyError)):
		return exitUsage
	case errors.Is(err, segments.ErrCorrupt), errors.Is(err, manifest.ErrInvalid), errors.Is(err, segments.ErrUnsupported),
		errors.Is(err, crypt.ErrTampered), errors.Is(err, crypt.ErrNotEncrypted), errors.Is(err, crypt.ErrUnknownFormat),
		errors.Is(err, restore.ErrCorrupt), errors.Is(err, standby.ErrRebuild):
		return exitCorrupt
	case errors.Is(err, objstore.ErrUnreachable), errors.Is(err, objstore.ErrAccessDenied), errors.Is(err, objstore.ErrNoBucket):
		return exitUnreachable
	case errors.Is(err, archive.ErrOtherDatabase), errors.Is(err, rocks.ErrNotDatabase),
		errors.Is(err, manifest.ErrNotRestorable), errors.Is(err, restore.ErrNotEmpty):
		return exitUsage
	}
	return exitFailure
}
