package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// renice lowers the CPU priority of every thread of this process to nice
// (Linux niceness is per thread; threads started later inherit it from the
// thread that starts them). A sidecar archiver at a low priority takes only
// the CPU that the database's writer leaves: it may lag further behind
// under load, which the writer's WAL retention covers, but it never slows
// the writer down.
func renice(nice int) error {
	if nice == 0 {
		return nil
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return fmt.Errorf("--nice: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("--nice %d: %w", nice, err)
		}
	}
	return nil
}
