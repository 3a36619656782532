package rocks

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// WALTail reads the batches of a database's write-ahead log by reading its
// WAL files directly, in plain Go: <dir>/<number>.log and, once RocksDB has
// moved them there (WAL_ttl_seconds, WAL_size_limit_MB), <dir>/archive/<number>.log.
// It needs no RocksDB instance, so following a database costs no memtable
// and no replay: only the reads of the files.
//
// Seek positions it on the batch that starts at a sequence; Next returns
// the batches from there, each one starting exactly where the one before
// ended (Batch.Next), across WAL files too. A batch's Count is the number
// of sequences it uses, which differs from its header's for the batches of
// two-phase-commit transactions (waltxn.go): the commit of a transaction
// prepared before the first file read makes it read the older WAL files,
// once per Seek. A batch that does not is a
// *GapError (ErrGap): a WAL file that was deleted before it was read,
// writes made with disableWAL. Nothing is ever skipped silently.
//
// The newest WAL file is read as it is written: a record that the writer
// is still appending is not an error; Next returns ok=false and reads it
// again from the same offset at the next call. A file is finished once a
// WAL file with a higher number has data (or two higher files exist) and
// it was read to its end: its torn or zero-filled tail then ends it, and
// reading moves on to the next file. Whether a higher file exists takes a
// listing of the folder, which costs with the number of files in it (SST
// files too). So the WALTail keeps the WAL files of its last listing, and
// decides from them first: at the end of a file it moves on at once when
// two newer files are known, or one that has data (a stat of that one
// file); it moves to the next known file without listing while two or
// more newer ones are known (catching up, a listing per many files,
// whatever their size). Only when what it knows does not tell, at the
// live end of the newest file, does it list: when a stat of the folder
// shows that it changed since the last listing (a file was created, such
// as the writer's next WAL file: the switch is seen at the next poll), and
// at most once per walFinishedEvery otherwise; a waiting WALTail costs a
// stat per poll and one listing per walFinishedEvery, nothing more. Damage before the tail of a finished
// file is ErrCorrupt, naming the file and the offset.
//
// The file being read is kept open: on Linux an open file survives its
// move to archive/ and its deletion. Memory is bounded by a read buffer
// and the largest batch; files are never read whole.
//
// What it cannot see: the database's latest sequence. A Seek to a sequence
// that the writer flushed while no WAL file that is left holds any batch
// (an idle database without WAL retention) is reported as a gap only once
// the next batch is written; until then Next says ok=false.
//
// Supported: RocksDB's log format as of 7.x, legacy and recyclable
// records, and WAL compression (wal_compression=zstd: a SetCompressionType
// record, then records that are each one zstd frame, see walzstd.go).
// Other compression types and record types unknown to 7.8 are
// ErrUnsupported. A WALTail is used by one goroutine at a time.
type WALTail struct {
	dir     string
	archive string
	target  uint64 // the sequence that Seek asked for
	seeking bool   // no batch returned since Seek
	next    uint64 // the sequence the next batch must start at
	sought  bool   // Seek was called
	cur     *walFile
	buf     []byte // read buffer, shared by the files read in turn
	err     error  // sticky until Seek
	closed  bool
	now     func() time.Time // the clock of the rate limit of finished; tests set it
	listed  time.Time        // when finished last listed the folder
	dirMod  time.Time        // the folder's mtime at that listing
	txns    walTxns          // two-phase-commit transactions (waltxn.go)
	lastNum uint64           // the number of the WAL file of the last batch returned; 0: none since Seek
	known   []walLog         // the WAL files of the last listing of dir and archive/, by number
	empty   uint64           // a newer file found empty by a stat; 0: none
	waiting bool             // the last Next stopped at the end of the file being read

	// The head (walhead.go): the last listing of dir, the newest file's scan.
	dirLogs    []walLog
	headListed time.Time
	head       *headScan
	sizes      map[uint64]int64 // sizes of files the writer no longer appends to

	// for tests: where the last batch came from, and counters
	lastPath string
	lastOff  int64
	listings int // directory listings at the live end
	lists    int // listings of dir and archive/ (locate, advance)
	opened   int // WAL files opened for reading (not counting first-record probes)
	probes   int // first records read to locate a sequence
}

// Limits of a WALTail.
const (
	// walReadChunk is how much a WALTail reads at once: whole blocks.
	walReadChunk = 8 * walBlockSize
	// walMaxRecord bounds the size of a batch that a WALTail assembles (a
	// segment cannot hold a larger one anyway).
	walMaxRecord = 1 << 30
	// walFinishedEvery is the least time between two listings of the
	// folder while Next waits at the end of a WAL file.
	walFinishedEvery = 100 * time.Millisecond
)

// NewWALTail returns a WALTail over the WAL files in dir (a database
// directory, or its wal_dir). Call Seek before Next.
func NewWALTail(dir string) (*WALTail, error) {
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("rocks: read wal of %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("rocks: read wal of %s: not a directory", dir)
	}
	return &WALTail{dir: dir, archive: filepath.Join(dir, "archive"), now: time.Now}, nil
}

// Seek makes Next continue with the batch that starts at seq (0 is taken
// as 1): the first batch that Next returns starts exactly there. A seq that
// is inside a multi-operation batch is an error (not a gap); a seq that no
// WAL file left holds is a *GapError from Next; a seq beyond what was
// written is waited for (ok=false). Seek clears the error of an earlier
// Next. The files are looked at by Next.
func (t *WALTail) Seek(seq uint64) error {
	if t.closed {
		return fmt.Errorf("rocks: read wal of %s: %w", t.dir, ErrClosed)
	}
	t.closeFile()
	t.target, t.next, t.seeking, t.sought, t.err = max(seq, 1), max(seq, 1), true, true, nil
	t.txns, t.lastNum = walTxns{}, 0
	return nil
}

// Next returns the next batch, with a Data of its own; ok is false when no
// complete batch is there yet. An error is final until the next Seek.
func (t *WALTail) Next() (b Batch, ok bool, err error) {
	return t.nextBatch(true)
}

// NextShared is Next with a Data that may be the reader's own buffer,
// valid until the next call: the archiver copies each batch into its
// segment (and its stream) before it reads the next, and a copy per batch
// took about 8 % of its CPU while it caught up (the walsize part's profiles
// of make bench).
func (t *WALTail) NextShared() (b Batch, ok bool, err error) {
	return t.nextBatch(false)
}

// nextBatch is Next (own: a Data of the batch's own) and NextShared.
func (t *WALTail) nextBatch(own bool) (b Batch, ok bool, err error) {
	switch {
	case t.closed:
		return Batch{}, false, fmt.Errorf("rocks: read wal of %s: %w", t.dir, ErrClosed)
	case !t.sought:
		return Batch{}, false, fmt.Errorf("rocks: read wal of %s: Next before Seek", t.dir)
	case t.err != nil:
		return Batch{}, false, t.err
	}
	b, ok, err = t.read(own)
	t.waiting = err == nil && !ok
	if err != nil {
		t.err = err
		t.closeFile()
		return Batch{}, false, err
	}
	return b, ok, nil
}

// Close closes the file being read. Closing twice is harmless.
func (t *WALTail) Close() error {
	t.closeFile()
	t.closeHead()
	t.closed, t.buf = true, nil
	return nil
}

func (t *WALTail) closeFile() {
	if t.cur != nil {
		t.cur.f.Close()
		t.cur = nil
	}
}

// read is nextBatch without the bookkeeping of errors.
func (t *WALTail) read(own bool) (Batch, bool, error) {
	for {
		if t.cur == nil {
			if ok, err := t.locate(); err != nil || !ok {
				return Batch{}, false, err
			}
		}
		payload, owned, res, err := t.cur.read()
		if err != nil {
			return Batch{}, false, err
		}
		switch res {
		case readWait:
			finished, err := t.finishedNow()
			if err != nil || !finished {
				return Batch{}, false, err
			}
			t.cur.finished = true // read it again to its end, for good
		case readEnd:
			moved, err := t.advance()
			if err != nil || !moved {
				return Batch{}, false, err
			}
		case readRecord:
			b, keep, err := t.batch(payload)
			if err != nil || !keep {
				if err != nil {
					return Batch{}, false, err
				}
				continue
			}
			if own && !owned {
				b.Data = slices.Clone(payload)
			}
			t.lastPath, t.lastOff, t.lastNum = t.cur.path, t.cur.recOff, t.cur.num
			return b, true, nil
		}
	}
}

// batch checks a logical record against the sequence expected: keep is
// false for a batch that ends before the sequence sought.
func (t *WALTail) batch(payload []byte) (b Batch, keep bool, err error) {
	if len(payload) < headerSize {
		return Batch{}, false, fmt.Errorf("rocks: read wal %s at offset %d: %w: a record of %d bytes, shorter than a write batch header",
			t.cur.path, t.cur.recOff, ErrCorrupt, len(payload))
	}
	span, err := t.span(payload) // not the header's count with transactions (waltxn.go)
	if err != nil {
		return Batch{}, false, err
	}
	b = Batch{Seq: binary.LittleEndian.Uint64(payload), Count: span, Data: payload}
	if t.seeking {
		switch {
		case b.Seq < t.target && b.Next() <= t.target:
			return Batch{}, false, nil // before the sequence sought
		case b.Seq < t.target:
			return Batch{}, false, fmt.Errorf("rocks: read wal of %s from seq %d: it is inside the batch at seq %d (count %d) in %s, not at a batch boundary",
				t.dir, t.target, b.Seq, b.Count, t.cur.path)
		}
	}
	if b.Seq != t.next {
		// The batch before was in this file or the one before it: no file
		// is missing, so the sequences between were never logged.
		unlogged := !t.seeking && t.lastNum != 0 && t.lastNum+1 >= t.cur.num
		return Batch{}, false, &GapError{Dir: t.dir, Expected: t.next, Got: b.Seq, File: t.cur.path, Unlogged: unlogged}
	}
	t.seeking, t.next = false, b.Next()
	return b, true, nil
}

// locate opens the WAL file that holds the sequence sought: the newest one
// whose first batch starts at or before it (or the oldest one, where a
// batch after it means that it is gone). ok is false when there is no WAL
// file.
func (t *WALTail) locate() (ok bool, err error) {
	for range 3 { // a file that vanishes between the listing and its open: list again
		logs, err := t.list()
		if err != nil || len(logs) == 0 {
			return false, err
		}
		start, err := t.startFile(logs)
		if err != nil {
			return false, err
		}
		f, err := t.open(logs[start])
		if err != nil || f != nil {
			t.cur = f
			return f != nil, err
		}
	}
	return false, nil
}

// startFile returns the index of the newest of logs whose first batch
// starts at or before the sequence sought, else 0. The first sequences grow
// with the files' numbers, so it searches by halves (a restart behind
// thousands of small WAL files reads a dozen first records, not thousands)
// once the newest files without an intact first record (just created) are
// passed; a file in the middle without one (deleted meanwhile) makes it
// look at each file from the newest down.
func (t *WALTail) startFile(logs []walLog) (int, error) {
	hi := len(logs) - 1
	for ; hi >= 0; hi-- {
		seq, found, err := t.firstSequence(logs[hi])
		if err != nil || found && seq <= t.target {
			return hi, err
		}
		if found {
			break
		}
	}
	lo, start := 0, 0
	for hi--; lo <= hi; {
		mid := lo + (hi-lo)/2
		seq, found, err := t.firstSequence(logs[mid])
		switch {
		case err != nil:
			return 0, err
		case !found:
			return t.startFileLinear(logs[:hi+1], start)
		case seq <= t.target:
			start, lo = mid, mid+1
		default:
			hi = mid - 1
		}
	}
	return start, nil
}

// startFileLinear is startFile looking at each file from the newest down;
// start is the answer when none of logs starts at or before the target.
func (t *WALTail) startFileLinear(logs []walLog, start int) (int, error) {
	for i := len(logs) - 1; i >= 0; i-- {
		seq, found, err := t.firstSequence(logs[i])
		if err != nil {
			return 0, err
		}
		if found && seq <= t.target {
			return i, nil
		}
	}
	return start, nil
}

// advance moves from the finished current file to the next one: the next
// file of the last listing, listing again first when it knew fewer than
// two newer files (near the live end, where the writer may have created
// more since). moved is false when the files known vanished meanwhile and
// no other came (the database was deleted?): the next call tries again.
func (t *WALTail) advance() (moved bool, err error) {
	for try := range 2 {
		if try == 1 || len(t.newer(t.cur.num)) < 2 {
			if _, err := t.list(); err != nil {
				return false, err
			}
		}
		for _, l := range t.newer(t.cur.num) {
			f, err := t.open(l)
			if err != nil {
				return false, err
			}
			if f != nil {
				t.closeFile()
				t.cur = f
				return true, nil
			}
		}
	}
	return false, nil
}

// newer returns the WAL files of the last listing numbered above num.
func (t *WALTail) newer(num uint64) []walLog {
	i, found := slices.BinarySearchFunc(t.known, num, func(l walLog, n uint64) int { return cmpUint(l.num, n) })
	if found {
		i++
	}
	return t.known[i:]
}

// finishedNow says whether the writer has moved on from the current file,
// from what the last listing showed if it tells (two newer files, or one
// that has data), else from a listing when one is due.
func (t *WALTail) finishedNow() (bool, error) {
	num := t.cur.num
	switch newer := t.newer(num); {
	case len(newer) >= 2:
		return true, nil
	case len(newer) == 1 && newer[0].num != t.empty:
		data, err := t.hasData(newer[0].name)
		if err != nil || data {
			return data, err
		}
		t.empty = newer[0].num // stat it again only with a listing
	}
	if !t.listDue() {
		return false, nil
	}
	return t.finished(num)
}

// listDue says whether finished may list the folder now, and if so takes
// the time as that of the listing: when the folder changed since the last
// listing (its mtime: a file was created, moved or deleted, such as the
// writer's next WAL file; one stat, so a WAL switch is seen at the next
// poll), and at least every walFinishedEvery whatever the mtime says.
func (t *WALTail) listDue() bool {
	now := t.now()
	fi, err := os.Stat(t.dir)
	changed := err != nil || !fi.ModTime().Equal(t.dirMod)
	if !changed && !t.listed.IsZero() && now.Sub(t.listed) < walFinishedEvery && !now.Before(t.listed) {
		return false
	}
	if err == nil {
		t.dirMod = fi.ModTime()
	}
	t.listed = now
	return true
}

// finished says whether the writer has moved on from WAL file num: a file
// with a higher number holds data, or two of them exist. (RocksDB writes
// out the last buffered records of a file right after it has created the
// next one, before it writes into that one.) The newest file is always in
// dir, never in archive/, so archive/ is not listed.
func (t *WALTail) finished(num uint64) (bool, error) {
	logs, err := t.scanDir()
	if err != nil {
		return false, err
	}
	i, found := slices.BinarySearchFunc(logs, num, func(l walLog, n uint64) int { return cmpUint(l.num, n) })
	if found {
		i++
	}
	switch newer := logs[i:]; len(newer) {
	case 0:
		return false, nil
	case 1:
		if data, err := t.hasData(newer[0].name); err != nil || data {
			return data, err
		}
		// The one newer file in dir is empty: files between may have been
		// moved to archive/ meanwhile (the writer flushed more than once
		// since the last look), which ends num too.
		return t.archivedAfter(num)
	}
	return true, nil
}

// archivedAfter says whether archive/ holds a WAL file numbered above num.
func (t *WALTail) archivedAfter(num uint64) (bool, error) {
	names, err := readDirNames(t.archive)
	if err != nil {
		return false, err
	}
	for _, name := range names {
		if n, ok := walNumber(name); ok && n > num {
			return true, nil
		}
	}
	return false, nil
}

// readDirNames lists the names in dir; none when it does not exist.
func readDirNames(dir string) ([]string, error) {
	d, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rocks: list wal files of %s: %w", dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("rocks: list wal files of %s: %w", dir, err)
	}
	return names, nil
}

// walLog is a WAL file found by a listing.
type walLog struct {
	num  uint64
	name string
}

// walNumber returns the number of a WAL file's name, <number>.log.
func walNumber(name string) (uint64, bool) {
	num, ok := strings.CutSuffix(name, ".log")
	if !ok || num == "" {
		return 0, false
	}
	n, err := strconv.ParseUint(num, 10, 64)
	return n, err == nil
}

// list returns the WAL files of dir and archive/, by number, and keeps them
// as the files known. dir is listed first: RocksDB only moves files from
// dir to archive/, so a file that moves meanwhile is seen at least once.
// The files known stay exact for what advance takes from them: RocksDB
// numbers WAL files in the order it creates them, so no file can appear
// later between two that a listing showed.
func (t *WALTail) list() ([]walLog, error) {
	var logs []walLog
	for _, d := range []string{t.dir, t.archive} {
		entries, err := os.ReadDir(d)
		if errors.Is(err, fs.ErrNotExist) && d == t.archive {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("rocks: list wal files of %s: %w", t.dir, err)
		}
		for _, e := range entries {
			if n, ok := walNumber(e.Name()); ok && !e.IsDir() {
				logs = append(logs, walLog{n, e.Name()})
			}
		}
	}
	slices.SortFunc(logs, func(a, b walLog) int { return cmpUint(a.num, b.num) })
	t.known = slices.CompactFunc(logs, func(a, b walLog) bool { return a.num == b.num })
	t.lists++
	return t.known, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// openLog opens a WAL file where it is now: dir, else archive/. f is nil
// when it is in neither.
func (t *WALTail) openLog(l walLog) (f *os.File, path string, err error) {
	for _, d := range []string{t.dir, t.archive} {
		path = filepath.Join(d, l.name)
		f, err = os.Open(path)
		if err == nil {
			return f, path, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("rocks: read wal: %w", err)
		}
	}
	return nil, "", nil
}

// open opens a WAL file for reading from its start; nil when it is gone.
func (t *WALTail) open(l walLog) (*walFile, error) {
	f, path, err := t.openLog(l)
	if err != nil || f == nil {
		return nil, err
	}
	if t.buf == nil {
		t.buf = make([]byte, walReadChunk)
	}
	t.opened++
	return &walFile{num: l.num, path: path, f: f, buf: t.buf[:0]}, nil
}

// firstSequence reads the sequence of the first batch of a WAL file from
// its first physical record (a First fragment holds the batch's header
// too); found is false when the file is gone or has no intact first record
// yet.
func (t *WALTail) firstSequence(l walLog) (seq uint64, found bool, err error) {
	t.probes++
	f, path, err := t.openLog(l)
	if err != nil || f == nil {
		return 0, false, err
	}
	defer f.Close()
	return readFirstSequence(f, path, l.num)
}

// readFirstSequence reads the sequence of the first batch of the WAL file
// f, whose number is num; found is false when it has no intact first record
// yet. It reads the first physical record only (a First fragment holds the
// batch's header too), but in a compressed file, whose first batch it
// reads whole after the SetCompressionType record.
func readFirstSequence(f *os.File, path string, num uint64) (seq uint64, found bool, err error) {
	var block [walBlockSize]byte
	n, err := f.ReadAt(block[:], 0)
	if err != nil && err != io.EOF {
		return 0, false, fmt.Errorf("rocks: read wal %s: %w", path, err)
	}
	p, st, _ := parsePhysical(block[:n], walBlockSize, num)
	if st != physOK {
		return 0, false, nil
	}
	switch p.typ {
	case walFullType, walFirstType, walRecyclableFullType, walRecyclableFirstType:
	case walSetCompressionType:
		return compressedFirstSequence(f, path, num)
	default:
		return 0, false, fmt.Errorf("rocks: read wal %s: %w: its first record has type %d, unknown to RocksDB 7.8's log format", path, ErrUnsupported, p.typ)
	}
	if len(p.payload) < headerSize {
		return 0, false, fmt.Errorf("rocks: read wal %s: %w: first batch of %d bytes", path, ErrCorrupt, len(p.payload))
	}
	return binary.LittleEndian.Uint64(p.payload), true, nil
}

// compressedFirstSequence reads the first batch of the compressed WAL file
// f whole, as a live file (an incomplete record is not found yet).
func compressedFirstSequence(f *os.File, path string, num uint64) (seq uint64, found bool, err error) {
	w := &walFile{num: num, path: path, f: f, buf: make([]byte, 0, walBlockSize)}
	payload, _, res, err := w.read()
	switch {
	case err != nil:
		return 0, false, err
	case res != readRecord:
		return 0, false, nil
	case len(payload) < headerSize:
		return 0, false, fmt.Errorf("rocks: read wal %s: %w: first batch of %d bytes", path, ErrCorrupt, len(payload))
	}
	return binary.LittleEndian.Uint64(payload), true, nil
}

// physical is a physical record: a header and a payload within a block.
type physical struct {
	typ     byte
	payload []byte
	size    int // header and payload; for a physBad, 0 when the length is not plausible
}

// physStatus is what parsePhysical found at a record's offset.
type physStatus int

const (
	physOK      physStatus = iota
	physPadding            // the zeroes that fill a block's tail too short for a header
	physZero               // zeroes where a header fits: space not written (yet)
	physShort              // the file ends inside the record: being written, or torn
	physBad                // a checksum mismatch or an impossible length
	physOld                // a recycled file's record from its previous life
)

// parsePhysical parses the physical record at the start of b, which holds
// the file's bytes from the record's offset to the end of its block, or
// fewer when the file ends sooner; left is the number of bytes to the end
// of the block, at least walHeaderSize. num is the file's number, which
// recyclable records repeat. why says what is wrong with a physBad record.
func parsePhysical(b []byte, left int, num uint64) (p physical, st physStatus, why string) {
	if len(b) < walHeaderSize {
		return p, physShort, ""
	}
	length := int(binary.LittleEndian.Uint16(b[4:6]))
	p.typ = b[6]
	hdr := walHeaderSize
	recyclable := p.typ >= walRecyclableFullType && p.typ <= walRecyclableLastType
	if recyclable {
		hdr = walRecyclableHeaderSize
	}
	switch {
	case p.typ == walZeroType && length == 0 && left < walRecyclableHeaderSize:
		return p, physPadding, "" // a recyclable log pads up to 10 bytes
	case p.typ == walZeroType && length == 0:
		return p, physZero, ""
	case hdr+length > left:
		return p, physBad, fmt.Sprintf("record length %d (type %d) runs past the end of its block", length, p.typ)
	case hdr+length > len(b):
		return p, physShort, ""
	}
	p.size = hdr + length
	if crc32.Checksum(b[6:p.size], castagnoli) != unmaskCRC(binary.LittleEndian.Uint32(b)) {
		return p, physBad, fmt.Sprintf("checksum mismatch (record type %d, length %d)", p.typ, length)
	}
	if recyclable && binary.LittleEndian.Uint32(b[7:11]) != uint32(num) {
		return p, physOld, ""
	}
	p.payload = b[hdr:p.size]
	return p, physOK, ""
}

// walFile is a WAL file being read.
type walFile struct {
	num       uint64
	path      string // where it was opened; it may have moved since
	f         *os.File
	off       int64  // offset of the next physical record to read
	recOff    int64  // offset of the logical record being read
	frag      []byte // the fragments read so far of a fragmented record
	inFrag    bool
	buf       []byte // the file's bytes from bufOff on, whole blocks but at its end
	bufOff    int64
	finished  bool  // the writer has moved on: what the file holds is all it will hold
	recycled  bool  // the file's records are of the recyclable types
	typed     bool  // recycled is known: a record other than SetCompressionType was read
	zstd      bool  // the records after the first are compressed (wal_compression=zstd)
	readBytes int64 // bytes read from the file so far (tests)
}

// readResult is what walFile.read found.
type readResult int

const (
	readRecord readResult = iota // a logical record
	readWait                     // nothing complete yet; the writer may add to the file
	readEnd                      // the end of a finished file
)

// read returns the next logical record. owned says whether the payload is
// the caller's; otherwise it is valid until the next read. A file that is
// not finished stops, with readWait, at the first record that is not
// complete and intact, and reads it again at the next call; a finished
// file ends there when what follows is zeroes or nothing (a torn tail), and
// is corrupt otherwise.
func (w *walFile) read() (payload []byte, owned bool, res readResult, err error) {
	for {
		off := w.off
		left := walBlockSize - int(off%walBlockSize)
		if left < walHeaderSize { // the writer's zero padding
			w.off += int64(left)
			continue
		}
		b, err := w.blockAt(off, left)
		if err != nil {
			return nil, false, 0, err
		}
		p, st, why := parsePhysical(b, left, w.num)
		switch st {
		case physPadding:
			w.off += int64(left)
			continue
		case physOK:
		case physShort, physOld:
			if !w.finished {
				return w.wait()
			}
			return nil, false, readEnd, nil
		case physZero, physBad:
			if !w.finished {
				return w.wait()
			}
			if w.recycled {
				// What follows the last record written into a reused file
				// is its old content, cut anywhere: the end, as for RocksDB.
				return nil, false, readEnd, nil
			}
			from := off + int64(max(p.size, walHeaderSize))
			if st == physZero {
				from = off
			}
			tail, err := w.zeroesFrom(from)
			switch {
			case err != nil:
				return nil, false, 0, err
			case tail:
				return nil, false, readEnd, nil
			case st == physZero && !w.inFrag:
				// RocksDB skips a zeroed block (mmap-written files).
				w.off += int64(left)
				continue
			case st == physZero:
				why = "zeroes inside a fragmented record"
			}
			return nil, false, 0, w.corrupt(off, why)
		}
		w.off = off + int64(p.size)
		if !w.typed && p.typ != walSetCompressionType {
			w.recycled = p.typ >= walRecyclableFullType && p.typ <= walRecyclableLastType
			w.typed = true
		}
		switch p.typ {
		case walFullType, walRecyclableFullType:
			if w.inFrag && len(w.frag) > 0 {
				return nil, false, 0, w.corrupt(off, "a full record inside a fragmented one")
			}
			// An empty First fragment right before is an old writer's bug
			// that RocksDB's reader forgives.
			w.inFrag, w.frag, w.recOff = false, nil, off
			return w.record(p.payload, false)
		case walFirstType, walRecyclableFirstType:
			if w.inFrag && len(w.frag) > 0 {
				return nil, false, 0, w.corrupt(off, "a first fragment inside a fragmented record")
			}
			w.inFrag, w.frag, w.recOff = true, append([]byte(nil), p.payload...), off
		case walMiddleType, walRecyclableMiddleType:
			if !w.inFrag {
				return nil, false, 0, w.corrupt(off, "a middle fragment without a first one")
			}
			if err := w.checkSize(len(p.payload)); err != nil {
				return nil, false, 0, err
			}
			w.frag = append(w.frag, p.payload...)
		case walLastType, walRecyclableLastType:
			if !w.inFrag {
				return nil, false, 0, w.corrupt(off, "a last fragment without a first one")
			}
			if err := w.checkSize(len(p.payload)); err != nil {
				return nil, false, 0, err
			}
			rec := append(w.frag, p.payload...)
			w.inFrag, w.frag = false, nil
			return w.record(rec, true)
		case walSetCompressionType:
			if off != 0 {
				// db/log_reader.cc:262: only a file's first record.
				return nil, false, 0, w.corrupt(off, "a SetCompressionType record that is not the file's first")
			}
			if err := compressionType(w.path, off, p.payload); err != nil {
				return nil, false, 0, err
			}
			w.zstd = true
		case walZeroType:
			return nil, false, 0, w.corrupt(off, fmt.Sprintf("a record of type 0 with %d bytes", len(p.payload)))
		default:
			return nil, false, 0, fmt.Errorf("rocks: read wal %s at offset %d: %w: record type %d, unknown to RocksDB 7.8's log format (a newer RocksDB's WAL?)",
				w.path, off, ErrUnsupported, p.typ)
		}
	}
}

// record returns a logical record as read: decompressed when the file is
// compressed. owned says whether rec is the caller's already.
func (w *walFile) record(rec []byte, owned bool) ([]byte, bool, readResult, error) {
	if !w.zstd {
		return rec, owned, readRecord, nil
	}
	out, err := decompress(w.path, w.recOff, rec)
	if err != nil {
		return nil, false, 0, err
	}
	return out, true, readRecord, nil
}

// checkSize refuses to grow a fragmented record past walMaxRecord.
func (w *walFile) checkSize(more int) error {
	if len(w.frag)+more > walMaxRecord {
		return fmt.Errorf("rocks: read wal %s at offset %d: %w: a batch of more than %d bytes",
			w.path, w.recOff, ErrUnsupported, walMaxRecord)
	}
	return nil
}

// wait stops at a record that is not complete and intact yet. The bytes
// read are dropped, so that the next read reads the file again: in a
// recycled file the block can be whole already, with old records that the
// writer has yet to overwrite.
func (w *walFile) wait() ([]byte, bool, readResult, error) {
	w.buf, w.bufOff = w.buf[:0], 0
	return nil, false, readWait, nil
}

func (w *walFile) corrupt(off int64, why string) error {
	return fmt.Errorf("rocks: read wal %s at offset %d: %w: %s", w.path, off, ErrCorrupt, why)
}

// blockAt returns the file's bytes from off to the end of its block (left
// bytes on), fewer at the end of the file. It reads whole blocks, a chunk
// at a time; at the end of the file it reads again, for what the writer
// appended since.
func (w *walFile) blockAt(off int64, left int) ([]byte, error) {
	end := off + int64(left)
	if off >= w.bufOff && end <= w.bufOff+int64(len(w.buf)) {
		return w.buf[off-w.bufOff : end-w.bufOff], nil
	}
	start := off - off%walBlockSize
	n, err := w.f.ReadAt(w.buf[:cap(w.buf)], start)
	w.readBytes += int64(n)
	if err != nil && err != io.EOF {
		w.buf, w.bufOff = w.buf[:0], 0
		return nil, fmt.Errorf("rocks: read wal %s at offset %d: %w", w.path, start, err)
	}
	w.buf, w.bufOff = w.buf[:n], start
	lo, hi := min(off-start, int64(n)), min(end-start, int64(n))
	return w.buf[lo:hi], nil
}

// zeroesFrom says whether the file holds only zero bytes from off to its
// end (or nothing).
func (w *walFile) zeroesFrom(off int64) (bool, error) {
	var chunk [4096]byte
	for {
		n, err := w.f.ReadAt(chunk[:], off)
		for _, c := range chunk[:n] {
			if c != 0 {
				return false, nil
			}
		}
		if err == io.EOF || n == 0 {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("rocks: read wal %s at offset %d: %w", w.path, off, err)
		}
		off += int64(n)
	}
}
