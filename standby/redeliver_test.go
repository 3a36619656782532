package standby

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/rockstream/rockstream/rocks"
)

// TestRedeliveredPrepare: a prepare uses no sequence, so the live stream
// that connects again after it, or the segment read after the stream,
// brings it again at the Seq where the database still is. The standby
// skips the same bytes there, and only there; applied twice, the prepare
// would stop it as a transaction prepared again (which the test shows
// too, so the guard is what keeps it going).
func TestRedeliveredPrepare(t *testing.T) {
	ctx := context.Background()
	db, err := rocks.OpenWritable(filepath.Join(t.TempDir(), "db"), rocks.Options{CreateIfMissing: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s := &Standby{db: db, log: quiet()}
	g := &s.pend
	g.s, g.tl, g.key = s, 1, "test"
	at := db.LatestSequence() + 1
	prep := txnBatch(at, 1, 0, prepareRec...)
	other := txnBatch(at, 1, 0, 0x09, 0x01, 1, 'b', 1, 'v', 0x0A, 1, 'y') // prepares y
	commit := txnBatch(at, 0, 1, 0x0B, 1, 'x')

	if g.redelivered(prep) {
		t.Fatal("a prepare never applied is taken as redelivered")
	}
	if err := g.add(ctx, prep); err != nil {
		t.Fatal(err)
	}
	if !g.redelivered(prep) {
		t.Fatal("the prepare just gathered, brought again, is not taken as redelivered")
	}
	if err := g.apply(ctx); err != nil {
		t.Fatal(err)
	}
	if !g.redelivered(prep) {
		t.Fatal("the prepare just applied, brought again, is not taken as redelivered")
	}
	if g.redelivered(other) {
		t.Fatal("another transaction's prepare at the same Seq is taken as redelivered")
	}
	// Without the guard: the same prepare applied again is refused.
	if _, err := db.ApplyBatches([][]byte{prep.Data}); !errors.Is(err, rocks.ErrCorrupt) {
		t.Fatalf("the prepare applied twice: %v, want it refused as prepared again", err)
	}
	if err := g.add(ctx, commit); err != nil {
		t.Fatal(err)
	}
	if err := g.apply(ctx); err != nil {
		t.Fatal(err)
	}
	if got := db.LatestSequence(); got != at {
		t.Fatalf("the commit leaves the database at %d, want %d", got, at)
	}
	if g.redelivered(txnBatch(at+1, 1, 0, prepareRec...)) {
		t.Fatal("a prepare at the next Seq, after the commit, is taken as redelivered")
	}
}
