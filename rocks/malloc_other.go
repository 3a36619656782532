//go:build !(linux && cgo)

package rocks

// releaseMemory is glibc's malloc_trim where there is one.
func releaseMemory() {}
