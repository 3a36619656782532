package archive_test

import (
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/rockstream/rockstream/objstore/faultstore"
)

// TestBaseRetriedSoon: a base whose upload fails (a put the store refused
// after the client's retries) is tried again after RetryMax, not a whole
// BaseInterval later (24 h by default), so a store outage during a base
// does not leave the archive without a new base for a day.
func TestBaseRetriedSoon(t *testing.T) {
	fs := faultstore.New(newStore(t))
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(21))
	src.write(rng, 120)
	opts := testOptions(t, "w")
	opts.BaseInterval = time.Second
	opts.RetryMax = 20 * time.Millisecond
	r := start(t, src, fs, opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	src.write(rng, 10)
	fs.Add(faultstore.Rule{Op: faultstore.Put, KeyContains: "bases/", Nth: 1, Err: errors.New("injected: 503 SlowDown after the client's retries")})
	waitFor(t, "the base to fail", func() bool { return fs.Injected() == 1 })
	failed := time.Now()
	waitFor(t, "the base to be taken again", func() bool { return r.a.Stats().Bases == 2 })
	if d := time.Since(failed); d > 600*time.Millisecond {
		t.Fatalf("the failed base was taken again after %v, want about RetryMax (%v) and well before BaseInterval (%v)", d, opts.RetryMax, opts.BaseInterval)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}
