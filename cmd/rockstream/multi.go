package main

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
)

// runArchiveConfig runs one archiver per database of the --config file.
// Every database is opened and checked before any starts.
func runArchiveConfig(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("archive takes no arguments, got %q", c.Args().Slice())}
	}
	top, dbs, err := archiveDatabases(c)
	if err != nil {
		return err
	}
	if err := limitArchiver(top, len(dbs)); err != nil {
		return err
	}
	var jobs []*archiveJob
	defer func() {
		for _, j := range jobs {
			j.o.src.Close()
		}
	}()
	for _, d := range dbs {
		j, err := prepareArchive(d.c, d.name, d.logger())
		if err != nil {
			return d.wrap(err)
		}
		jobs = append(jobs, j)
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := listenArchive(ctx, top, jobs); err != nil {
		return err
	}
	runs := make([]job, len(jobs))
	for i, j := range jobs {
		runs[i] = job{name: j.name, log: j.log, run: j.run}
	}
	return runJobs(ctx, runs)
}

// archiveDatabases reads the --config file of archive. It refuses
// databases that lack a db or a location, and two that share a database, a
// work folder or an archive location (or one inside the other).
func archiveDatabases(c *cli.Context) (*cli.Context, []*dbContext, error) {
	top, dbs, err := loadDatabases(c, commandKeys(c.Command, []string{"nice", "listen", "token", "token-file", "tls-cert", "tls-key"}, nil))
	if err != nil {
		return nil, nil, err
	}
	for _, d := range dbs {
		if err := d.require("db", "to"); err != nil {
			return nil, nil, err
		}
	}
	for _, check := range []struct {
		key    string
		value  valueFunc
		nested bool
	}{{"db", pathValue("db"), false}, {"to", locationValue("to"), true}, {"work-dir", workDirValue("db"), false}} {
		if err := distinct(dbs, check.key, check.value, check.nested); err != nil {
			return nil, nil, err
		}
	}
	return top, dbs, nil
}

// runStandbyConfig runs one standby per database of the --config file.
// Every database is checked, and every admin endpoint listens, before any
// starts.
func runStandbyConfig(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageError{fmt.Errorf("with --config, each standby's folder is the dir of its database in the file; got the argument %q", c.Args().Slice())}
	}
	_, dbs, err := standbyDatabases(c)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the admin endpoints on an early return
	runs := make([]job, len(dbs))
	for i, d := range dbs {
		j, err := prepareStandby(d.c, d.value("dir"), d.name, d.logger())
		if err == nil {
			err = j.serve(ctx)
		}
		if err != nil {
			return d.wrap(err)
		}
		runs[i] = job{name: d.name, log: j.log, run: j.run}
	}
	return runJobs(ctx, runs)
}

// standbyDatabases reads the --config file of standby. It refuses
// databases that lack an archive or a folder, and two that share a folder,
// a work folder or an admin address.
func standbyDatabases(c *cli.Context) (*cli.Context, []*dbContext, error) {
	top, dbs, err := loadDatabases(c, commandKeys(c.Command, nil, []string{"dir"}))
	if err != nil {
		return nil, nil, err
	}
	for _, d := range dbs {
		if err := d.require("from", "dir"); err != nil {
			return nil, nil, err
		}
		token, err := tokenOf(d.c)
		if err == nil {
			err = checkListen(d.c.String("listen"), token)
		}
		if err != nil {
			return nil, nil, d.wrap(err)
		}
	}
	for _, check := range []struct {
		key   string
		value valueFunc
	}{{"dir", pathValue("dir")}, {"work-dir", workDirValue("dir")}, {"listen", textValue("listen")}} {
		if err := distinct(dbs, check.key, check.value, false); err != nil {
			return nil, nil, err
		}
	}
	return top, dbs, nil
}

// job is the work of one database of a config file.
type job struct {
	name string
	log  *slog.Logger
	run  func(context.Context) error
}

// runJobs runs the jobs concurrently until ctx ends, when each stops as
// on SIGTERM, or one fails: then the others are stopped the same way, and
// the process exits with the failure. A supervisor that restarts the
// process sees it, and no database goes on unwatched in a half-failed
// process.
func runJobs(ctx context.Context, jobs []job) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu   sync.Mutex
		errs failures
		wg   sync.WaitGroup
	)
	for _, j := range jobs {
		wg.Go(func() {
			err := j.run(ctx)
			if err == nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(errs) == 0 {
				j.log.Error("this database failed; stopping the others", "error", err)
			} else {
				j.log.Error("this database failed too", "error", err)
			}
			errs = append(errs, fmt.Errorf("database %s: %w", j.name, err))
			cancel()
		})
	}
	wg.Wait()
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// failures are the errors of several databases, the first first; the exit
// code is the first one's.
type failures []error

func (f failures) Error() string {
	msgs := make([]string, len(f))
	for i, err := range f {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; and ")
}

func (f failures) Unwrap() error { return f[0] }
