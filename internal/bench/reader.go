package bench

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/bench/datagen"
)

// The lag figure's writer and reader, on the application's side: the
// writer commits a batch every commitPeriod that holds the key lag/<n> with
// the commit's time and payload puts; the reader opens the standby's
// folder as a RocksDB secondary instance (as users read a standby) and
// notes when each lag/<n> became readable.

const commitPeriod = 10 * time.Millisecond

// commitBytes is the payload of each commit at rate MB/s.
func commitBytes(rate float64) int { return int(rate * 1e6 * commitPeriod.Seconds()) }

func lagKey(n int64) []byte { return fmt.Appendf(nil, "lag/%012d", n) }

// lagCommit is one commit of the writer.
type lagCommit struct {
	n   int64
	at  int64 // unix nanoseconds
	run int   // -1 in the warm-up
}

// writeCommit writes commit n with size bytes of payload.
func (a *app) writeCommit(wb *grocksdb.WriteBatch, n, at int64, size int) (int, error) {
	wb.Clear()
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(at))
	wb.Put(lagKey(n), ts[:])
	for left := size; left > 0; left -= valueSize {
		k := datagen.Key(a.buf[:0], a.gen.Uint64()%a.keys)
		a.buf = a.gen.Value(k, valueSize)
		wb.Put(a.buf[:len(k)], a.buf[len(k):])
	}
	if err := a.db.Write(a.wo, wb); err != nil {
		return 0, fmt.Errorf("write to %s: %w", a.dir, err)
	}
	return len(wb.Data()), nil
}

// reader reads the standby's folder as a secondary instance.
type reader struct {
	db   *grocksdb.DB
	opts *grocksdb.Options
	ro   *grocksdb.ReadOptions
}

func openReader(dir, scratch string) (*reader, error) {
	opts := grocksdb.NewDefaultOptions()
	opts.SetMaxOpenFiles(-1)
	db, err := grocksdb.OpenDbAsSecondary(opts, dir, scratch)
	if err != nil {
		opts.Destroy()
		return nil, fmt.Errorf("open the standby %s as a secondary: %w", dir, err)
	}
	return &reader{db: db, opts: opts, ro: grocksdb.NewDefaultReadOptions()}, nil
}

func (r *reader) close() {
	r.db.Close()
	r.ro.Destroy()
	r.opts.Destroy()
}

// follow catches up with the standby every 2 ms and notes when each commit
// after last became readable, until the commit that stop names is (or 30
// s after stop; -1 stops at once).
func (r *reader) follow(last int64, stop <-chan int64) (map[int64]int64, error) {
	vis := map[int64]int64{}
	target := int64(-2)
	var deadline time.Time
	for {
		select {
		case target = <-stop:
			deadline = time.Now().Add(30 * time.Second)
		default:
		}
		if target == -1 || target >= 0 && (last >= target || time.Now().After(deadline)) {
			return vis, nil
		}
		if err := r.db.TryCatchUpWithPrimary(); err != nil {
			return vis, fmt.Errorf("catch up with the standby: %w", err)
		}
		for {
			v, err := r.db.GetBytes(r.ro, lagKey(last+1))
			if err != nil {
				return vis, err
			}
			if v == nil {
				break
			}
			last++
			vis[last] = time.Now().UnixNano()
		}
		time.Sleep(2 * time.Millisecond)
	}
}
