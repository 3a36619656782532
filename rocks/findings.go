package rocks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/linxGnu/grocksdb"
)

// Operators are the application's own merge operators, by the name that
// its OPTIONS file records for them (the operator's Name()). Library mode
// passes them, so that a database whose options name a custom merge
// operator opens with it; without it, such a database is a Finding.
//
// A comparator of the application's own is always a Finding (a restore
// needs --hand-off): with grocksdb v1.7.15, options loaded from an OPTIONS
// file that names one do not open even with the comparator set on them
// (RocksDB: "Missing configurable object: comparator").
type Operators struct {
	Merge map[string]grocksdb.MergeOperator
}

// Finding is an option of a database that rockstream cannot replay with by
// itself: a merge operator or a comparator that is neither built into
// RocksDB nor given in Operators.
type Finding struct {
	Family string // the column family
	Kind   string // "merge operator" or "comparator"
	Name   string // as the OPTIONS file names it
}

func (f Finding) String() string {
	return fmt.Sprintf("column family %q: %s %q", f.Family, f.Kind, f.Name)
}

// ErrForeignOptions: the database's options name a merge operator or a
// comparator that rockstream does not have. Returned as *OptionsError.
var ErrForeignOptions = errors.New("rocks: the database's options need the application's own operators")

// OptionsError lists the findings of an OPTIONS file. It matches
// ErrForeignOptions.
type OptionsError struct {
	File     string
	Findings []Finding
}

func (e *OptionsError) Error() string {
	parts := make([]string, len(e.Findings))
	for i, f := range e.Findings {
		parts[i] = f.String()
	}
	return fmt.Sprintf("%v: %s names %s; rockstream cannot replay batches with them by itself: "+
		"restore with --hand-off (the application's own RocksDB replays the archived WAL at its first open), "+
		"or, for a merge operator, pass it in library mode (rocks.Operators)", ErrForeignOptions, e.File, strings.Join(parts, ", "))
}

// Unwrap makes errors.Is(err, ErrForeignOptions) true.
func (e *OptionsError) Unwrap() error { return ErrForeignOptions }

// builtinMergeOperators are the names under which RocksDB 7.8.3 creates a
// merge operator from a string, the names its OPTIONS file writes and the
// short ones (utilities/merge_operators.cc LoadMergeOperator and
// RegisterBuiltinMergeOperators).
var builtinMergeOperators = map[string]bool{
	"put": true, "PutOperator": true, "put_v1": true,
	"uint64add": true, "UInt64AddOperator": true,
	"max": true, "MaxOperator": true,
	"stringappend": true, "StringAppendOperator": true,
	"stringappendtest": true, "StringAppendTESTOperator": true,
	"bytesxor": true, "BytesXOR": true,
	"sortlist": true, "MergeSortOperator": true,
}

// builtinComparators are the comparators RocksDB resolves by name
// (util/comparator.cc): the bytewise ones, and the bytewise one with
// 64-bit user-defined timestamps.
var builtinComparators = map[string]bool{
	"leveldb.BytewiseComparator":        true,
	"rocksdb.ReverseBytewiseComparator": true,
	// BytewiseComparatorWithU64Ts, of user-defined timestamps
	// (util/comparator.cc RegisterBuiltinComparators, CreateFromString).
	"leveldb.BytewiseComparator.u64ts": true,
}

// familyOptions are what this package reads of a [CFOptions "name"]
// section.
type familyOptions struct {
	name       string
	merge      string // "" when none
	comparator string
}

// InspectOptions reads the newest OPTIONS file of dir, in plain Go, and
// returns what rockstream cannot replay with by itself: every column
// family whose merge operator or comparator is neither built into RocksDB
// nor in ops (which may be nil). The archiver calls it at start to say
// what a restore will need; file is the OPTIONS file read.
func InspectOptions(dir string, ops *Operators) (findings []Finding, file string, err error) {
	fams, file, err := readFamilyOptions(dir)
	if err != nil {
		return nil, "", err
	}
	return findingsOf(fams, ops), file, nil
}

func findingsOf(fams []familyOptions, ops *Operators) []Finding {
	var out []Finding
	for _, f := range fams {
		if f.merge != "" && !builtinMergeOperators[f.merge] && ops.merge(f.merge) == nil {
			out = append(out, Finding{Family: f.name, Kind: "merge operator", Name: f.merge})
		}
		if f.comparator != "" && !builtinComparators[f.comparator] {
			out = append(out, Finding{Family: f.name, Kind: "comparator", Name: f.comparator})
		}
	}
	return out
}

func (o *Operators) merge(name string) grocksdb.MergeOperator {
	if o == nil {
		return nil
	}
	return o.Merge[name]
}

// readFamilyOptions reads the column family sections of the newest
// OPTIONS file of dir.
func readFamilyOptions(dir string) ([]familyOptions, string, error) {
	if err := checkDatabase(dir); err != nil {
		return nil, "", err
	}
	path, err := newestOptionsFile(dir)
	if err != nil {
		return nil, "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("rocks: read options: %w", err)
	}
	defer f.Close()
	out, err := parseFamilyOptions(f, path)
	return out, path, err
}

// InspectOptionsData is InspectOptions over the bytes of an OPTIONS file
// (one stored in an archive's base, for status), named name in messages.
func InspectOptionsData(data []byte, name string, ops *Operators) ([]Finding, error) {
	fams, err := parseFamilyOptions(bytes.NewReader(data), name)
	if err != nil {
		return nil, err
	}
	return findingsOf(fams, ops), nil
}

// parseFamilyOptions reads the column family sections of an OPTIONS file.
func parseFamilyOptions(r io.Reader, path string) ([]familyOptions, error) {
	var out []familyOptions
	in := false // in a [CFOptions] section
	err := scanOptions(r, path, func(section, key, value string) {
		if key == "" {
			name, ok := familySection("[" + section + "]")
			if in = ok; ok {
				out = append(out, familyOptions{name: name})
			}
			return
		}
		if !in {
			return
		}
		switch key {
		case "merge_operator":
			out[len(out)-1].merge = customName(value)
		case "comparator":
			out[len(out)-1].comparator = customName(value)
		}
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("rocks: read options: %s: no [CFOptions] section", path)
	}
	return out, nil
}

// familySection returns the family of a `[CFOptions "name"]` line.
func familySection(line string) (string, bool) {
	rest, ok := strings.CutPrefix(line, "[CFOptions ")
	if !ok || !strings.HasSuffix(rest, "]") {
		return "", false
	}
	name := strings.TrimSpace(strings.TrimSuffix(rest, "]"))
	return strings.Trim(name, `"`), true
}

// customName is the name of a customizable option's value: `Name`,
// `{id=Name;...}`, or "" for `nullptr` and an empty value
// (options/options_helper.cc, Customizable serialization).
func customName(v string) string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "{") && strings.HasSuffix(v, "}") {
		for _, part := range strings.Split(v[1:len(v)-1], ";") {
			if id, ok := strings.CutPrefix(strings.TrimSpace(part), "id="); ok {
				return strings.TrimSpace(id)
			}
		}
		return ""
	}
	if v == "nullptr" {
		return ""
	}
	return v
}
