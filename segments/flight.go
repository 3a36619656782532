package segments

import "sync"

// Blocks in flight: with WriterOptions.Concurrency above 0, a full block is
// compressed on a goroutine of its own while Append fills the next one,
// and so is the last one, at Close; at most Concurrency at once. Only the
// compression moves: the Writer still ends every block and writes every
// block, in order, on the caller's goroutine, so the segment is the one
// that the Writer writes without Concurrency. A goroutine ends with its
// block's compression; a Writer that is dropped unclosed leaves none
// behind for long.

// testHookEncode, set by tests, runs before each block is encoded; an
// error stands for a failure of the compressor.
var testHookEncode func(index uint32) error

// job is a block in flight.
type job struct {
	bh  blockHeader
	buf []byte // room for the block header, then the records
	// Set by the goroutine before done is closed:
	out   []byte // what the block was compressed into
	block []byte // the encoded block, within out
	err   error
	done  chan struct{}
}

// handOff compresses the ended block bh, whose records are in w.buf, on a
// goroutine of its own, once fewer than Concurrency blocks are in flight
// (each holds a zstd encoder, about 8 MiB), writing those that are done,
// in order; and gives w a new buffer for the next block.
func (w *Writer) handOff(bh blockHeader) error {
	if err := w.collect(w.opts.Concurrency - 1); err != nil {
		return err
	}
	j := &job{bh: bh, buf: w.buf, done: make(chan struct{})}
	w.flight = append(w.flight, j)
	w.inFlight += int(bh.rawLen)
	w.buf = getBuf(blockHeaderSize + w.opts.BlockSize)
	go j.run(w.h.Codec)
	return nil
}

func (j *job) run(codec Codec) {
	defer close(j.done)
	j.block, j.err = encodeBlock(codec, j.bh, j.buf, &j.out)
}

// collect writes the blocks in flight that are done, oldest first, and
// stops at the first that is not, once at most limit are left.
func (w *Writer) collect(limit int) error {
	for len(w.flight) > 0 {
		j := w.flight[0]
		if len(w.flight) <= limit && !j.finished() {
			return nil
		}
		<-j.done
		w.flight[0] = nil
		w.flight = w.flight[1:]
		w.inFlight -= int(j.bh.rawLen)
		if j.err != nil {
			w.err = j.err
			return j.err
		}
		if err := w.writeBlock(j.block, j.bh); err != nil {
			return err
		}
		putBuf(j.buf)
		putBuf(j.out)
	}
	return nil
}

// drop waits for the blocks in flight and forgets them, after a failure.
func (w *Writer) drop() {
	for _, j := range w.flight {
		<-j.done
	}
	w.flight, w.inFlight = nil, 0
}

func (j *job) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// Block buffers are pooled, across Writers: a segment of 16 MiB reuses the
// few buffers of its blocks, and the next segment reuses them again,
// rather than each block allocating (and the runtime zeroing) its own.
var blockBufs sync.Pool // of *[]byte

// Pooled buffers have a capacity of minPooled to maxPooled: that of a
// block of a batch far above the block size is left to the garbage
// collector, and so are small ones, not worth the pool's trouble.
const (
	minPooled = 64 << 10
	maxPooled = 4*DefaultBlockSize + 64<<10
)

// getBuf returns a buffer of length blockHeaderSize and capacity at least
// n (the header room's bytes are not zeroed).
func getBuf(n int) []byte {
	if p, _ := blockBufs.Get().(*[]byte); p != nil {
		if cap(*p) >= n {
			return (*p)[:blockHeaderSize]
		}
		blockBufs.Put(p) // for a smaller block
	}
	return make([]byte, blockHeaderSize, max(n, blockHeaderSize))
}

// putBuf gives b back to the pool, if its size is worth it.
func putBuf(b []byte) {
	if cap(b) < minPooled || cap(b) > maxPooled {
		return
	}
	blockBufs.Put(&b)
}
