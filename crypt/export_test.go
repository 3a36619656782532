package crypt

import "testing"

// SetRandRead replaces the source of salts until the test (or fuzz
// target) ends, so that a sealing is repeatable.
func SetRandRead(tb testing.TB, read func([]byte) (int, error)) {
	tb.Helper()
	old := randRead
	randRead = read
	tb.Cleanup(func() { randRead = old })
}
