package main

// The --config file of the long-running commands (archive, standby): a YAML
// mapping whose keys are the command's flag names, and a list of databases,
// each a mapping of its own settings:
//
//	log-level: info            # top level: the process, and every database's default
//	segment-age: 1s             # durations take days: 1d
//	databases:
//	  - name: app              # in logs, errors and metric labels
//	    db: /var/lib/app/db
//	    to: s3://backups/app
//
// A setting's value is the first of: the flag on the command line, its
// environment variable, the database's entry, the file's top level, the
// flag's default (settings.go). A value may name environment variables:
// ${NAME}, ${NAME:-DEFAULT}, $$ for a $ (expandEnv). This file only reads
// and checks the file.

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"
)

func configFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "config", EnvVars: []string{"ROCKSTREAM_CONFIG"},
		Usage: "read settings and a list of databases from this YAML `FILE` (see CONFIGURATION FILE above)"}
}

// configHelp is the part of --help of archive and standby about --config.
const configHelp = `CONFIGURATION FILE:
   --config FILE runs one %[1]s per database listed in the YAML file, concurrently.
   Its keys are this command's flag names (without --). Top-level keys are the
   default of every database; %[3]s are the process's (top level only).
   Each entry of 'databases' has a 'name' (in logs and the metrics' database
   label), %[2]s, and any other flag.
   A setting's value is the first of: the flag on the command line, its ROCKSTREAM_*
   variable, the database's entry, the file's top level, the flag's default.
   Unknown keys and credentials are refused: S3 credentials come from the AWS chain.
   If one database fails, the others are stopped cleanly and the process exits with
   that database's exit code. docs/OPERATIONS.md has an example.`

// configFile is a parsed --config file.
type configFile struct {
	path string
	top  []setting
	dbs  []dbEntry
}

// setting is one key of the file, with its value as text.
type setting struct {
	key, value string
	line       int
}

// dbEntry is one item of the databases list.
type dbEntry struct {
	name     string
	line     int
	settings []setting
}

func (d dbEntry) get(key string) (setting, bool) {
	for _, s := range d.settings {
		if s.key == key {
			return s, true
		}
	}
	return setting{}, false
}

// configKeys says which keys a command's file takes.
type configKeys struct {
	command string
	flags   map[string]cli.Flag // by long name: every flag of the command but help and config
	process []string            // keys of the whole process: top level only
	extra   []string            // per-database keys that are not flags (standby: dir)
}

// commandKeys are the keys of cmd's file: its flags' long names, of which
// process apply to the whole process, and extra.
func commandKeys(cmd *cli.Command, process, extra []string) configKeys {
	k := configKeys{command: cmd.Name, flags: map[string]cli.Flag{},
		process: append([]string{"log-level", "log-format"}, process...), extra: extra}
	for _, f := range cmd.Flags {
		name := f.Names()[0]
		// cpu-profile starts before the file is read: a flag or variable only.
		if name != "help" && name != "config" && name != "generate-bash-completion" && name != "cpu-profile" {
			k.flags[name] = f
		}
	}
	return k
}

// secretKeys are the keys whose values are never shown, in an error or
// anywhere else.
var secretKeys = map[string]bool{"token": true}

// configError is a mistake in the file, at a line.
type configError struct {
	path string
	line int
	msg  string
}

func (e *configError) Error() string {
	if e.line == 0 {
		return fmt.Sprintf("config %s: %s", e.path, e.msg)
	}
	return fmt.Sprintf("config %s line %d: %s", e.path, e.line, e.msg)
}

// loadConfig reads and checks the file at path. Every mistake is a usage
// error that names the file, the line and the key.
func loadConfig(path string, keys configKeys) (*configFile, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError{fmt.Errorf("--config: %w", err)}
	}
	p := &parser{keys: keys, f: &configFile{path: path}}
	root, err := p.document(data)
	if err == nil {
		err = p.top(root)
	}
	if err != nil {
		return nil, usageError{err}
	}
	return p.f, nil
}

type parser struct {
	keys configKeys
	f    *configFile
}

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &configError{path: p.f.path, line: line, msg: fmt.Sprintf(format, args...)}
}

// document parses data as exactly one YAML document and returns its root.
func (p *parser) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, p.errf(nil, "the file is empty; it needs a databases list")
		}
		return nil, p.errf(nil, "not valid YAML: %v", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return nil, p.errf(&more, "the file holds more than one YAML document")
	}
	return doc.Content[0], nil
}

// top reads the top-level mapping.
func (p *parser) top(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, "the file must be a mapping of settings with a databases list, not %s", kind(n))
	}
	pairs, err := p.pairs(n)
	if err != nil {
		return err
	}
	seen := false
	for _, kv := range pairs {
		if kv[0].Value == "databases" {
			seen = true
			if err := p.databases(kv[1]); err != nil {
				return err
			}
			continue
		}
		s, err := p.setting(kv[0], kv[1], true)
		if err != nil {
			return err
		}
		p.f.top = append(p.f.top, s)
	}
	if !seen {
		return p.errf(nil, "no databases: list them under 'databases:', each with a name")
	}
	return nil
}

// pairs returns a mapping's key and value nodes, refusing a key given twice.
func (p *parser) pairs(n *yaml.Node) ([][2]*yaml.Node, error) {
	var out [][2]*yaml.Node
	lines := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, p.errf(k, "a key must be a name, not %s", kind(k))
		}
		if first, ok := lines[k.Value]; ok {
			return nil, p.errf(k, "%s is given twice (first at line %d)", k.Value, first)
		}
		lines[k.Value] = k.Line
		out = append(out, [2]*yaml.Node{k, deref(v)})
	}
	return out, nil
}

// databases reads the databases list.
func (p *parser) databases(n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return p.errf(n, "databases must be a list of mappings (each item starting with '- name:'), not %s", kind(n))
	}
	if len(n.Content) == 0 {
		return p.errf(n, "databases is empty: list at least one")
	}
	names := map[string]int{}
	for _, item := range n.Content {
		d, err := p.database(deref(item))
		if err != nil {
			return err
		}
		if first, ok := names[d.name]; ok {
			return p.errf(item, "two databases are named %q (lines %d and %d): names must differ", d.name, first, d.line)
		}
		names[d.name] = d.line
		p.f.dbs = append(p.f.dbs, d)
	}
	return nil
}

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// database reads one item of the databases list.
func (p *parser) database(n *yaml.Node) (dbEntry, error) {
	if n.Kind != yaml.MappingNode {
		return dbEntry{}, p.errf(n, "a database must be a mapping (name: ..., and its settings), not %s", kind(n))
	}
	d := dbEntry{line: n.Line}
	pairs, err := p.pairs(n)
	if err != nil {
		return d, err
	}
	for _, kv := range pairs {
		if kv[0].Value == "name" {
			if kv[1].Kind != yaml.ScalarNode || !validName.MatchString(kv[1].Value) {
				return d, p.errf(kv[1], "name must be letters, digits, '.', '_' or '-', starting with a letter or digit")
			}
			d.name = kv[1].Value
			continue
		}
		s, err := p.setting(kv[0], kv[1], false)
		if err != nil {
			return d, err
		}
		d.settings = append(d.settings, s)
	}
	if d.name == "" {
		return d, p.errf(n, "a database has no name: give each one a name (used in logs and metrics)")
	}
	return d, nil
}

// setting checks one key and its value. The value of a key that is not
// known is never shown: it may be a secret written in the wrong place.
func (p *parser) setting(k, v *yaml.Node, top bool) (setting, error) {
	key := k.Value
	s := setting{key: key, line: k.Line}
	if credentialKey(key) {
		return s, p.errf(k, "%s: credentials do not belong in the config file. S3 credentials come from the AWS chain: "+
			"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a profile of the shared credentials file (s3://BUCKET/PREFIX?profile=P, "+
			"one per database if needed), or an instance role", key)
	}
	f, isFlag := p.keys.flags[key]
	switch {
	case isFlag && !top && slices.Contains(p.keys.process, key):
		return s, p.errf(k, "%s applies to the whole process: set it at the top level, not in a database", key)
	case !isFlag && !(slices.Contains(p.keys.extra, key) && !top):
		return s, p.errf(k, "unknown key %s%s", key, p.hint(key, top))
	}
	if v.Kind != yaml.ScalarNode {
		return s, p.errf(v, "%s takes one value, not %s", key, kind(v))
	}
	if v.Tag != "!!null" {
		val, err := expandEnv(v.Value)
		if err != nil {
			return s, p.errf(v, "%s: %v", key, err)
		}
		s.value = val
	}
	if isFlag {
		if err := checkValue(f, key, s.value); err != nil {
			if secretKeys[key] {
				return s, p.errf(v, "%s: not a valid value", key)
			}
			return s, p.errf(v, "%s: invalid value %q: %v", key, s.value, err)
		}
	}
	return s, nil
}

// envRef is a reference to an environment variable in a value of the
// config file: ${NAME}, or ${NAME:-DEFAULT}.
var envRef = regexp.MustCompile(`\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv replaces the ${NAME} and ${NAME:-DEFAULT} of a value with the
// environment's values; $$ is a $. A variable that is unset or empty
// without a default is an error naming it (a token or a location must not
// silently become empty), and so is a ${ that starts no reference; a $
// not followed by { stays as it is. Errors never show the value.
func expandEnv(value string) (string, error) {
	var b strings.Builder
	last := 0
	for _, m := range envRef.FindAllStringSubmatchIndex(value, -1) {
		if strings.Contains(value[last:m[0]], "${") {
			break
		}
		b.WriteString(value[last:m[0]])
		last = m[1]
		if value[m[0]:m[1]] == "$$" {
			b.WriteByte('$')
			continue
		}
		name := value[m[2]:m[3]]
		switch v := os.Getenv(name); {
		case v != "":
			b.WriteString(v)
		case m[4] >= 0:
			b.WriteString(value[m[6]:m[7]])
		default:
			return "", fmt.Errorf("${%s} is not set (or is empty) in the environment; set it, or give a default: ${%s:-VALUE}", name, name)
		}
	}
	if strings.Contains(value[last:], "${") {
		return "", errors.New("a ${ that is not ${NAME} or ${NAME:-DEFAULT} (write $$ for a $)")
	}
	b.WriteString(value[last:])
	return b.String(), nil
}

// hint says what an unknown key may have meant.
func (p *parser) hint(key string, top bool) string {
	if alt := strings.ReplaceAll(key, "_", "-"); alt != key {
		if _, ok := p.keys.flags[alt]; ok {
			return fmt.Sprintf(" (did you mean %s?)", alt)
		}
	}
	if top && slices.Contains(p.keys.extra, key) {
		return fmt.Sprintf(" at the top level: %s belongs in each database", key)
	}
	return fmt.Sprintf(" (the keys are the flag names of 'rockstream %s --help'%s)", p.keys.command, extraText(p.keys.extra))
}

func extraText(extra []string) string {
	if len(extra) == 0 {
		return ""
	}
	return ", and in a database " + strings.Join(extra, ", ")
}

// credentialKey reports a key that looks like a credential.
func credentialKey(key string) bool {
	k := strings.ToLower(strings.ReplaceAll(key, "_", "-"))
	for _, w := range []string{"secret", "access-key", "password", "session-token", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// checkValue parses value as the flag would.
func checkValue(f cli.Flag, key, value string) error {
	set := flag.NewFlagSet(key, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	if err := f.Apply(set); err != nil {
		return err
	}
	return set.Set(key, value)
}

// deref follows a YAML alias to what it names.
func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "nothing"
}
