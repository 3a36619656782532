package stream

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// DefaultRing is the default bytes of batches a Hub keeps for clients.
const DefaultRing = 64 << 20

// heartbeatEvery is how often an idle stream carries a heartbeat.
const heartbeatEvery = 500 * time.Millisecond

// writeWait bounds a write to a client that does not read.
const writeWait = 30 * time.Second

// sendBytes bounds the batches one write of a stream gathers.
const sendBytes = 1 << 20

// Hub keeps the batches the archiver read last and serves them to
// clients. Its methods are safe for concurrent use; Publish never waits
// for a client.
type Hub struct {
	max int

	mu      sync.Mutex
	changed chan struct{} // closed at each change, then replaced
	gen     uint64        // bumped when the ring stops continuing: streams end
	ring    []Batch
	first   uint64 // the absolute index of ring[0]
	bytes   int
	tl      uint32
	epoch   uint64
	next    uint64 // what the archiver reads next
	started bool
	closed  bool

	archived, head uint64
	stats          HubStats
	// lostZero is the Seq of a batch that uses no sequence which the ring
	// dropped last (evicted, or cut off by a reset), 0 when the last one
	// dropped used sequences: a client from there would miss it.
	lostZero uint64
	identity string
}

// BatchOverhead is what a batch costs in memory besides its bytes, counted
// in the ring's and a client's budgets.
const BatchOverhead = 96

// HubStats are a Hub's counters.
type HubStats struct {
	Clients int   `json:"clients"`
	Served  int64 `json:"streams_served"`
	Batches int64 `json:"batches_sent"`
	Bytes   int64 `json:"bytes_sent"`
	// Behind counts the streams ended because their client fell behind
	// the ring (it reads the bucket, then asks again).
	Behind int64 `json:"streams_behind"`
}

// NewHub returns a Hub that keeps up to maxBytes of batches (DefaultRing
// when 0 or less).
func NewHub(maxBytes int) *Hub {
	if maxBytes <= 0 {
		maxBytes = DefaultRing
	}
	return &Hub{max: maxBytes, changed: make(chan struct{})}
}

// Start says that the archiver writes timeline tl with epoch and reads
// from sequence next. What the ring held stays only if it continues there.
func (h *Hub) Start(tl uint32, epoch, next uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started || tl != h.tl || epoch != h.epoch || next != h.next {
		h.reset()
		h.lostZero = 0
	}
	h.tl, h.epoch, h.next, h.started, h.closed = tl, epoch, next, true, false
	h.signal()
}

// reset empties the ring and ends every stream.
func (h *Hub) reset() {
	h.first += uint64(len(h.ring))
	h.ring, h.bytes = nil, 0
	h.gen++
}

// Publish adds the batch the archiver read (b.Timeline and b.Epoch are
// the Hub's). A batch that does not continue the ring, or is larger than
// MaxBatchData, ends the streams: their clients read it from the bucket.
// b.Data is copied.
func (h *Hub) Publish(seq uint64, count uint32, t time.Time, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started {
		return
	}
	if seq != h.next || len(data) > MaxBatchData {
		h.reset()
		h.next, h.lostZero = seq+uint64(count), 0
		if count == 0 {
			h.lostZero = seq
		}
		h.signal()
		return
	}
	b := Batch{Timeline: h.tl, Epoch: h.epoch, Seq: seq, Count: count, Time: t, Data: append([]byte(nil), data...)}
	h.ring = append(h.ring, b)
	h.bytes += len(data) + BatchOverhead
	h.next = b.Next()
	for len(h.ring) > 1 && h.bytes > h.max {
		e := h.ring[0]
		h.bytes -= len(e.Data) + BatchOverhead
		h.lostZero = 0
		if e.Count == 0 {
			h.lostZero = e.Seq
		}
		h.ring[0] = Batch{}
		h.ring = h.ring[1:]
		h.first++
	}
	h.signal()
}

// SetIdentity sets the identity of the archive's database: a client that
// names another is refused (409), so that a standby pointed at the stream
// of another database applies nothing of it.
func (h *Hub) SetIdentity(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.identity = id
}

// SetPosition records what the bucket holds and the database's head, for
// the heartbeats.
func (h *Hub) SetPosition(archived, head uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.archived, h.head = archived, head
}

// Close ends the streams once they sent what was published: the archiver
// stopped.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	h.signal()
}

// Stats returns the counters.
func (h *Hub) Stats() HubStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stats
}

func (h *Hub) signal() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// errGone: the ring no longer holds the position asked for.
var errGone = errors.New("gone")

// position finds the absolute index of the first batch a client from
// sequence from needs, under h.mu. A batch that uses no sequence (a
// two-phase-commit prepare) shares its Seq with the batch after it: a
// client from that Seq needs it too, so one that the ring lost makes that
// position gone.
func (h *Hub) position(from uint64) (uint64, error) {
	end := h.first + uint64(len(h.ring))
	switch {
	case from > h.next:
		return end, nil // later batches; those before from are skipped
	case from == h.lostZero:
		return 0, errGone
	case len(h.ring) == 0:
		if from < h.next {
			return 0, errGone
		}
		return end, nil
	case from < h.ring[0].Seq:
		return 0, errGone
	}
	i := sort.Search(len(h.ring), func(i int) bool { return h.ring[i].Seq >= from })
	switch {
	case i == len(h.ring) && from == h.next:
		return end, nil
	case i == len(h.ring), h.ring[i].Seq != from && (i == 0 || h.ring[i-1].Next() != from):
		return 0, errGone // from is inside a batch: not a batch boundary
	}
	return h.first + uint64(i), nil
}

// ServeHTTP serves GET /stream?timeline=T&from=S[&identity=ID]: the batches from
// sequence S (a batch boundary: the first the client lacks or wants to
// compare) of timeline T, then the new ones as they come, with heartbeats
// while idle. 409: the archiver writes another timeline, or the archive of
// another database than ID (SetIdentity); 410: the ring no longer
// holds S (read the bucket, ask again later); 503: not started or stopped.
// Authentication is the caller's (the archiver's admin rules).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tl, err1 := strconv.ParseUint(r.URL.Query().Get("timeline"), 10, 32)
	from, err2 := strconv.ParseUint(r.URL.Query().Get("from"), 10, 64)
	if err1 != nil || err2 != nil || from == 0 {
		http.Error(w, "want /stream?timeline=T&from=S (S above 0)", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	if !h.started || h.closed {
		h.mu.Unlock()
		http.Error(w, "the archiver is not archiving", http.StatusServiceUnavailable)
		return
	}
	if id := r.URL.Query().Get("identity"); id != "" && h.identity != "" && id != h.identity {
		mine := h.identity
		h.mu.Unlock()
		http.Error(w, fmt.Sprintf("this archiver writes the archive of database %s, not %s", mine, id), http.StatusConflict)
		return
	}
	if uint32(tl) != h.tl {
		mine := h.tl
		h.mu.Unlock()
		http.Error(w, fmt.Sprintf("this archiver writes timeline %d, not %d", mine, tl), http.StatusConflict)
		return
	}
	pos, err := h.position(from)
	gen := h.gen
	if err != nil {
		oldest := h.next
		if len(h.ring) > 0 {
			oldest = h.ring[0].Seq
		}
		h.mu.Unlock()
		http.Error(w, fmt.Sprintf("sequence %d is no longer in memory (it holds from %d): read the bucket", from, oldest), http.StatusGone)
		return
	}
	h.stats.Clients++
	h.stats.Served++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.stats.Clients--
		h.mu.Unlock()
	}()
	h.serve(w, r, pos, from, gen)
}

// serve writes the stream from the absolute index pos until the client
// goes, the ring stops continuing, the client falls behind or the Hub
// closes.
func (h *Hub) serve(w http.ResponseWriter, r *http.Request, pos, from, gen uint64) {
	w.Header().Set("Content-Type", "application/x-rockstream-stream")
	w.Header().Set("Cache-Control", "no-store")
	sw, err := NewWriter(w)
	if err != nil {
		return
	}
	rc := http.NewResponseController(w)
	send := func() error {
		if err := sw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	}
	rc.SetWriteDeadline(time.Now().Add(writeWait))
	if err := send(); err != nil {
		return
	}
	beat := time.NewTimer(heartbeatEvery)
	defer beat.Stop()
	// However the stream ends (found behind below, a write that timed
	// out, the client gone), it ended behind if the ring no longer holds
	// what it would send next.
	end := pos // pos once out is sent
	defer func() {
		h.mu.Lock()
		if h.gen == gen && end < h.first {
			h.stats.Behind++
		}
		h.mu.Unlock()
	}()
	var out []Batch
	for {
		h.mu.Lock()
		if h.gen != gen || pos < h.first {
			h.mu.Unlock()
			return
		}
		out = out[:0]
		n := 0
		for i := pos - h.first; i < uint64(len(h.ring)) && n < sendBytes; i++ {
			out = append(out, h.ring[i])
			n += len(h.ring[i].Data)
		}
		end = pos + uint64(len(out))
		hb := Heartbeat{Timeline: h.tl, Epoch: h.epoch, Next: h.next, Archived: h.archived, Head: h.head}
		closed, changed := h.closed, h.changed
		h.mu.Unlock()
		if len(out) > 0 {
			// A client that reads less than 1 MiB a second loses its stream.
			rc.SetWriteDeadline(time.Now().Add(writeWait + time.Duration(n>>20)*time.Second))
			sent, bytes := int64(0), int64(0)
			for _, b := range out {
				pos++
				if b.Seq < from {
					continue
				}
				if err := sw.WriteBatch(b); err != nil {
					return
				}
				sent, bytes = sent+1, bytes+int64(len(b.Data))
			}
			if err := send(); err != nil {
				return
			}
			h.mu.Lock()
			h.stats.Batches += sent
			h.stats.Bytes += bytes
			h.mu.Unlock()
			continue
		}
		if closed {
			hb.Time = time.Now()
			rc.SetWriteDeadline(time.Now().Add(writeWait))
			sw.WriteHeartbeat(hb)
			send()
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-changed:
		case <-beat.C:
			hb.Time = time.Now()
			rc.SetWriteDeadline(time.Now().Add(writeWait))
			if sw.WriteHeartbeat(hb) != nil || send() != nil {
				return
			}
			beat.Reset(heartbeatEvery)
		}
	}
}
