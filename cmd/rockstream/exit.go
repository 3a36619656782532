package main

import (
	"errors"
	"strings"

	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/location"
)

// Exit codes: part of the command line's contract, listed in --help.
const (
	exitOK          = 0
	exitFailure     = 1 // any other failure
	exitUsage       = 2 // bad flags, arguments or location URL
	exitUnreachable = 3 // store unreachable, access denied or no such bucket
)

const exitCodesHelp = `EXIT CODES:
   0  success
   1  failure not listed below
   2  bad usage: a missing or malformed flag, argument or location URL
   3  the store cannot be used: unreachable, access denied, or no such bucket`

// usageError marks an error as bad usage.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

func exitCode(err error) int {
	var u usageError
	switch {
	case errors.As(err, &u), errors.Is(err, location.ErrBadURL), strings.HasPrefix(err.Error(), "No help topic"):
		return exitUsage
	case errors.Is(err, objstore.ErrUnreachable), errors.Is(err, objstore.ErrAccessDenied), errors.Is(err, objstore.ErrNoBucket):
		return exitUnreachable
	}
	return exitFailure
}
