package foreign

import (
	"fmt"
	"io"
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
	a, err := Open(cfg.Shape, cfg.Dir, Create)
	if err != nil {
		return err
	}
	defer a.Close()
	w := newWorkload(cfg.Sizes)
	m, err := writeUpTo(a, w, cfg, 0, cfg.Initial, "initial", nil)
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
		if _, err := writeUpTo(a, w, cfg, n, next, "mark", ctl.Stop); err != nil {
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

// writeUpTo writes batches from..to-1 (fewer when stop closes) and takes a
// mark after them.
func writeUpTo(a *App, w *workload, cfg Config, from, to int, name string, stop <-chan struct{}) (Mark, error) {
	var tick <-chan time.Time
	if cfg.Rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / cfg.Rate))
		defer t.Stop()
		tick = t.C
	}
	i := from
	for ; i < to && !closed(stop); i++ {
		if tick != nil {
			<-tick
		}
		if err := a.Step(w, i); err != nil {
			return Mark{}, err
		}
	}
	return mark(a, cfg, name, i)
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
