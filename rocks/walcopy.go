package rocks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// walScan is what scanning a WAL copy found.
type walScan struct {
	end     int64  // the end of its last complete record
	lastSeq uint64 // the last sequence of its last batch by batchSequences; 0: no batch
	twoPC   bool   // a batch holds two-phase-commit markers: lastSeq is not to be trusted
	// first is the sequence of its first batch (0: none), next the one
	// after its last batch by header counts (the writer's own count), and
	// gap the first sequence missing between two of its batches (0: none).
	// Meaningless with twoPC.
	first, next, gap uint64
	zstd             bool // its records are zstd frames (a SetCompressionType record said so)
}

// copyWALs copies the WAL files that recovery of m needs or checks into
// the checkpoint, newest first (see CopyCheckpoint), each cut at the end of
// its last complete record. Copies of an earlier round are replaced.
func (c *copier) copyWALs(m *Manifest) error {
	for _, w := range c.wals {
		if err := os.Remove(filepath.Join(c.dir, w.name)); err != nil {
			return fmt.Errorf("rocks: checkpoint into %s: %w", c.dir, err)
		}
	}
	c.wals = c.wals[:0]
	logs, err := listWALs(c.walDir)
	if err != nil {
		return err
	}
	start, tracked := walsNeeded(m)
	for n := range tracked {
		if !slices.ContainsFunc(logs, func(l walLog) bool { return l.num == n }) {
			return fmt.Errorf("%w: wal %d, which the manifest tracks, is in neither %s nor its archive/", errVanished, n, c.walDir)
		}
	}
	for i := len(logs) - 1; i >= 0; i-- {
		l := logs[i]
		if _, ok := tracked[l.num]; l.num < start && !ok {
			continue
		}
		w, err := c.copyWAL(l)
		if err != nil {
			return err
		}
		if synced, ok := tracked[l.num]; ok && uint64(w.size) < synced {
			return fmt.Errorf("%w: wal %s: %d bytes of complete records, shorter than the %d bytes that the manifest says were synced",
				errVanished, l.name, w.size, synced)
		}
		c.wals = append(c.wals, w)
	}
	slices.Reverse(c.wals)
	return nil
}

// walsNeeded returns the first WAL number that recovery of m replays
// (RocksDB replays from the smaller of the column families' log numbers,
// or from the min log number to keep with 2PC), and the WALs that m tracks
// with a synced size.
func walsNeeded(m *Manifest) (start uint64, tracked map[uint64]uint64) {
	start = ^uint64(0)
	for _, f := range m.Families {
		start = min(start, f.LogNumber)
	}
	if m.MinLogNumberToKeep > 0 {
		start = min(start, m.MinLogNumberToKeep)
	}
	tracked = map[uint64]uint64{}
	for _, w := range m.WALs {
		if w.Synced {
			tracked[w.Number] = w.SyncedSize
		}
	}
	return start, tracked
}

// listWALs lists the WAL files of walDir and walDir/archive, by number.
func listWALs(walDir string) ([]walLog, error) {
	var logs []walLog
	for _, d := range []string{walDir, filepath.Join(walDir, "archive")} {
		entries, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) && d != walDir {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rocks: list wal files of %s: %w", walDir, err)
		}
		for _, e := range entries {
			if n, ok := walNumber(e.Name()); ok && e.Type().IsRegular() {
				logs = append(logs, walLog{n, e.Name()})
			}
		}
	}
	slices.SortFunc(logs, func(a, b walLog) int { return cmpUint(a.num, b.num) })
	return slices.CompactFunc(logs, func(a, b walLog) bool { return a.num == b.num }), nil
}

// copyWAL copies one WAL file, from walDir or, once moved, archive/, and
// cuts the copy at the end of its last complete record.
func (c *copier) copyWAL(l walLog) (walCopy, error) {
	var in *os.File
	for _, d := range []string{c.walDir, filepath.Join(c.walDir, "archive")} {
		f, err := os.Open(filepath.Join(d, l.name))
		if err == nil {
			in = f
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return walCopy{}, fmt.Errorf("rocks: checkpoint: %w", err)
		}
	}
	if in == nil {
		return walCopy{}, fmt.Errorf("%w: wal %s is in neither %s nor its archive/", errVanished, l.name, c.walDir)
	}
	defer in.Close()
	dst := filepath.Join(c.dir, l.name)
	if _, err := copyFile(in, dst, -1); err != nil {
		return walCopy{}, fmt.Errorf("rocks: checkpoint: %w", err)
	}
	scan, err := scanWAL(dst, l.num)
	if err == nil {
		err = os.Truncate(dst, scan.end)
	}
	if err != nil {
		os.Remove(dst)
		return walCopy{}, fmt.Errorf("rocks: checkpoint: %w", err)
	}
	return walCopy{num: l.num, name: l.name, size: scan.end, lastSeq: scan.lastSeq, twoPC: scan.twoPC,
		first: scan.first, next: scan.next, gap: scan.gap}, nil
}

// scanWAL reads the WAL file at path, whose number is num, to the end of
// its last complete record.
func scanWAL(path string, num uint64) (walScan, error) {
	return scanWALFrom(path, num, walScan{})
}

// scanWALFrom goes on with s, an earlier scan of the same file (a WAL file
// only grows), reading only the records after s.end.
func scanWALFrom(path string, num uint64, s walScan) (walScan, error) {
	f, err := os.Open(path)
	if err != nil {
		return walScan{}, err
	}
	defer f.Close()
	lr := newLogReader(f, path, num, walMaxRecord)
	if s.end > 0 {
		lr.seek(s.end)
		lr.zstd = s.zstd
	}
	for {
		rec, ok, err := lr.next()
		if err != nil {
			return walScan{}, fmt.Errorf("read wal %w", err)
		}
		if !ok {
			s.end, s.zstd = lr.End(), lr.zstd
			return s, nil
		}
		if len(rec) < headerSize {
			return walScan{}, fmt.Errorf("read wal %s at offset %d: %w: a record of %d bytes, shorter than a write batch header",
				path, lr.recOff, ErrCorrupt, len(rec))
		}
		seq := binary.LittleEndian.Uint64(rec)
		b, walked := walBatch(rec)
		if n := batchSequences(rec, b, walked); n > 0 {
			s.lastSeq = max(s.lastSeq, seq+n-1)
		}
		s.twoPC = s.twoPC || walked && b.twoPC
		switch {
		case s.first == 0:
			s.first = seq
		case seq != s.next && s.gap == 0:
			s.gap = s.next
		}
		s.next = seq + uint64(binary.LittleEndian.Uint32(rec[8:]))
	}
}

// batchSequences is the number of sequence numbers that recovery gives the
// write batch data when it replays it: the count of its header, less its
// empty range deletions (begin == end), which recovery's MemTableInserter
// applies without taking a sequence (db/write_batch.cc, DeleteRangeCF;
// TestPrimaryEmptyDeleteRange). b is walBatch's scan of data; a batch that
// could not be walked (walked false: a record type that a replay refuses)
// counts its header's count.
//
// This is exact for the batches of a plain DB and of a TransactionDB with
// WRITE_COMMITTED, whose 2PC markers take no sequence (copier.txnSequence
// counts those with Txns); WRITE_PREPARED and WRITE_UNPREPARED batches
// (seq_per_batch) are not counted right.
func batchSequences(data []byte, b batchScan, walked bool) uint64 {
	count := uint64(binary.LittleEndian.Uint32(data[8:]))
	if !walked || uint64(b.emptyRanges) > count {
		return count
	}
	return count - uint64(b.emptyRanges)
}

// walBatch scans a batch of a WAL file (scanBatch) for what a checkpoint
// needs of it, without the limits of a database: every column family id
// and merge is taken.
func walBatch(data []byte) (batchScan, bool) {
	b, err := scanBatch(data, anyFamily, anyFamily)
	return b, err == nil
}

func anyFamily(uint32) bool { return true }

// sequence is the last sequence that recovery of the checkpoint reaches:
// that of the MANIFEST, or the end of the last batch of the WAL copies.
//
// It fails with ErrUnflushed when the WAL copies are not one unbroken run
// of batches from right after what the SST files hold: sequences written
// without the WAL (WriteOptions.disableWAL) that no flush has put into SST
// files yet. Those writes are only in the writer's memtables; a checkpoint
// now would open at a later sequence without them.
func (c *copier) sequence(manifestSeq uint64) (uint64, error) {
	seq := manifestSeq
	twoPC := false
	for _, w := range c.wals {
		seq = max(seq, w.lastSeq)
		twoPC = twoPC || w.twoPC
	}
	if !twoPC {
		return seq, c.unbroken(manifestSeq)
	}
	last, err := c.txnSequence(manifestSeq)
	return max(manifestSeq, last), err
}

// unbroken checks, by header counts, that the batches of the WAL copies
// (oldest first) follow each other without a missing sequence, from at
// most right after manifestSeq.
func (c *copier) unbroken(manifestSeq uint64) error {
	var next uint64 // where the next batch must start; 0: no batch yet
	for _, w := range c.wals {
		if w.first == 0 {
			continue
		}
		switch {
		case next == 0 && w.first > manifestSeq+1:
			return c.unflushed(manifestSeq+1, w.first-1, w.name)
		case next != 0 && w.first != next:
			return c.unflushed(next, w.first-1, w.name)
		case w.gap != 0:
			return c.unflushed(w.gap, 0, w.name)
		}
		next = w.next
	}
	return nil
}

// unflushed is the ErrUnflushed of a checkpoint whose WAL lacks the
// sequences from..to (to 0: not known) before or in the WAL copy name.
func (c *copier) unflushed(from, to uint64, name string) error {
	what := fmt.Sprintf("sequences from %d", from)
	if to >= from {
		what = fmt.Sprintf("sequences %d..%d", from, to)
	}
	return fmt.Errorf("%w: %s of %s are in no WAL file (at %s) and not yet flushed to SST files: they were written without the WAL (WriteOptions.disableWAL), so a base taken now would lack them; a base can be taken once the writer flushes every column family",
		ErrUnflushed, what, c.dbDir, name)
}

// txnSequence reads the WAL copies again, oldest first, with a Txns: a
// prepare takes no sequence, a commit takes its prepared records too. A
// commit whose prepare is in no copy is given only its own records, as
// recovery does (it inserts nothing for a transaction it did not rebuild:
// MemTableInserter::MarkCommit, db/write_batch.cc).
func (c *copier) txnSequence(manifestSeq uint64) (uint64, error) {
	var t Txns
	var last, next uint64
	for _, w := range c.wals {
		path := filepath.Join(c.dir, w.name)
		f, err := os.Open(path)
		if err != nil {
			return 0, fmt.Errorf("rocks: checkpoint: %w", err)
		}
		lr := newLogReader(f, path, w.num, walMaxRecord)
		for {
			rec, ok, err := lr.next()
			if err != nil || !ok {
				f.Close()
				if err != nil {
					return 0, fmt.Errorf("rocks: checkpoint: read wal %w", err)
				}
				break
			}
			span, err := t.Span(rec)
			if errors.Is(err, ErrNoPrepare) {
				b, walked := walBatch(rec)
				span, err = uint32(batchSequences(rec, b, walked)), nil
			}
			if err != nil {
				f.Close()
				return 0, fmt.Errorf("rocks: checkpoint: wal %s: %w", path, err)
			}
			seq := binary.LittleEndian.Uint64(rec)
			if gapFrom := max(next, manifestSeq+1); (next != 0 || seq > manifestSeq+1) && seq > gapFrom {
				f.Close()
				return 0, c.unflushed(gapFrom, seq-1, w.name)
			}
			if span > 0 {
				last = max(last, seq+uint64(span)-1)
			}
			next = max(next, seq+uint64(span))
		}
	}
	return last, nil
}
