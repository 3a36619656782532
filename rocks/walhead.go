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

// WALHead is where a database's WAL ends: the newest WAL file, and in it
// the last complete batch.
type WALHead struct {
	// Sequence is the last sequence of that batch (0: none seen yet).
	Sequence uint64
	// File is the WAL file, Offset where that batch's record ends in it.
	File   string
	Offset int64
}

// headScan reads the newest WAL file from where it last stopped, for the
// end of its last complete batch.
type headScan struct {
	w   *walFile
	seq uint64
}

// Head returns the end of the database's WAL and behind, the bytes of WAL
// files between the batch that Next returns next and that end (an
// estimate where files moved to archive/ since the last listing).
//
// It costs nothing while the reader waits at the end of the newest file
// that it knows of: the head is where the reader is, or in a newer file
// that the last listing found, which Head then reads from where it last
// stopped. While the reader is behind, Head lists dir and archive/ at most
// once per walFinishedEvery and reads the newest file's new records; in
// between it returns what it found last.
func (t *WALTail) Head() (h WALHead, behind int64, err error) {
	if !t.sought || t.closed {
		return WALHead{}, 0, nil
	}
	if t.cur == nil && t.err == nil {
		if _, err := t.locate(); err != nil { // where Next will read from
			return WALHead{}, 0, err
		}
	}
	if t.cur == nil {
		return t.headAt(), 0, nil
	}
	if !t.waiting {
		if now := t.now(); t.headListed.IsZero() || now.Sub(t.headListed) >= walFinishedEvery || now.Before(t.headListed) {
			t.headListed = now
			logs, err := t.list() // archive/ too: the files between count
			if err != nil {
				return WALHead{}, 0, err
			}
			t.dirLogs = slices.Clone(logs)
		}
	}
	if err := t.scanHead(); err != nil {
		return WALHead{}, 0, err
	}
	h = t.headAt()
	return h, t.bytesTo(h), nil
}

// headAt is the head as known: the newest file's last batch as scanned, or
// the reader's position when that is further.
func (t *WALTail) headAt() WALHead {
	read := WALHead{Sequence: t.next - 1}
	if t.cur != nil {
		read.File, read.Offset = t.cur.path, t.cur.off
	}
	if hs := t.head; hs != nil && hs.seq > read.Sequence {
		return WALHead{Sequence: hs.seq, File: hs.w.path, Offset: hs.w.off}
	}
	return read
}

// scanHead reads the records that the newest WAL file of the last listing
// of dir has gained since the last look. In the file that the reader is
// in, it reads from where the reader is (never the file again from its
// start), and not at all while the reader waits at its end: the reader's
// position is the head then.
func (t *WALTail) scanHead() error {
	n := len(t.dirLogs)
	if n == 0 || t.cur == nil || t.dirLogs[n-1].num < t.cur.num {
		t.closeHead() // the reader is in the newest file that it knows of
		return nil
	}
	newest := t.dirLogs[n-1]
	same := newest.num == t.cur.num
	if same && t.waiting {
		return nil // at the end of the newest file: the reader is the head
	}
	if t.head == nil || t.head.w.num != newest.num {
		t.closeHead()
		f, path, err := t.openLog(newest)
		if err != nil || f == nil {
			return err
		}
		t.head = &headScan{w: &walFile{num: newest.num, path: path, f: f, buf: make([]byte, 0, walReadChunk)}}
	}
	if w := t.head.w; same && !w.inFrag {
		// Skip what the reader has read already: from the record that it
		// reads next (or the first fragment of the one it is in), with
		// what it knows of the file's record types.
		if from := t.cur.resumeAt(); from > w.off {
			w.off, w.recOff = from, from
			w.recycled, w.typed, w.zstd = t.cur.recycled, t.cur.typed, t.cur.zstd
		}
	}
	for {
		payload, _, res, err := t.head.w.read()
		if err != nil || res != readRecord {
			return err
		}
		if len(payload) >= headerSize {
			b := Batch{Seq: binary.LittleEndian.Uint64(payload), Count: binary.LittleEndian.Uint32(payload[8:])}
			t.head.seq = max(t.head.seq, b.Next()-1)
		}
	}
}

// resumeAt is an offset of w at which a record starts, at or before where
// the next read begins: the next physical record, or the first fragment
// of the record being put together.
func (w *walFile) resumeAt() int64 {
	if w.inFrag {
		return w.recOff
	}
	return w.off
}

func (t *WALTail) closeHead() {
	if t.head != nil {
		t.head.w.f.Close()
		t.head = nil
	}
}

// bytesTo returns the bytes of WAL files from the reader's position to h.
func (t *WALTail) bytesTo(h WALHead) int64 {
	if t.cur == nil || h.File == "" {
		return 0
	}
	hnum, _ := walNumber(filepath.Base(h.File))
	if hnum <= t.cur.num {
		return max(h.Offset-t.cur.off, 0)
	}
	n := h.Offset + max(t.size(walLog{t.cur.num, filepath.Base(t.cur.path)})-t.cur.off, 0)
	known := t.cur.num // the files of the full listing, then those only dir showed since
	for _, l := range t.newer(t.cur.num) {
		if l.num >= hnum {
			break
		}
		n, known = n+t.size(l), l.num
	}
	for _, l := range t.dirLogs {
		if l.num > known && l.num < hnum {
			n += t.size(l)
		}
	}
	return n
}

// size returns the size of a WAL file, remembered once two newer files
// exist (the writer appends to it no more); 0 when it is gone.
func (t *WALTail) size(l walLog) int64 {
	if s, ok := t.sizes[l.num]; ok {
		return s
	}
	var size int64
	for _, d := range []string{t.dir, t.archive} {
		fi, err := os.Stat(filepath.Join(d, l.name))
		if err == nil {
			size = fi.Size()
			break
		}
	}
	if n := len(t.dirLogs); n >= 2 && l.num < t.dirLogs[n-2].num {
		if t.sizes == nil {
			t.sizes = map[uint64]int64{}
		}
		for num := range t.sizes {
			if t.cur != nil && num < t.cur.num {
				delete(t.sizes, num)
			}
		}
		t.sizes[l.num] = size
	}
	return size
}

// scanDir lists the WAL files of dir (not archive/: the newest file is
// always in dir) and keeps them as dirLogs.
func (t *WALTail) scanDir() ([]walLog, error) {
	t.listings++
	d, err := os.Open(t.dir)
	if err != nil {
		return nil, fmt.Errorf("rocks: list wal files of %s: %w", t.dir, err)
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, fmt.Errorf("rocks: list wal files of %s: %w", t.dir, err)
	}
	logs := t.dirLogs[:0]
	for _, name := range names {
		if n, ok := walNumber(name); ok {
			logs = append(logs, walLog{n, name})
		}
	}
	slices.SortFunc(logs, func(a, b walLog) int { return cmpUint(a.num, b.num) })
	t.dirLogs = logs
	return logs, nil
}

// hasData says whether the WAL file name of dir holds data, or has gone
// from dir (moved to archive/ or deleted: the writer is past it too).
func (t *WALTail) hasData(name string) (bool, error) {
	fi, err := os.Stat(filepath.Join(t.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("rocks: list wal files of %s: %w", t.dir, err)
	}
	return fi.Size() > 0, nil
}
