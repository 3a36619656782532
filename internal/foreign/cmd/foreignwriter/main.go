// Command foreignwriter plays an application that writes RocksDB with its
// own options (a shape of package foreign), for the foreign-writer suite.
//
// Write mode:
//
//	foreignwriter --db DIR --shape NAME --marks FILE [--seed N --batches N ...]
//
// writes the initial batches, records the "initial" mark, prints "ready SEQ"
// and waits for a line on stdin (or its end); then writes the rest, with a
// mark every --mark-every batches and a "final" one, prints "done SEQ", and
// exits 0 on SIGTERM or SIGINT (which also ends the writing early, after a
// final mark). Each mark is a JSON line in FILE with a checkpoint beside it.
//
// Verify mode:
//
//	foreignwriter --shape NAME --verify DIR [--read-write] [--marks FILE --mark SEQ]
//
// opens DIR with the shape's options (read-only unless --read-write, which
// also writes one batch after reading, as the application going on) and
// prints its state as one JSON line; with --mark it compares it with the
// mark of sequence SEQ and, when they differ, prints the first differing
// key of each family (from the mark's checkpoint) and exits 1.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rockstream/rockstream/internal/foreign"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "foreignwriter:", err)
		os.Exit(1)
	}
}

type flags struct {
	cfg       foreign.Config
	shape     string
	verify    string
	readWrite bool
	mark      uint64
}

func parse(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("foreignwriter", flag.ContinueOnError)
	fs.StringVar(&f.cfg.Dir, "db", "", "the database `DIR` to write")
	fs.StringVar(&f.shape, "shape", "plain", "the application's shape")
	fs.StringVar(&f.cfg.MarksFile, "marks", "", "the marks `FILE` (JSON lines); checkpoints go beside it")
	fs.Uint64Var(&f.cfg.Sizes.Seed, "seed", 1, "the seed of every choice")
	fs.IntVar(&f.cfg.Sizes.Keys, "keys", 5000, "distinct keys per family")
	fs.IntVar(&f.cfg.Sizes.ValueSize, "value-size", 200, "mean value size in bytes")
	fs.IntVar(&f.cfg.Sizes.Ops, "ops", 8, "most operations per batch")
	fs.IntVar(&f.cfg.Initial, "initial", 200, "batches before the initial mark")
	fs.IntVar(&f.cfg.Batches, "batches", 2000, "batches in all")
	fs.IntVar(&f.cfg.MarkEvery, "mark-every", 400, "a mark every N batches")
	fs.Float64Var(&f.cfg.Rate, "rate", 0, "batches per second (0: as fast as it can)")
	fs.IntVar(&f.cfg.Threads, "threads", 1, "threads writing at once, paused at each mark (over 1: the states depend on their interleaving)")
	fs.StringVar(&f.verify, "verify", "", "open `DIR` with the shape's options and print its state")
	fs.BoolVar(&f.readWrite, "read-write", false, "verify: open read-write and write one batch after")
	fs.Uint64Var(&f.mark, "mark", 0, "verify: compare with the mark of this `SEQ` in --marks")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	s, err := foreign.Lookup(f.shape)
	if err != nil {
		return f, err
	}
	f.cfg.Shape = s
	switch {
	case f.verify == "" && (f.cfg.Dir == "" || f.cfg.MarksFile == ""):
		return f, errors.New("--db and --marks are required (or --verify DIR)")
	case f.mark != 0 && f.cfg.MarksFile == "":
		return f, errors.New("--mark needs --marks")
	case f.cfg.MarkEvery < 1 || f.cfg.Initial < 0 || f.cfg.Batches < f.cfg.Initial:
		return f, errors.New("--mark-every must be positive and --batches at least --initial")
	}
	return f, nil
}

func run(args []string, in io.Reader, out io.Writer) error {
	f, err := parse(args)
	if err != nil {
		return err
	}
	if f.verify != "" {
		return verify(f, out)
	}
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; close(stop) }()
	start := make(chan struct{})
	go func() {
		bufio.NewReader(in).ReadString('\n') // a line or the end of stdin
		close(start)
	}()
	return foreign.Write(f.cfg, foreign.Control{Go: start, Stop: stop, Out: out})
}

func verify(f flags, out io.Writer) error {
	mode := foreign.ReadOnly
	if f.readWrite {
		mode = foreign.ReadWrite
	}
	got, err := foreign.Verify(f.cfg.Shape, f.verify, mode)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(got)
	fmt.Fprintf(out, "%s\n", b)
	if f.mark == 0 {
		return nil
	}
	want, err := findMark(f.cfg.MarksFile, f.mark)
	if err != nil {
		return err
	}
	// A family that the writer dropped before the mark may still be in a
	// restore to it: the sidecar places a drop where it noticed it in the
	// MANIFEST, a little after the drop (docs/COMPATIBILITY.md). Only
	// extra families are tolerated: every family of the mark must be there
	// with its content.
	if slack := f.cfg.Shape.DropSlack; slack != nil {
		for n := range got.Families {
			if _, had := want.Families[n]; !had && slack(n) {
				fmt.Fprintf(out, "tolerated: column family %q, which the writer dropped before this mark, is still there (a drop is placed where the archiver noticed it)\n", n)
				delete(got.Families, n)
			}
		}
	}
	diff := got.Families.Diff(want.Families)
	if diff == "" {
		fmt.Fprintf(out, "equal to the mark at sequence %d\n", f.mark)
		return nil
	}
	fmt.Fprintf(out, "differs from the mark at sequence %d: %s\n", f.mark, diff)
	if !f.readWrite && want.Checkpoint != "" {
		lines, err := foreign.Diff(f.cfg.Shape, f.verify, want.Checkpoint)
		if err != nil {
			fmt.Fprintf(out, "no key-by-key comparison: %v\n", err)
		}
		for _, l := range lines {
			fmt.Fprintln(out, l)
		}
		if err == nil && len(lines) == 0 {
			fmt.Fprintf(out, "the mark's checkpoint %s shows no difference key by key\n", want.Checkpoint)
		}
	}
	return fmt.Errorf("%s differs from the mark at sequence %d", f.verify, f.mark)
}

func findMark(file string, seq uint64) (foreign.Mark, error) {
	ms, err := foreign.ReadMarks(file)
	if err != nil {
		return foreign.Mark{}, err
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].Seq == seq {
			return ms[i], nil
		}
	}
	return foreign.Mark{}, fmt.Errorf("no mark at sequence %d in %s", seq, file)
}
