//go:build !unix

package segments

import "time"

// cpuTime is not measured here; the benchmarks then report no cpuMB/s.
func cpuTime() time.Duration { return 0 }
