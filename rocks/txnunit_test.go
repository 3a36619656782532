package rocks

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"
)

// hand builds a write batch from records, with the header count given.
func hand(seq uint64, count uint32, records ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, seq)
	b = binary.LittleEndian.AppendUint32(b, count)
	for _, r := range records {
		b = append(b, r...)
	}
	return b
}

func hput(key string) []byte {
	r := []byte{tagValue, byte(len(key))}
	return append(append(r, key...), 1, 'v')
}

func cfPut(cf byte, key string) []byte {
	r := []byte{tagCFValue, cf, byte(len(key))}
	return append(append(r, key...), 1, 'v')
}

func marker(tag byte, xid string) []byte {
	if tag == tagBeginPrepare || tag == tagBeginPersistedPrepare || tag == tagBeginUnprepare || tag == tagNoop {
		return []byte{tag}
	}
	return append([]byte{tag, byte(len(xid))}, xid...)
}

// TestTxnsRecords covers what a real TransactionDB does not write on
// demand: several writers' batches in one WAL record (RocksDB's write
// groups), the other policies' markers, and malformed sections.
func TestTxnsRecords(t *testing.T) {
	var txns Txns
	prep := hand(10, 2, marker(tagBeginPrepare, ""), hput("a"), cfPut(1, "b"), marker(tagEndPrepare, "x"))
	if span, err := txns.Span(prep); err != nil || span != 0 {
		t.Fatalf("prepare: %d, %v; want 0", span, err)
	}
	// A write group: a plain writer's batch, the commit of x, another plain
	// batch, a prepare of y, all in one record whose header counts the
	// records present.
	group := hand(10, 3, hput("c"), marker(tagCommit, "x"), hput("d"),
		marker(tagBeginPrepare, ""), hput("e"), marker(tagEndPrepare, "y"))
	span, plain, ch, err := txns.step(group, true)
	if err != nil || span != 4 {
		t.Fatalf("group: %d, %v; want 4", span, err)
	}
	txns.apply(ch)
	want := hand(10, 4, hput("c"), hput("a"), cfPut(1, "b"), hput("d"))
	if string(plain) != string(want) {
		t.Fatalf("group's plain batch %x, want %x", plain, want)
	}
	if p := txns.Pending(); len(p) != 1 || p[0] != "y" {
		t.Fatalf("pending %v, want y", p)
	}
	// A rollback of an unknown transaction uses no sequence and drops
	// nothing; merge then does not bring back its prepare.
	if span, err := txns.Span(hand(14, 0, marker(tagRollback, "old"))); err != nil || span != 0 {
		t.Fatalf("unknown rollback: %d, %v", span, err)
	}
	older := Txns{open: map[string]prepared{"old": {count: 1}, "older": {count: 2}}}
	txns.merge(&older)
	if p := strings.Join(slices.Sorted(slices.Values(txns.Pending())), ","); p != "older,y" {
		t.Fatalf("pending after merge %s, want older,y", p)
	}
	if span, err := txns.Span(hand(14, 0, marker(tagCommit, "older"))); err != nil || span != 2 {
		t.Fatalf("commit of a merged prepare: %d, %v; want 2", span, err)
	}
	if _, err := txns.Span(hand(16, 0, marker(tagCommit, "nobody"))); !errors.Is(err, ErrNoPrepare) {
		t.Fatalf("commit of an unknown transaction: %v, want ErrNoPrepare", err)
	}
	lenient := Txns{lenient: true}
	if span, err := lenient.Span(hand(16, 0, marker(tagCommit, "nobody"))); err != nil || span != 0 {
		t.Fatalf("lenient commit of an unknown transaction: %d, %v", span, err)
	}
}

func TestTxnsRefuses(t *testing.T) {
	cases := []struct {
		name, want string
		err        error
		data       []byte
	}{
		{"write prepared", "WRITE_PREPARED", ErrUnsupported, hand(1, 1, marker(tagBeginPersistedPrepare, ""), hput("a"), marker(tagEndPrepare, "x"))},
		{"write unprepared", "WRITE_UNPREPARED", ErrUnsupported, hand(1, 1, marker(tagBeginUnprepare, ""), hput("a"), marker(tagEndPrepare, "x"))},
		{"end without begin", "without its begin", ErrCorrupt, hand(1, 0, marker(tagEndPrepare, "x"))},
		{"begin twice", "inside a prepared section", ErrCorrupt, hand(1, 0, marker(tagBeginPrepare, ""), marker(tagBeginPrepare, ""))},
		{"no end", "without its end", ErrCorrupt, hand(1, 1, marker(tagBeginPrepare, ""), hput("a"))},
		{"commit inside", "inside a prepared section", ErrCorrupt, hand(1, 0, marker(tagBeginPrepare, ""), marker(tagCommit, "x"))},
		{"prepared twice", "prepared again", ErrCorrupt, hand(1, 0, marker(tagBeginPrepare, ""), marker(tagEndPrepare, "x"), marker(tagBeginPrepare, ""), marker(tagEndPrepare, "x"))},
		{"deletion with timestamp", "unknown record type 0x14", ErrCorrupt, hand(1, 1, []byte{0x14, 1, 'a'})},
		{"cut xid", "bad slice", ErrCorrupt, hand(1, 0, []byte{tagCommit, 5, 'x'})},
	}
	for _, c := range cases {
		var txns Txns
		_, err := txns.Span(c.data)
		if !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v naming %q", c.name, err, c.err, c.want)
		}
		if len(txns.Pending()) != 0 {
			t.Errorf("%s: a refused batch changed the tracker", c.name)
		}
	}
	var txns Txns
	ts := append([]byte{tagCommitWithTimestamp, 1, 't'}, marker(tagCommit, "x")[1:]...)
	txns.Span(hand(1, 0, marker(tagBeginPrepare, ""), hput("a"), marker(tagEndPrepare, "x")))
	if span, err := (&Txns{open: map[string]prepared{"x": {count: 1}}}).Span(hand(1, 0, ts)); err != nil || span != 1 {
		t.Errorf("commit with timestamp: span %d, %v; want 1", span, err)
	}
	if _, _, _, err := txns.step(hand(1, 0, ts), true); !errors.Is(err, ErrUnsupported) {
		t.Errorf("applying a commit with timestamp: %v, want ErrUnsupported", err)
	}
}
