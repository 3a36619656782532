package standby

import (
	"errors"
	"testing"
	"time"

	"github.com/rockstream/rockstream/manifest"
)

// TestBranch checks which timeline a standby goes on with after a
// promotion elsewhere: timeline 2 branched from 1 at 100, timeline 3 from
// 1 at 50 (a restore that went on writing), and the writer on 2.
func TestBranch(t *testing.T) {
	now := time.Unix(1, 0)
	m := manifest.New("db", now)
	if _, err := m.AddTimeline(1, 100, now); err != nil {
		t.Fatal(err)
	}
	if _, err := m.AddTimeline(1, 50, now); err != nil {
		t.Fatal(err)
	}
	m.Writer = &manifest.Writer{Timeline: 2, Epoch: 2, ID: "w"}
	s := &Standby{m: m}
	for _, tc := range []struct {
		tl      uint32
		applied uint64
		child   uint32 // 0: stays
		err     error
	}{
		{1, 90, 2, nil},  // applies 1 up to 100, then follows 2
		{1, 100, 2, nil}, // at the branch point
		{1, 101, 2, ErrRebuild},
		{2, 500, 0, nil},       // current
		{3, 60, 0, ErrRebuild}, // not in the current history
	} {
		child, ok, err := s.branch(tc.tl, tc.applied)
		if !errors.Is(err, tc.err) || tc.err == nil && (ok != (tc.child != 0) || ok && child.ID != tc.child) {
			t.Errorf("timeline %d at %d: child %d %v, err %v; want %d, %v", tc.tl, tc.applied, child.ID, ok, err, tc.child, tc.err)
		}
	}
	m.Writer = nil // without a writer: the newest, 3
	if got := currentTimeline(m); got != 3 {
		t.Fatalf("current timeline without a writer: %d", got)
	}
	s.m.Holes = []manifest.Hole{{Timeline: 3, From: 61, To: 70, Reason: "test"}}
	if err := s.checkHole(3, 60); !errors.Is(err, ErrRebuild) {
		t.Fatalf("a hole at the next sequence: %v", err)
	}
	if err := s.checkHole(3, 70); err != nil {
		t.Fatalf("after the hole: %v", err)
	}
}
