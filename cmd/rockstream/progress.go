package main

import (
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// newProgress returns a progress callback that draws a bar on standard
// error, where the bar library writes, when standard error is a terminal,
// and nil (quiet) otherwise: `2>file` gets no escape codes. A test that
// replaces the app's writer gets none either.
func newProgress(c *cli.Context, what string) func(done, total int64) {
	if c.App.Writer != os.Stdout || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	var (
		mu  sync.Mutex
		bar *progressbar.ProgressBar
	)
	return func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			bar = progressbar.DefaultBytes(total, what)
		}
		bar.Set64(done)
	}
}
