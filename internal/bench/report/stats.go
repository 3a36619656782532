// Package report holds the benchmark's figures and writes BENCHMARKS.md:
// for each figure the median, min and max over the runs, the baseline
// measured in the same run, the ratio (run by run, then its median), the
// goal and the verdict.
package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Stats summarises the values of one figure over the runs.
type Stats struct {
	Median, Min, Max float64
	N                int
}

// Of returns the median, min and max of xs (the mean of the two middle
// values for an even count). It is zero for no values.
func Of(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stats{Median: m, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// Ratios divides a by b run by run. The runs must pair up.
func Ratios(a, b []float64) []float64 {
	out := make([]float64, 0, len(a))
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			out = append(out, a[i]/b[i])
		}
	}
	return out
}

// Percentile returns the p-th percentile (0 to 1) of sorted xs, by the
// nearest rank.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// Num formats a number with three significant digits, without exponent.
func Num(v float64) string {
	switch a := math.Abs(v); {
	case math.IsNaN(v):
		return "n/a"
	case a == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		s := fmt.Sprintf("%.3g", v)
		if strings.Contains(s, "e") {
			return fmt.Sprintf("%.4f", v)
		}
		return s
	}
}

// String is "median (min–max)", or the single value of one run.
func (s Stats) String() string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 || s.Min == s.Max {
		return Num(s.Median)
	}
	return fmt.Sprintf("%s (%s–%s)", Num(s.Median), Num(s.Min), Num(s.Max))
}
