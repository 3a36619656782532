package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseBytes reads a size such as 16MiB, 4GiB, 512KB or 1000000.
func parseBytes(flag, s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{
		{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
		{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1},
	}
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(t, 64)
	if err != nil || n <= 0 || n*float64(mult) > 1<<50 {
		return 0, usageError{fmt.Errorf("--%s %q: want a size above zero such as 16MiB, 4GiB or 1048576", flag, s)}
	}
	return int64(n * float64(mult)), nil
}
