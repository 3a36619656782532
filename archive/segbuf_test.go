package archive

import "testing"

// TestSegBufs: an uploaded segment's buffer serves the next segment when
// it is large enough; a smaller one is dropped for a new one; at most
// segBufsKept are kept, none above twice the segment size; the zero
// value (an Archiver not made by New) allocates every time. A buffer far
// larger than asked for goes too (a follower after a catch-up).
func TestSegBufs(t *testing.T) {
	p := newSegBufs(1 << 20)
	a := p.get(100 << 10)
	if cap(a) < 100<<10 || len(a) != 0 {
		t.Fatalf("get: len %d cap %d", len(a), cap(a))
	}
	a = append(a, "data"...)
	p.put(a)
	b := p.get(50 << 10)
	if &b[:1][0] != &a[:1][0] || len(b) != 0 {
		t.Fatal("the kept buffer was not reused, or not emptied")
	}
	p.put(b)
	if c := p.get(200 << 10); cap(c) < 200<<10 || &c[:1][0] == &a[:1][0] {
		t.Fatal("a kept buffer smaller than asked for was returned")
	}
	if d := p.get(10); &d[:1][0] == &a[:1][0] {
		t.Fatal("the small buffer was kept after being found too small")
	}
	for range segBufsKept + 3 {
		p.put(make([]byte, 0, 1<<20))
	}
	if len(p.free) != segBufsKept {
		t.Fatalf("%d buffers kept, want %d", len(p.free), segBufsKept)
	}
	q := newSegBufs(1 << 20)
	q.put(make([]byte, 0, 3<<20)) // a segment of one large batch
	if len(q.free) != 0 {
		t.Fatal("a buffer above twice the segment size was kept")
	}
	big := make([]byte, 0, 8<<20) // a catch-up's buffer, then a follower's small segments
	r := newSegBufs(16 << 20)
	r.put(big)
	if f := r.get(100 << 10); cap(f) > 2*(100<<10)+segBufSlack {
		t.Fatalf("a kept buffer of %d bytes served a segment of %d", cap(f), 100<<10)
	}
	var zero segBufs
	zero.put(make([]byte, 0, 10))
	if e := zero.get(10); cap(e) < 10 {
		t.Fatal("the zero value's get")
	}
}
