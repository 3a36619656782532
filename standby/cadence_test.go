package standby

import (
	"testing"
	"time"
)

// TestCadence checks the window in which the standby polls finely: it
// opens once two consecutive segments gave the period, around one period
// after the last arrival, and not when the period is unknown or too long.
func TestCadence(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	at := func(n int) time.Time { return t0.Add(ms(n)) }
	normal := ms(50)

	c := newCadence(ms(50), 2*time.Second) // fine 5 ms, early 15 ms, late 100 ms
	c.miss(at(0))
	c.arrived(100, 200, at(-250), at(10))
	if got := c.wait(at(20), normal); got != normal {
		t.Fatalf("one segment gives no period, yet wait %v", got)
	}
	c.miss(at(255))
	c.arrived(200, 300, at(0), at(260)) // period 250 ms, appeared in (255, 260]
	// Appeared at 257.5: the next is due at 507.5, the window opens 15 ms before.
	for _, tc := range []struct {
		now  int
		want time.Duration
	}{
		{262, ms(230) + ms(1)/2}, // sleeps until the window, through normal polls
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
