package standby

import (
	"testing"
	"time"
)

// TestCadence checks the window in which the standby polls finely: it
// opens once three consecutive segments gave a steady period, around one
// period after the last arrival, and not when the period is unknown or too
// long.
func TestCadence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	normal := ms(50)

	c := newCadence(ms(50), 2*time.Second) // fine 5 ms, early 15 ms, late 100 ms
	c.miss(at(-250))
	c.arrived(0, 100, at(-500), at(-240))
	if got := c.wait(at(-230), normal); got != normal {
		t.Fatalf("one segment gives no period, yet wait %v", got)
	}
	c.miss(at(0))
	c.arrived(100, 200, at(-250), at(10))
	if got := c.wait(at(20), normal); got != normal {
		t.Fatalf("one period is not yet steady, yet wait %v", got)
	}
	c.miss(at(255))
	c.arrived(200, 300, at(0), at(260)) // period 250 ms again, appeared in (255, 260]
	// Appeared at 257.5: the next is due at 507.5, the window opens 15 ms before.
	for _, tc := range []struct {
		now  int
		want time.Duration
	}{
		{262, ms(200)},          // sleeps towards the window, through normal polls, at most 4 polls
		{462, ms(30) + ms(1)/2}, // then until the window
		{492, ms(1) / 2},
		{493, ms(5)},  // inside: fine
		{609, ms(5)},  // still inside until 260+250+100
		{610, normal}, // after it: the normal poll again
	} {
		if got := c.wait(at(tc.now), normal); got != tc.want {
			t.Errorf("wait at %d ms: %v, want %v", tc.now, got, tc.want)
		}
	}

	// A segment late past its window: the idle backoff counts from the
	// window's end, not from the last arrival.
	if got := c.idleSince(at(260)); !got.Equal(at(610)) {
		t.Errorf("idle since %v, want the window's end at 610 ms", got.Sub(t0))
	}

	// Found by the first GET of the window, long after the last miss: the
	// next window opens late/2 earlier, so that it starts before the arrival.
	c.miss(at(261)) // the GET right after the last one
	c.arrived(300, 400, at(250), at(500))
	if want := at(500 - 50 + 250 - 15); !c.from.Equal(want) {
		t.Errorf("window after a first-GET hit opens at %v, want %v", c.from.Sub(t0), want.Sub(t0))
	}

	for name, f := range map[string]func(c *cadence){
		"no miss before it (a backlog)": func(c *cadence) { c.arrived(400, 500, at(500), at(760)) },
		"not consecutive":               func(c *cadence) { c.miss(at(750)); c.arrived(450, 500, at(500), at(760)) },
		"a period over the maximum":     func(c *cadence) { c.miss(at(750)); c.arrived(400, 500, at(3000), at(760)) },
		"a period of 0 (clock step)":    func(c *cadence) { c.miss(at(750)); c.arrived(400, 500, at(250), at(760)) },
		"reset":                         func(c *cadence) { c.reset() },
	} {
		cc := c
		f(&cc)
		if got := cc.wait(at(800), normal); got != normal {
			t.Errorf("%s: wait %v, want the normal %v", name, got, normal)
		}
		if got := cc.idleSince(at(760)); !got.Equal(at(760)) {
			t.Errorf("%s: idle since %v, want the last arrival", name, got.Sub(t0))
		}
	}
}

// TestCadenceNeedsSteadyPeriods: one slow pair of segments (writes that
// paused) gives a long period that the next segments do not follow: no
// window may come of it, or the standby sleeps through its normal polls
// while segments arrive. A window needs two consecutive periods within 25%
// of each other.
func TestCadenceNeedsSteadyPeriods(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	normal := ms(100)
	c := newCadence(ms(100), 2*time.Second)
	c.miss(at(-5))
	c.arrived(100, 200, at(-10), at(0))
	c.miss(at(1695))
	c.arrived(200, 300, at(1690), at(1700)) // a period of 1.7 s: the writes paused
	if got := c.wait(at(1710), normal); got != normal {
		t.Fatalf("after one slow pair: wait %v, want the normal %v", got, normal)
	}
	c.miss(at(1895))
	c.arrived(300, 400, at(1890), at(1900)) // 200 ms: not within 25% of 1.7 s
	if got := c.wait(at(1910), normal); got != normal {
		t.Fatalf("after periods of 1.7 s then 200 ms: wait %v, want the normal %v", got, normal)
	}
	c.miss(at(2105))
	c.arrived(400, 500, at(2130), at(2140)) // 240 ms: within 25% of 200 ms
	if got := c.wait(at(2150), normal); got == normal {
		t.Fatalf("after periods of 200 then 240 ms: no window")
	}
}

// TestCadenceCapsTheSleep: before the window, the standby sleeps no longer
// than the longest of the normal delay, 4 polls and half the period, so
// that a segment that comes early (the load changed) waits at most that.
func TestCadenceCapsTheSleep(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	c := newCadence(ms(50), 2*time.Second) // fine 5 ms, early 15 ms, late 100 ms
	for i, created := range []int{0, 1000, 2000} {
		c.miss(at(created + 5))
		c.arrived(uint64(100*(i+1)), uint64(100*(i+2)), at(created), at(created+10))
	}
	// The next is due at about 3007.5 ms, the window opens at 2992.5.
	if got := c.wait(at(2020), ms(50)); got != ms(500) {
		t.Errorf("far before the window: wait %v, want half the period (500ms)", got)
	}
	if got := c.wait(at(2020), ms(700)); got != ms(700) {
		t.Errorf("far before the window, backed off: wait %v, want the normal 700ms", got)
	}
	if got := c.wait(at(2900), ms(50)); got != ms(92)+ms(1)/2 {
		t.Errorf("shortly before the window: wait %v, want until it (92.5ms)", got)
	}
	// A period of 300 ms: 4 polls are longer than half of it.
	for i, created := range []int{3000, 3300, 3600} {
		c.miss(at(created + 5))
		c.arrived(uint64(100*(i+4)), uint64(100*(i+5)), at(created), at(created+10))
	}
	if got := c.wait(at(3620), ms(50)); got != ms(200) {
		t.Errorf("far before the window at a period of 300ms: wait %v, want 4 polls (200ms)", got)
	}
}
