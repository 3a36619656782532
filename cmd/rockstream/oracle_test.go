package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/rockstream/rockstream/internal/testenv"
	"github.com/rockstream/rockstream/rocks"
)

// The WAL oracle: a database's history read from its WAL files by `ldb
// dump_wal` (Debian's rocksdb-tools), a reader independent of rockstream
// and of grocksdb. Replayed into a map in sequence order, it gives the
// content of the database after any batch, to compare restores with. It
// needs every WAL file since the database was created, which a writer with
// WAL_ttl_seconds keeps (in the folder and in archive/).

// oracleState is the content of the database holding exactly the batches
// that end at or before a target: the sequence it ends at and its digest.
type oracleState struct {
	Seq    uint64
	Digest rocks.Digest
}

// walOracle replays the WAL files of the database in dir and returns the
// state at each of targets, the number of batches read and the last
// sequence. It fails the test unless the batches run without a gap from
// sequence 1.
func walOracle(t *testing.T, dir string, targets []uint64) (map[uint64]oracleState, int, uint64) {
	t.Helper()
	ldb := testenv.RequireTool(t, "ldb")
	targets = slices.Sorted(slices.Values(targets))
	o := &replay{model: map[string][]byte{}, next: 1, targets: targets, states: map[uint64]oracleState{}}
	for _, wal := range walFiles(t, dir) {
		out, err := exec.Command(ldb, "dump_wal", "--walfile="+wal, "--print_value").Output()
		if err != nil {
			t.Fatalf("ldb dump_wal --walfile=%s: %v", wal, err)
		}
		sc := bufio.NewScanner(bytes.NewReader(out))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			if err := o.line(sc.Text()); err != nil {
				t.Fatalf("ldb dump_wal of %s: %v\nline: %.300s", wal, err, sc.Text())
			}
		}
	}
	o.snapshotUpTo(^uint64(0))
	return o.states, o.batches, o.next - 1
}

// walFiles lists the WAL files of dir and dir/archive in log number order.
func walFiles(t *testing.T, dir string) []string {
	t.Helper()
	live, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	old, _ := filepath.Glob(filepath.Join(dir, "archive", "*.log"))
	files := append(live, old...)
	slices.SortFunc(files, func(a, b string) int { return strings.Compare(filepath.Base(a), filepath.Base(b)) })
	if len(files) == 0 {
		t.Fatalf("no WAL files in %s", dir)
	}
	return files
}

type replay struct {
	model   map[string][]byte
	next    uint64 // the sequence the next batch must start at
	batches int
	targets []uint64 // sorted; those not yet reached
	states  map[uint64]oracleState
}

// line applies one batch of ldb's output:
// "SEQ,COUNT,BYTES,OFFSET,PUT(0) : 0xKEY : 0xVALUE DELETE(0) : 0xKEY ...".
func (o *replay) line(s string) error {
	f := strings.SplitN(s, ",", 5)
	if len(f) != 5 {
		return fmt.Errorf("not a batch")
	}
	seq, err1 := strconv.ParseUint(f[0], 10, 64)
	count, err2 := strconv.ParseUint(f[1], 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("bad sequence or count")
	}
	if seq != o.next {
		return fmt.Errorf("batch at sequence %d, want %d: the WAL files have a gap", seq, o.next)
	}
	o.snapshotUpTo(seq + count - 1)
	if err := o.apply(strings.Fields(f[4]), count); err != nil {
		return err
	}
	o.next = seq + count
	o.batches++
	return nil
}

// apply applies the operations of one batch.
func (o *replay) apply(tok []string, count uint64) error {
	var ops uint64
	for len(tok) > 0 {
		switch op := tok[0]; {
		case op == "PUT(0)" && len(tok) >= 5 && tok[1] == ":" && tok[3] == ":":
			k, v, err := unhex2(tok[2], tok[4])
			if err != nil {
				return err
			}
			o.model[string(k)] = v
			tok = tok[5:]
		case (op == "DELETE(0)" || op == "SINGLE_DELETE(0)") && len(tok) >= 3 && tok[1] == ":":
			k, _, err := unhex2(tok[2], "0x")
			if err != nil {
				return err
			}
			delete(o.model, string(k))
			tok = tok[3:]
		default:
			return fmt.Errorf("the oracle does not replay %q", op)
		}
		ops++
	}
	if ops != count {
		return fmt.Errorf("%d operations, the batch says %d", ops, count)
	}
	return nil
}

func unhex2(a, b string) ([]byte, []byte, error) {
	x, err := hex.DecodeString(strings.TrimPrefix(a, "0x"))
	if err != nil {
		return nil, nil, err
	}
	y, err := hex.DecodeString(strings.TrimPrefix(b, "0x"))
	return x, y, err
}

// snapshotUpTo records the state for each target below end, the last
// sequence of the batch about to be applied: those targets end before it.
func (o *replay) snapshotUpTo(end uint64) {
	for len(o.targets) > 0 && o.targets[0] < end {
		o.states[o.targets[0]] = oracleState{Seq: o.next - 1, Digest: modelDigest(o.model)}
		o.targets = o.targets[1:]
	}
}

// modelDigest is rocks.Digest of a database whose default column family
// holds model: sha256 over the keys in byte order and their values, each
// preceded by its length as 8 bytes big-endian.
func modelDigest(model map[string][]byte) rocks.Digest {
	h := sha256.New()
	var l [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(l[:], uint64(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	for _, k := range slices.Sorted(maps.Keys(model)) {
		field([]byte(k))
		field(model[k])
	}
	var d rocks.CFDigest
	d.Keys = uint64(len(model))
	h.Sum(d.Sum[:0])
	return rocks.Digest{"default": d}
}
