package manifest

import (
	"reflect"
	"testing"
)

// TestMissing: a hole shows only the sequences that no range restores.
func TestMissing(t *testing.T) {
	h := func(from, to uint64) Hole { return Hole{Timeline: 1, From: from, To: to, Reason: "r"} }
	for _, c := range []struct {
		name   string
		holes  []Hole
		ranges []Range
		want   []Hole
	}{
		{"recorded with the base after it", []Hole{h(2001, 22000)}, []Range{{1000, 2000}, {22000, 30000}}, []Hole{h(2001, 21999)}},
		{"no range touches it", []Hole{h(10, 20)}, []Range{{1, 9}, {21, 30}}, []Hole{h(10, 20)}},
		{"a range inside", []Hole{h(10, 20)}, []Range{{12, 14}}, []Hole{h(10, 11), h(15, 20)}},
		{"covered whole", []Hole{h(10, 20)}, []Range{{5, 25}}, []Hole{}},
		{"two holes, one range", []Hole{h(10, 20), h(30, 40)}, []Range{{20, 30}}, []Hole{h(10, 19), h(31, 40)}},
		{"up to the largest sequence", []Hole{h(10, MaxSequence)}, []Range{{MaxSequence, MaxSequence}}, []Hole{h(10, MaxSequence-1)}},
	} {
		if got := missing(c.holes, c.ranges); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
