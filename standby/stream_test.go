package standby

import (
	"errors"
	"testing"

	"github.com/rockstream/rockstream/segments"
)

// TestStreamCheck: a batch seen again at a sequence the standby applied
// from the stream must be the same bytes (a prepare and its commit share a
// Seq, either matches); another batch there is a fork of the primary's
// history (ErrRebuild); a sequence not kept (applied from the bucket) is
// not compared. A match records the epoch that holds it.
func TestStreamCheck(t *testing.T) {
	st := &streamState{kept: []keptBatch{
		{segments.Batch{Seq: 10, Count: 2, Data: []byte("ten")}, 1},
		{segments.Batch{Seq: 12, Count: 0, Data: []byte("prepare")}, 1},
		{segments.Batch{Seq: 12, Count: 3, Data: []byte("commit")}, 1},
	}}
	for _, tc := range []struct {
		seq   uint64
		count uint32
		data  string
		fork  bool
	}{
		{10, 2, "ten", false},
		{12, 0, "prepare", false},
		{12, 3, "commit", false},
		{9, 1, "anything", false},  // before what is kept: the bucket's
		{15, 1, "anything", false}, // not kept
		{10, 2, "TEN", true},
		{10, 1, "ten", true},
		{12, 3, "other", true},
	} {
		err := st.check(tc.seq, tc.count, []byte(tc.data), 2)
		if fork := errors.Is(err, ErrRebuild); fork != tc.fork || err != nil && !fork {
			t.Errorf("check(%d, %d, %q) = %v, want a fork: %v", tc.seq, tc.count, tc.data, err, tc.fork)
		}
	}
	if st.kept[0].epoch != 2 || st.kept[2].epoch != 2 {
		t.Errorf("matches did not record the epoch that holds them: %+v", st.kept)
	}
}
