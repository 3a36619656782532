package rocks

import (
	"os"
	"regexp"
	"sync"
)

// libraryVersion finds the version in the file name of the RocksDB shared
// library that this process has loaded (librocksdb.so.7.8.3 on Debian).
var libraryVersion = regexp.MustCompile(`librocksdb\.so\.(\d+\.\d+\.\d+)`)

var version = sync.OnceValue(func() string {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return "unknown"
	}
	if m := libraryVersion.FindSubmatch(maps); m != nil {
		return string(m[1])
	}
	return "unknown"
})

// Version is the version of the RocksDB library that this process runs
// with, from the file name of the shared library it loaded
// ("7.8.3"), or "unknown" (a static build, or no /proc).
func Version() string { return version() }
