package catalog_test

import (
	"bytes"
	"context"
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

var ctx = context.Background()

// putSegment writes a segment of timeline tl with batches of one operation
// each, from first to next-1.
func putSegment(t *testing.T, s objstore.Store, tl uint32, first, next uint64, flags uint32) {
	t.Helper()
	var buf bytes.Buffer
	w, err := segments.NewWriter(&buf, segments.Header{Codec: segments.CodecZstd, Timeline: uint64(tl), FirstSeq: first, Flags: flags}, segments.WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for seq := first; seq < next; seq++ {
		d := make([]byte, 12, 20)
		binary.LittleEndian.PutUint64(d, seq)
		binary.LittleEndian.PutUint32(d[8:], 1)
		if err := w.Append(segments.Batch{Seq: seq, Count: 1, Time: time.Unix(int64(seq), 0), Data: append(d, "payload!"...)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, manifest.SegmentKey(tl, first), &buf, int64(buf.Len()), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newArchive(t *testing.T) (objstore.Store, *manifest.Manifest) {
	s, err := filestore.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := manifest.New("db", time.Now())
	m.Bases = []manifest.Base{{Timeline: 1, Sequence: 9, Time: time.Now().UTC(), FileList: manifest.FileListKey(1, 9), Size: 1, FileCount: 1}}
	m.Holes = []manifest.Hole{{Timeline: 1, From: 30, To: 49, Detected: time.Now().UTC(), Reason: "test"}}
	m.Bases = append(m.Bases, manifest.Base{Timeline: 1, Sequence: 49, Time: time.Now().UTC(), FileList: manifest.FileListKey(1, 49), Size: 1, FileCount: 1})
	if _, err := manifest.Create(ctx, s, m); err != nil {
		t.Fatal(err)
	}
	return s, m
}

// TestTimelineEnds: a segment ends where the next key starts, unless a
// recorded hole starts in between; the last one ends where its trailer
// says.
func TestTimelineEnds(t *testing.T) {
	s, m := newArchive(t)
	putSegment(t, s, 1, 10, 20, 0)
	putSegment(t, s, 1, 20, 30, 0) // then the WAL was lost: hole 30..49, base at 49
	putSegment(t, s, 1, 50, 60, 0)
	putSegment(t, s, 1, 60, 64, 0)
	segs, err := catalog.Timeline(ctx, s, m, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := [][2]uint64{{10, 20}, {20, 30}, {50, 60}, {60, 64}}
	if len(segs) != len(want) {
		t.Fatalf("%d segments, want %d", len(segs), len(want))
	}
	for i, w := range want {
		if segs[i].First != w[0] || segs[i].Next != w[1] {
			t.Errorf("segment %d: [%d, %d), want [%d, %d)", i, segs[i].First, segs[i].Next, w[0], w[1])
		}
	}
	if segs[3].Last == nil || segs[3].Last.BatchCount != 4 {
		t.Fatalf("the last segment's trailer: %+v", segs[3].Last)
	}
	st, err := catalog.ReadStatus(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	r := st.Timelines[0].Ranges
	if len(r) != 2 || r[0].From != 9 || r[0].To != 29 || r[1].From != 49 || r[1].To != 63 {
		t.Fatalf("restorable ranges %+v, want 9..29 and 49..63", r)
	}
	if st.Timelines[0].LastSequence != 63 || len(st.Timelines[0].Holes) == 0 {
		t.Fatalf("status: %+v", st.Timelines[0])
	}
	if len(st.Problems) != 2 { // the bases' file lists were never written
		t.Fatalf("problems %q: want the two missing file lists", st.Problems)
	}
}

func TestEndMarker(t *testing.T) {
	s, m := newArchive(t)
	putSegment(t, s, 1, 10, 20, 0)
	putSegment(t, s, 1, 20, 20, segments.FlagEnd)
	segs, err := catalog.Timeline(ctx, s, m, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !segs[1].End || segs[0].End {
		t.Fatalf("end flags: %v %v", segs[0].End, segs[1].End)
	}
}

func TestForeignObjects(t *testing.T) {
	s, m := newArchive(t)
	putSegment(t, s, 1, 10, 20, 0)
	s.Put(ctx, "segments/00000001/not-a-segment.seg", strings.NewReader("x"), 1, objstore.PutOptions{})
	if _, err := catalog.Timeline(ctx, s, m, 1); !errors.Is(err, manifest.ErrInvalid) || !strings.Contains(err.Error(), "not-a-segment") {
		t.Fatalf("a foreign object among the segments: %v", err)
	}
}

func TestDamagedLastSegment(t *testing.T) {
	s, m := newArchive(t)
	putSegment(t, s, 1, 10, 20, 0)
	key := manifest.SegmentKey(1, 10)
	rc, info, _ := s.Get(ctx, key, objstore.GetOptions{})
	data := make([]byte, info.Size)
	rc.Read(data)
	rc.Close()
	s.Put(ctx, key, bytes.NewReader(data[:len(data)-5]), int64(len(data)-5), objstore.PutOptions{})
	_, err := catalog.Timeline(ctx, s, m, 1)
	if !errors.Is(err, segments.ErrCorrupt) || !strings.Contains(err.Error(), key) {
		t.Fatalf("a truncated last segment: %v", err)
	}
	// A segment whose header names another first sequence than its key.
	s2, m2 := newArchive(t)
	putSegment(t, s2, 1, 10, 20, 0)
	rc, _, _ = s2.Get(ctx, key, objstore.GetOptions{})
	var whole bytes.Buffer
	whole.ReadFrom(rc)
	rc.Close()
	s2.Put(ctx, manifest.SegmentKey(1, 11), bytes.NewReader(whole.Bytes()), int64(whole.Len()), objstore.PutOptions{})
	s2.Delete(ctx, key)
	if _, err := catalog.Timeline(ctx, s2, m2, 1); !errors.Is(err, segments.ErrCorrupt) {
		t.Fatalf("a segment under another key: %v", err)
	}
}

// TestEndMarkerRangeTime: the restorable range of a timeline ended by a
// promotion ends at the last batch before the end marker, and status gives
// that batch's time (the marker itself has none).
func TestEndMarkerRangeTime(t *testing.T) {
	s, _ := newArchive(t)
	putSegment(t, s, 1, 10, 20, 0)
	putSegment(t, s, 1, 20, 30, 0)
	putSegment(t, s, 1, 30, 30, segments.FlagEnd)
	st, err := catalog.ReadStatus(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	rs := st.Timelines[0].Ranges
	if len(rs) == 0 || rs[0].To != 29 || !rs[0].ToTime.Equal(time.Unix(29, 0)) {
		t.Fatalf("ranges %+v, want one ending at 29 at %v", rs, time.Unix(29, 0))
	}
}

// TestInHole: a segment starts inside an ended hole from the hole's first
// sequence to the base that ends it; before it, after that base, and
// anywhere in an open hole, it does not.
func TestInHole(t *testing.T) {
	holes := []manifest.Hole{{Timeline: 1, From: 100, To: 200}, {Timeline: 1, From: 500, To: manifest.MaxSequence}}
	for first, want := range map[uint64]bool{99: false, 100: true, 150: true, 200: true, 201: false, 500: false, 900: false} {
		if got := catalog.InHole(first, holes); got != want {
			t.Errorf("InHole(%d) = %v, want %v", first, got, want)
		}
	}
}
