//go:build unix

package segments

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time that the process has used, in user and
// system mode.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
