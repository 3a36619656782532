package prune

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// usable is a base that can restore a timeline, with the index of its
// timeline's piece in that timeline's lineage.
type usable struct {
	base  manifest.Base
	piece int
}

// usableBases returns the bases that can restore timeline tl of m: those
// on tl, and those of each ancestor at or before the branch point, newest
// first (by sequence, then the later piece of the lineage).
func usableBases(m *manifest.Manifest, tl uint32) []usable {
	var out []usable
	for i, p := range m.Lineage(tl) {
		for _, b := range m.Bases {
			if b.Timeline == p.Timeline && b.Sequence <= p.To {
				out = append(out, usable{base: b, piece: i})
			}
		}
	}
	slices.SortFunc(out, func(a, b usable) int {
		return cmp.Or(cmp.Compare(b.base.Sequence, a.base.Sequence), cmp.Compare(b.piece, a.piece))
	})
	return out
}

// keepReasons applies the policy to every timeline of m and returns, by
// file list key, why each kept base is kept. A base that no timeline keeps
// is not in the map.
func keepReasons(m *manifest.Manifest, p Policy, now time.Time) map[string][]string {
	kept := map[string][]string{}
	add := func(b manifest.Base, why string) {
		if !slices.Contains(kept[b.FileList], why) {
			kept[b.FileList] = append(kept[b.FileList], why)
		}
	}
	cutoff := now.Add(-p.KeepWithin)
	for _, t := range m.Timelines {
		bases := usableBases(m, t.ID)
		if len(bases) == 0 {
			continue
		}
		add(bases[0].base, fmt.Sprintf("the newest base of timeline %d", t.ID))
		for i, u := range bases {
			if p.KeepLast > 0 && i < p.KeepLast {
				add(u.base, fmt.Sprintf("one of the %d newest bases of timeline %d", p.KeepLast, t.ID))
			}
		}
		if p.KeepWithin > 0 {
			keepWithin(bases, cutoff, p.KeepWithin, t.ID, add)
		}
	}
	return kept
}

// keepWithin keeps the bases taken at or after cutoff, and the newest base
// taken before it, so that timeline tl can be restored to any point since
// the cutoff.
func keepWithin(bases []usable, cutoff time.Time, within time.Duration, tl uint32, add func(manifest.Base, string)) {
	older := false
	for _, u := range bases {
		switch {
		case !u.base.Time.Before(cutoff):
			add(u.base, fmt.Sprintf("taken within %s", FormatDuration(within)))
		case !older:
			older = true
			add(u.base, fmt.Sprintf("the newest base of timeline %d taken before %s: restores reach back to then", tl, stamp(cutoff)))
		}
	}
}

// dropReason says why the policy drops base b.
func dropReason(b manifest.Base, p Policy, now time.Time) string {
	var parts []string
	if p.KeepLast > 0 {
		parts = append(parts, fmt.Sprintf("not one of the %d newest bases of any timeline", p.KeepLast))
	}
	if p.KeepWithin > 0 {
		parts = append(parts, fmt.Sprintf("taken %s, before %s, and a newer base from before then is kept", stamp(b.Time), stamp(now.Add(-p.KeepWithin))))
	}
	return "policy: " + strings.Join(parts, "; ")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}
