package prune

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Policy says which bases a prune keeps. At least one of its fields is
// set; a base that either keeps is kept.
type Policy struct {
	// KeepLast keeps the KeepLast newest bases of each timeline's history
	// (0: this rule is off).
	KeepLast int
	// KeepWithin keeps every base taken within this duration before now,
	// and the newest base taken before that, so that a restore reaches
	// back to now - KeepWithin (0: this rule is off).
	KeepWithin time.Duration
}

// ErrNoPolicy is a Policy with neither rule set.
var ErrNoPolicy = errors.New("no retention policy: set keep-last, keep-within, or both")

// Validate reports a policy that keeps nothing or has a negative value.
func (p Policy) Validate() error {
	switch {
	case p.KeepLast < 0:
		return fmt.Errorf("keep-last %d: want 1 or more", p.KeepLast)
	case p.KeepWithin < 0:
		return fmt.Errorf("keep-within %s: want a positive duration", FormatDuration(p.KeepWithin))
	case p.KeepLast == 0 && p.KeepWithin == 0:
		return ErrNoPolicy
	}
	return nil
}

// String describes the policy for people.
func (p Policy) String() string {
	var parts []string
	if p.KeepLast > 0 {
		parts = append(parts, fmt.Sprintf("keep the last %d base%s of each timeline", p.KeepLast, plural(p.KeepLast)))
	}
	if p.KeepWithin > 0 {
		parts = append(parts, "keep every base within "+FormatDuration(p.KeepWithin)+" and the newest one before")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", and ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// ParseDuration reads a duration as time.ParseDuration does, with days
// too: "7d", "36h", "90m", "1d12h". Negative durations are refused.
func ParseDuration(s string) (time.Duration, error) {
	var days int64
	rest := s
	i := strings.IndexByte(s, 'd')
	if i >= 0 {
		n, err := strconv.ParseInt(s[:i], 10, 64)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("duration %q: want a number of days (7d), hours (36h), minutes (90m) or a mix (1d12h)", s)
		}
		days, rest = n, s[i+1:]
	}
	var d time.Duration
	if rest != "" || i < 0 {
		var err error
		if d, err = time.ParseDuration(rest); err != nil || d < 0 {
			return 0, fmt.Errorf("duration %q: want a number of days (7d), hours (36h), minutes (90m) or a mix (1d12h)", s)
		}
	}
	return time.Duration(days)*24*time.Hour + d, nil
}

// FormatDuration writes a duration as ParseDuration reads it, in days when
// it is a whole number of them.
func FormatDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == 0:
		return "0s"
	case d%day == 0:
		return fmt.Sprintf("%dd", d/day)
	case d > day:
		return fmt.Sprintf("%dd%s", d/day, (d % day).String())
	}
	return d.String()
}
