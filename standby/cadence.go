package standby

import "time"

// cadence predicts when the archiver's next segment will appear, so that
// the standby polls finely around that moment and not before it.
//
// Under a steady load the archiver seals a segment every segment age (or
// every SegmentSize bytes), so the time between two segments' starts (the
// created field of their headers, on the archiver's clock: a difference,
// so clock skew does not matter) is the time between their arrivals. When
// a segment arrives right after a GET that missed it, the standby knows
// when it appeared to within the time between those two GETs; the next
// one is due one period later. It then sleeps until shortly before that
// (early), polls every fine until a while after it (late), and then falls
// back to the normal poll and its idle backoff.
//
// A window is set only when the period is steady: two consecutive periods
// (three consecutive segments) within 25% of each other, each at most
// maxPeriod (Options.MaxPoll). One slow pair of segments (the writes
// paused) thus sets no window. Before the window it sleeps at most the
// longest of the normal delay, 4 polls (minCap) and half the period: a
// segment that comes early, when the load changed, waits at most that,
// at the cost of one GET every such interval while it waits (at a period
// of 1 s and a poll of 50 ms, one more GET per segment).
type cadence struct {
	fine, early, late time.Duration
	maxPeriod         time.Duration
	minCap            time.Duration

	created time.Time     // header time of the last segment that arrived
	next    uint64        // its trailer's next sequence
	period  time.Duration // the period before it; 0: unknown
	missed  time.Time     // start of the last GET that found nothing, since

	from, to time.Time // the window of the next segment; zero: none
}

// newCadence returns a cadence for the poll interval poll: it polls every
// poll/10 inside a window that opens 3 fine polls before the predicted
// arrival and closes 20 after it. A segment that arrives as predicted
// costs about 6 GETs: the one that finds it, the 3 or 4 misses before it
// in the window, the GET right after it that finds no next one, and one
// while waiting for the window (docs/OPERATIONS.md has the measurement).
func newCadence(poll, maxPeriod time.Duration) cadence {
	fine := max(poll/10, time.Millisecond)
	return cadence{fine: fine, early: 3 * fine, late: 20 * fine, maxPeriod: maxPeriod, minCap: 4 * poll}
}

// miss notes a GET, started at t, that found no next segment.
func (c *cadence) miss(t time.Time) { c.missed = t }

// arrived notes a segment applied whole: its first sequence, the next
// sequence after it, its header's created time, and when the GET that
// found it returned.
func (c *cadence) arrived(first, next uint64, created, at time.Time) {
	period := created.Sub(c.created)
	if c.created.IsZero() || first != c.next || period <= 0 || period > c.maxPeriod {
		period = 0 // unknown
	}
	steady := period > 0 && similar(period, c.period)
	missed := c.missed
	c.created, c.next, c.period, c.missed = created, next, period, time.Time{}
	c.from, c.to = time.Time{}, time.Time{}
	if !steady || missed.IsZero() {
		return // the period is not steady, or it was waiting: its arrival is not known
	}
	// It appeared after the last miss and before at: take the middle, but
	// no more than late/2 before at when the miss was long before (it was
	// found by the first GET of a window, or by a normal poll). A window
	// that opens too late thus opens earlier the next time.
	appeared := at.Add(-min(at.Sub(missed), c.late) / 2)
	c.from, c.to = appeared.Add(period-c.early), at.Add(period+c.late)
}

// similar reports whether period p is within 25% of the previous period
// prev (known).
func similar(p, prev time.Duration) bool {
	return prev > 0 && 4*(p-prev) <= prev && 4*(prev-p) <= prev
}

// reset forgets what it learnt (another timeline follows).
func (c *cadence) reset() {
	*c = cadence{fine: c.fine, early: c.early, late: c.late, maxPeriod: c.maxPeriod, minCap: c.minCap}
}

// idleSince returns when the archive went idle, for the backoff: the end
// of the last window once it passed without the segment (it is late, and
// likely soon), else lastNew, when the last segment came.
func (c *cadence) idleSince(lastNew time.Time) time.Time {
	if c.to.After(lastNew) {
		return c.to
	}
	return lastNew
}

// wait returns how long to sleep at now before the next GET, given the
// normal delay d: until the window when one is ahead (at most the longest
// of d, minCap and half the period), fine inside it, d otherwise.
func (c *cadence) wait(now time.Time, d time.Duration) time.Duration {
	switch {
	case c.to.IsZero() || !now.Before(c.to):
		return d
	case now.Before(c.from):
		return min(c.from.Sub(now), max(d, c.minCap, c.period/2))
	}
	return min(c.fine, d)
}
