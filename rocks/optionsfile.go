package rocks

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// An OPTIONS file is INI-like text (RocksDB options/options_parser.cc):
// `[Section "name"]` headers, then `key=value` lines; `#` starts a comment.

// scanOptions calls fn for every line of the OPTIONS file read from r
// (named path in errors) that matters: once per section header, with key
// "" (so that a section without keys is seen), and once per key=value
// line, with the section it is in (the header's text between the
// brackets, trimmed; "" before the first header). A line of a section
// that has no "=" is an error.
func scanOptions(r io.Reader, path string, fn func(section, key, value string)) error {
	section := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.TrimSpace(line[1 : len(line)-1])
			fn(section, "", "")
		case section != "":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return fmt.Errorf("rocks: read options: %s: bad line %q", path, line)
			}
			fn(section, strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("rocks: read options: %s: %w", path, err)
	}
	return nil
}

// scanOptionsFile is scanOptions over the file at path.
func scanOptionsFile(path string, fn func(section, key, value string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("rocks: read options: %w", err)
	}
	defer f.Close()
	return scanOptions(f, path, fn)
}
