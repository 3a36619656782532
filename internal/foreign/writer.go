package foreign

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Config is one run of the writer.
type Config struct {
	Dir       string // the database folder
	Shape     *Shape
	MarksFile string
	Sizes     Sizes
	Initial   int     // batches before the first mark, "initial"
	Batches   int     // batches in all
	MarkEvery int     // a mark every this many batches after the initial ones
	Rate      float64 // batches per second; 0: as fast as it can
	// Threads write concurrently, each its own batches with its own seed
	// (Seed+k), all paused at each mark; the states then depend on the
	// interleaving, the marks record what it was. 0 or 1: one thread, and
	// every state follows from the seed.
	Threads int
}

// Control is how the writer is driven: it writes the initial batches, takes
// the "initial" mark, prints "ready SEQ" to Out, and waits for Go to close
// before it writes the rest; it prints "done SEQ" after the final mark and
// returns once Stop closes. Closing Stop earlier ends the writing after the
// batch at hand, with a final mark all the same.
type Control struct {
	Go   <-chan struct{}
	Stop <-chan struct{}
	Out  io.Writer
}

// Write runs the writer.
func Write(cfg Config, ctl Control) error {
	if cfg.Shape.ReadOnlyShape {
		return fmt.Errorf("foreign: shape %s is written by another program; use verify", cfg.Shape.Name)
	}
	if cfg.Threads > 1 && cfg.Shape.Serial {
		return fmt.Errorf("foreign: shape %s writes from one thread only", cfg.Shape.Name)
	}
	a, err := Open(cfg.Shape, cfg.Dir, Create)
	if err != nil {
		return err
	}
	defer a.Close()
	ws := []*workload{newWorkload(cfg.Sizes)}
	for k := 1; k < cfg.Threads; k++ {
		s := cfg.Sizes
		s.Seed += uint64(k)
		ws = append(ws, newWorkload(s))
	}
	w := ws[0]
	m, err := writeUpTo(a, ws, cfg, 0, cfg.Initial, "initial", nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(ctl.Out, "ready %d\n", m.Seq)
	select {
	case <-ctl.Go:
	case <-ctl.Stop:
		return nil
	}
	n := cfg.Initial
	for n < cfg.Batches && !closed(ctl.Stop) {
		next := min(n+cfg.MarkEvery, cfg.Batches)
		if _, err := writeUpTo(a, ws, cfg, n, next, "mark", ctl.Stop); err != nil {
			return err
		}
		n = next
	}
	if err := a.Finish(w); err != nil {
		return err
	}
	m, err = mark(a, cfg, "final", n)
	if err != nil {
		return err
	}
	fmt.Fprintf(ctl.Out, "done %d\n", m.Seq)
	<-ctl.Stop
	return nil
}

// writeUpTo writes batches from..to-1 (fewer when stop closes), thread k
// of len(ws) those with i%len(ws) == k, and takes a mark once every thread
// is done.
func writeUpTo(a *App, ws []*workload, cfg Config, from, to int, name string, stop <-chan struct{}) (Mark, error) {
	var tick <-chan time.Time
	if cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	var wg sync.WaitGroup
	var written atomic.Int64
	errs := make([]error, len(ws))
	for k, w := range ws {
		wg.Go(func() {
			for i := from + k; i < to && !closed(stop); i += len(ws) {
				if tick != nil {
					<-tick
				}
				if errs[k] = a.Step(w, i); errs[k] != nil {
					return
				}
				written.Add(1)
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Mark{}, err
	}
	return mark(a, cfg, name, from+int(written.Load()))
}

func mark(a *App, cfg Config, name string, batch int) (Mark, error) {
	m, err := a.TakeMark(name, batch, CheckpointDir(cfg.MarksFile, name, batch))
	if err != nil {
		return Mark{}, err
	}
	return m, AppendMark(cfg.MarksFile, m)
}

func closed(c <-chan struct{}) bool {
	if c == nil {
		return false
	}
	select {
	case <-c:
		return true
	default:
		return false
	}
}
