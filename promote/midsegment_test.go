package promote

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/objstore"
	"github.com/rockstream/rockstream/objstore/filestore"
	"github.com/rockstream/rockstream/segments"
)

// TestPromoteInsideSegment: a standby stopped at sequence 5, inside the
// archived segment [1..10]. Promote must refuse (the archive holds batches
// 6..10): an end marker at key 6 would cut them out of the new timeline and
// leave the old primary's next key free.
func TestPromoteInsideSegment(t *testing.T) {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := manifest.New("db-identity", time.Now())
	m.Writer = &manifest.Writer{Timeline: 1, Epoch: 3, ID: "old", Host: "primary", Since: time.Now()}
	if _, err := manifest.Create(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := segments.NewWriter(&buf, segments.Header{Timeline: 1, FirstSeq: 1}, segments.WriterOptions{})
	for seq := uint64(1); seq <= 10; seq++ {
		data := make([]byte, 12, 20)
		binary.LittleEndian.PutUint64(data, seq)
		binary.LittleEndian.PutUint32(data[8:], 1)
		if err := w.Append(segments.Batch{Seq: seq, Count: 1, Time: time.Now(), Data: append(data, "payload!"...)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := s.Put(ctx, manifest.SegmentKey(1, 1), bytes.NewReader(buf.Bytes()), int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	res, err := Promote(ctx, s, Options{Timeline: 1, Applied: 5, WriterID: "new"})
	t.Logf("promote: %+v err=%v", res, err)
	if err == nil {
		m2, _, _ := manifest.Load(ctx, s)
		segs, _ := catalog.Timeline(ctx, s, m2, 1)
		for _, sg := range segs {
			t.Logf("timeline 1 segment %s [%d,%d) end=%v", sg.Key, sg.First, sg.Next, sg.End)
		}
		// The old primary's next upload (key 11) is NOT fenced by the marker.
		if err := putSegment(t, s, 1, 11); err == nil {
			t.Logf("old primary's next segment at 11 accepted after the promotion")
		}
		t.Fatalf("BUG: promotion at 5 committed although the archive holds batches 6..10 of timeline 1 (marker %s)", res.Marker)
	}
}

// TestPromoteInsideSegmentBelowMarker: timeline 1 holds the segment [1..10]
// and then the end marker at 11 of a promotion that was cut short before
// its commit. A stopped standby at 5 must not be promoted there: its marker
// at key 6 would sit inside the archived segment, and batches 6..10 would
// be cut out of the new timeline. It is refused with ErrMoreToApply, naming
// the marker; at 10, the marker's own point, the promotion completes.
func TestPromoteInsideSegmentBelowMarker(t *testing.T) {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := manifest.New("db-identity", time.Now())
	m.Writer = &manifest.Writer{Timeline: 1, Epoch: 3, ID: "old", Host: "primary", Since: time.Now()}
	if _, err := manifest.Create(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, _ := segments.NewWriter(&buf, segments.Header{Timeline: 1, FirstSeq: 1}, segments.WriterOptions{})
	for seq := uint64(1); seq <= 10; seq++ {
		data := make([]byte, 12, 20)
		binary.LittleEndian.PutUint64(data, seq)
		binary.LittleEndian.PutUint32(data[8:], 1)
		if err := w.Append(segments.Batch{Seq: seq, Count: 1, Time: time.Now(), Data: append(data, "payload!"...)}); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	if _, err := s.Put(ctx, manifest.SegmentKey(1, 1), bytes.NewReader(buf.Bytes()), int64(buf.Len()), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}
	marker, err := Marker(1, 10, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, manifest.SegmentKey(1, 11), bytes.NewReader(marker), int64(len(marker)), objstore.PutOptions{IfNoneMatch: true}); err != nil {
		t.Fatal(err)
	}

	_, err = Promote(ctx, s, Options{Timeline: 1, Applied: 5, WriterID: "new"})
	if !errors.Is(err, ErrMoreToApply) || !strings.Contains(err.Error(), manifest.SegmentKey(1, 11)) {
		t.Fatalf("promote at 5 below the marker at 11: %v, want ErrMoreToApply naming the marker", err)
	}
	t.Logf("refused: %v", err)
	if _, err := s.Head(ctx, manifest.SegmentKey(1, 6)); !objstore.IsNotFound(err) {
		t.Fatalf("a marker was written inside the segment [1..10]: %v", err)
	}
	if m2, _, _ := manifest.Load(ctx, s); len(m2.Timelines) != 1 {
		t.Fatalf("%d timelines after the refusal", len(m2.Timelines))
	}
	res, err := Promote(ctx, s, Options{Timeline: 1, Applied: 10, WriterID: "new"})
	if err != nil || res.Branch != 10 || res.Marker != manifest.SegmentKey(1, 11) {
		t.Fatalf("promote at the marker's point: %+v, %v", res, err)
	}
}
