package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/objstore/location"
)

// dbContext is one database of a config file, with the context from which
// its command reads its settings as it reads its flags.
type dbContext struct {
	dbEntry
	c     *cli.Context // this database's settings
	outer *cli.Context // the command line and the environment
	top   []setting
	path  string // of the config file
}

// loadDatabases reads the --config file and returns the context of the
// whole process (the file's top level) and one per database. In each, a
// flag reads the first of: the command line, the environment, the
// database's entry, the top level, the default. The file's log settings
// take effect here.
func loadDatabases(c *cli.Context, keys configKeys) (*cli.Context, []*dbContext, error) {
	f, err := loadConfig(c.String("config"), keys)
	if err != nil {
		return nil, nil, err
	}
	top, err := fileContext(c, c, keys, f.top)
	if err != nil {
		return nil, nil, err
	}
	if err := setupLogging(top); err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", f.path, err)
	}
	dbs := make([]*dbContext, len(f.dbs))
	for i, e := range f.dbs {
		dc, err := fileContext(top, c, keys, e.settings)
		if err != nil {
			return nil, nil, err
		}
		dbs[i] = &dbContext{dbEntry: e, c: dc, outer: c, top: f.top, path: f.path}
	}
	return top, dbs, nil
}

// fileContext returns a child of parent that holds the settings that the
// command line and the environment (outer) leave unset; every other flag
// reads on through parent.
func fileContext(parent, outer *cli.Context, keys configKeys, settings []setting) (*cli.Context, error) {
	set := flag.NewFlagSet(outer.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, s := range settings {
		f, ok := keys.flags[s.key]
		if !ok || setOutside(outer, s.key) {
			continue
		}
		if err := f.Apply(set); err != nil {
			return nil, err
		}
		if err := set.Set(s.key, s.value); err != nil {
			return nil, usageError{fmt.Errorf("line %d: %s: %w", s.line, s.key, err)}
		}
	}
	child := cli.NewContext(outer.App, set, parent)
	child.Command = outer.Command
	child.Context = outer.Context
	return child, nil
}

// setOutside reports whether the command line or the environment sets the
// flag name, for the command or the whole program.
func setOutside(c *cli.Context, name string) bool {
	for _, ctx := range c.Lineage() {
		if ctx.IsSet(name) {
			return true
		}
	}
	return false
}

// logger is the database's logger: every line names it.
func (d *dbContext) logger() *slog.Logger {
	return slog.Default().With("database", d.name)
}

// wrap names the database in err, keeping what err is.
func (d *dbContext) wrap(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("database %s (config %s line %d): %w", d.name, d.path, d.line, err)
}

// from says where the database's value of key comes from.
func (d *dbContext) from(key string) string {
	if setOutside(d.outer, key) {
		return fmt.Sprintf("--%s or ROCKSTREAM_%s", key, envName(key))
	}
	if s, ok := d.get(key); ok {
		return fmt.Sprintf("line %d", s.line)
	}
	for _, s := range d.top {
		if s.key == key {
			return fmt.Sprintf("line %d, top level", s.line)
		}
	}
	return "the default"
}

// value is the database's setting key: a flag's, else an extra key's from
// its entry.
func (d *dbContext) value(key string) string {
	for _, f := range d.c.Command.Flags {
		if f.Names()[0] == key {
			return d.c.String(key)
		}
	}
	s, _ := d.get(key)
	return s.value
}

// require refuses a database without a value for each key.
func (d *dbContext) require(keys ...string) error {
	for _, k := range keys {
		if d.value(k) == "" {
			return usageError{fmt.Errorf("database %s (config %s line %d) has no %s: give each database %s",
				d.name, d.path, d.line, k, strings.Join(keys, " and "))}
		}
	}
	return nil
}

// valueFunc gives a database's value of a setting as compared (key) and
// as shown.
type valueFunc func(d *dbContext) (key, shown string, err error)

// distinct refuses two databases with the same value of what, or with
// nested, one value inside the other.
func distinct(dbs []*dbContext, what string, value valueFunc, nested bool) error {
	keys, shown := make([]string, len(dbs)), make([]string, len(dbs))
	for i, d := range dbs {
		k, s, err := value(d)
		if err != nil {
			return d.wrap(err)
		}
		keys[i], shown[i] = k, s
	}
	for i, a := range dbs {
		for j, b := range dbs[:i] {
			ki, kj := keys[i], keys[j]
			if ki == "" || kj == "" || !(ki == kj || nested && (strings.HasPrefix(ki, kj) || strings.HasPrefix(kj, ki))) {
				continue
			}
			verb := "share"
			if ki != kj {
				verb = "overlap in"
			}
			return usageError{fmt.Errorf("config %s: databases %s and %s %s %s: %s (%s, %s) and %s (%s, %s); give each database its own",
				a.path, b.name, a.name, verb, what, shown[j], b.name, b.from(what), shown[i], a.name, a.from(what))}
		}
	}
	return nil
}

// pathValue is a folder setting (key, or the extra key of the file),
// absolute.
func pathValue(key string) valueFunc {
	return func(d *dbContext) (string, string, error) {
		v := d.value(key)
		if v == "" {
			return "", "", nil
		}
		abs, err := filepath.Abs(v)
		return abs, v, err
	}
}

// workDirValue is the work folder, given or beside the database in key.
func workDirValue(key string) valueFunc {
	return func(d *dbContext) (string, string, error) {
		_, dir, err := pathValue(key)(d)
		if err != nil || dir == "" {
			return "", "", err
		}
		w := d.c.String("work-dir")
		if w == "" {
			abs, _ := filepath.Abs(dir)
			w = archive.DefaultWorkDir(abs)
		}
		abs, err := filepath.Abs(w)
		return abs, w, err
	}
}

// locationValue is an archive location, compared as a folder or a bucket
// prefix (one inside another overlaps).
func locationValue(key string) valueFunc {
	return func(d *dbContext) (string, string, error) {
		raw := d.c.String(key)
		loc, err := location.Parse(raw)
		if err != nil {
			return "", "", err
		}
		if loc.Scheme == "file" {
			return "file:" + strings.TrimSuffix(loc.Path, "/") + "/", raw, nil
		}
		k := "s3:" + loc.Endpoint + "|" + loc.Bucket + "/"
		if loc.Prefix != "" {
			k += loc.Prefix + "/"
		}
		return k, loc.String(), nil
	}
}

// textValue is a setting compared as it is written; empty is never shared.
func textValue(key string) valueFunc {
	return func(d *dbContext) (string, string, error) {
		v := d.c.String(key)
		return v, v, nil
	}
}
