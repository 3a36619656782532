package archive_test

import (
	"context"
	"log/slog"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// lines is a slog.Handler that keeps the records with a given message.
type lines struct {
	msg string
	mu  sync.Mutex
	got []map[string]slog.Value
}

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *lines) WithGroup(string) slog.Handler            { return l }

func (l *lines) Handle(_ context.Context, r slog.Record) error {
	if r.Message != l.msg || r.Level != slog.LevelInfo {
		return nil
	}
	m := map[string]slog.Value{}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
	l.mu.Lock()
	l.got = append(l.got, m)
	l.mu.Unlock()
	return nil
}

func (l *lines) all() []map[string]slog.Value {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]slog.Value(nil), l.got...)
}

// TestSummary checks that the summary line comes every SummaryEvery, that
// its counts are per interval (they add up to the totals), and that the
// last one, at the stop, names the archived position with no lag.
func TestSummary(t *testing.T) {
	s := newStore(t)
	src := newMemSource("db-1")
	rng := rand.New(rand.NewSource(7))
	src.write(rng, 50)
	log := &lines{msg: "archive summary"}
	opts := testOptions(t, "w")
	opts.SummaryEvery, opts.Logger = 40*time.Millisecond, slog.New(log)
	r := start(t, src, s, opts)
	for range 3 {
		src.write(rng, 100)
		time.Sleep(60 * time.Millisecond)
	}
	waitFor(t, "three summary lines", func() bool { return len(log.all()) >= 3 })
	waitFor(t, "the archive to catch up", func() bool { return r.a.Stats().LastSequence == src.lastSeq() })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	st := r.a.Stats()
	var segments, walBytes int64
	got := log.all()
	for _, l := range got {
		segments += l["segments"].Int64()
		walBytes += l["wal_bytes"].Int64()
	}
	if segments != st.Segments || walBytes != st.BatchBytes {
		t.Fatalf("the summaries add up to %d segments and %d WAL bytes; the archiver counted %d and %d",
			segments, walBytes, st.Segments, st.BatchBytes)
	}
	last := got[len(got)-1]
	if seq := last["archived_sequence"].Uint64(); seq != src.lastSeq() || last["lag_sequences"].Uint64() != 0 {
		t.Fatalf("the last summary says archived %d, lag %d; the database ends at %d", seq, last["lag_sequences"].Uint64(), src.lastSeq())
	}
}

// TestSummaryOnlyAtStop checks that a negative SummaryEvery logs no
// periodic summary, only the one at the stop.
func TestSummaryOnlyAtStop(t *testing.T) {
	src := newMemSource("db-1")
	src.write(rand.New(rand.NewSource(8)), 50)
	log := &lines{msg: "archive summary"}
	opts := testOptions(t, "w")
	opts.SummaryEvery, opts.Logger = -1, slog.New(log)
	r := start(t, src, newStore(t), opts)
	waitFor(t, "the first base", func() bool { return r.a.Stats().Bases == 1 })
	time.Sleep(100 * time.Millisecond)
	if n := len(log.all()); n != 0 {
		t.Fatalf("%d summary lines while running with SummaryEvery < 0", n)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := len(log.all()); n != 1 {
		t.Fatalf("%d summary lines at the stop, want 1", n)
	}
}
