package archive

// segBufs keeps the buffers of a few uploaded segments for the segments
// that follow. A segment's buffer is a few MiB (7 MiB for 16 MiB of WAL);
// a new one for every segment costs the runtime its zeroing and the
// kernel a page fault per 4 KiB, which took a fifth to a quarter of the
// archiver's CPU while it caught up (`make bench`, the catch-up rows'
// profiles). The archiver fills one segment while the one before it is
// compressed, sealed and uploaded, so two buffers go round; more wait in
// the upload queue only while the store is slower than the WAL.
//
// It holds at most segBufsKept buffers of at most twice the segment size
// each: a segment of one large batch leaves its buffer to the garbage
// collector. An idle archiver keeps them (at most 2 × 2 × SegmentSize,
// 64 MiB at the default size, and about 2 × 8 MiB with compressible
// WAL).
type segBufs struct {
	free    chan []byte
	maxKept int
}

const segBufsKept = 2

// firstSegmentGuess is the likely size of a segment before any was sealed:
// half the segment size when the WAL holds at least a segment's worth
// that was not read yet (WAL compresses about 2×, zstd fastest), else
// half of what it holds, at least 256 KiB. The archiver looks at the
// database's head before its first read (Run).
func (a *Archiver) firstSegmentGuess() int {
	a.mu.Lock()
	behind := a.lag.head.Bytes
	a.mu.Unlock()
	return max(256<<10, int(min(int64(a.opts.SegmentSize), max(behind, 0))/2))
}

func newSegBufs(segmentSize int) segBufs {
	return segBufs{free: make(chan []byte, segBufsKept), maxKept: 2 * segmentSize}
}

// get returns an empty buffer of capacity at least size: a kept one when
// one is large enough and not far larger (an archiver that caught up and
// now follows a slow writer seals small segments: the buffers of its
// catch-up go to the garbage collector rather than count against the
// memory limit, GOMEMLIMIT, for as long as it runs), else a new one.
func (p segBufs) get(size int) []byte {
	select {
	case b := <-p.free:
		if cap(b) >= size && cap(b) <= 2*size+segBufSlack {
			return b[:0]
		}
	default:
	}
	return make([]byte, 0, size)
}

// segBufSlack is how much larger than twice the size asked for a kept
// buffer may be and still serve.
const segBufSlack = 1 << 20

// put keeps b for a later segment, if there is room and it is not too
// large. The caller must not use b afterwards.
func (p segBufs) put(b []byte) {
	if p.free == nil || cap(b) == 0 || cap(b) > p.maxKept {
		return
	}
	select {
	case p.free <- b[:0]:
	default:
	}
}
