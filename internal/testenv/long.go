package testenv

import "os"

// Long reports whether the long form of the fault suite runs:
// ROCKSTREAM_LONG=1 (make fault-long). Tests raise their counts and
// durations with it; the default (make test, make fault) is the short form.
func Long() bool { return os.Getenv("ROCKSTREAM_LONG") == "1" }

// Scale returns short, or long under ROCKSTREAM_LONG=1.
func Scale[T any](short, long T) T {
	if Long() {
		return long
	}
	return short
}
