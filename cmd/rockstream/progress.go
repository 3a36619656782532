package main

import (
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// newProgress returns a progress callback that draws a bar on standard
// error when standard output is a terminal, and nil (quiet) otherwise.
func newProgress(c *cli.Context, what string) func(done, total int64) {
	if c.App.Writer != os.Stdout || !term.IsTerminal(int(os.Stdout.Fd())) {
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
