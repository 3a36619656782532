//go:build linux && cgo

package rocks

// #include <malloc.h>
import "C"

// releaseMemory hands the memory that RocksDB has freed back to the
// system. glibc keeps freed memory for later allocations once it has
// raised its mmap threshold (it does after the first large free), so the
// memtables of a secondary instance that replayed the WAL would stay in the
// process's RSS after the instance is closed.
func releaseMemory() { C.malloc_trim(0) }
