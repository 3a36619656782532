package rocks

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// checkDatabase returns ErrNotDatabase, naming dir, unless dir is a
// directory with a CURRENT file. It runs before any call into RocksDB, whose
// own errors for such a directory are less clear (or create a database).
func checkDatabase(dir string) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrNotDatabase, dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s: not a directory", ErrNotDatabase, dir)
	}
	fi, err = os.Stat(filepath.Join(dir, "CURRENT"))
	if err != nil {
		return fmt.Errorf("%w: %s: no CURRENT file: %w", ErrNotDatabase, dir, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s: CURRENT is not a regular file", ErrNotDatabase, dir)
	}
	return nil
}

// ReadIdentity returns the database's IDENTITY file, trimmed. Note that a
// checkpoint has no IDENTITY file: RocksDB writes a new one, with a new
// identity, when the checkpoint is first opened.
func ReadIdentity(dbDir string) (string, error) {
	if err := checkDatabase(dbDir); err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dbDir, "IDENTITY"))
	if err != nil {
		return "", fmt.Errorf("rocks: read identity: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("rocks: read identity: %s: empty IDENTITY file", dbDir)
	}
	return id, nil
}

// ReadWALRetention reads WAL_ttl_seconds and WAL_size_limit_MB from the
// [DBOptions] section of the newest OPTIONS-<number> file of dbDir, the
// options that the writer last opened the database with. When both are 0,
// RocksDB deletes a WAL file as soon as it is flushed, before a follower may
// have read it. optionsFile is the path of the file read.
func ReadWALRetention(dbDir string) (ttlSeconds, sizeLimitMB uint64, optionsFile string, err error) {
	if err := checkDatabase(dbDir); err != nil {
		return 0, 0, "", err
	}
	optionsFile, err = newestOptionsFile(dbDir)
	if err != nil {
		return 0, 0, "", err
	}
	opts, err := readDBOptions(optionsFile)
	if err != nil {
		return 0, 0, "", err
	}
	if ttlSeconds, err = optionUint(opts, optionsFile, "WAL_ttl_seconds"); err != nil {
		return 0, 0, "", err
	}
	if sizeLimitMB, err = optionUint(opts, optionsFile, "WAL_size_limit_MB"); err != nil {
		return 0, 0, "", err
	}
	return ttlSeconds, sizeLimitMB, optionsFile, nil
}

// newestOptionsFile returns the OPTIONS-<number> file with the highest
// number; RocksDB writes OPTIONS-<number>.dbtmp first, which is skipped.
// A kept copy of the database's own options (KeptOptionsName) comes first.
func newestOptionsFile(dir string) (string, error) {
	if kept := filepath.Join(dir, KeptOptionsName); fileExists(kept) {
		return kept, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("rocks: read options: %w", err)
	}
	best, bestNum := "", uint64(0)
	for _, e := range entries {
		num, ok := strings.CutPrefix(e.Name(), "OPTIONS-")
		n, err := strconv.ParseUint(num, 10, 64)
		if !ok || err != nil || !e.Type().IsRegular() {
			continue
		}
		if best == "" || n > bestNum {
			best, bestNum = e.Name(), n
		}
	}
	if best == "" {
		return "", fmt.Errorf("rocks: read options: %s: no OPTIONS file: %w", dir, fs.ErrNotExist)
	}
	return filepath.Join(dir, best), nil
}

// readDBOptions returns the key=value lines of the [DBOptions] section of a
// RocksDB options file (an INI-like text).
func readDBOptions(path string) (map[string]string, error) {
	opts, seen := map[string]string{}, false
	err := scanOptionsFile(path, func(section, key, value string) {
		if section == "DBOptions" {
			seen = true
			if key != "" {
				opts[key] = value
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if !seen {
		return nil, fmt.Errorf("rocks: read options: %s: no [DBOptions] section", path)
	}
	return opts, nil
}

func optionUint(opts map[string]string, path, key string) (uint64, error) {
	v, ok := opts[key]
	if !ok {
		return 0, fmt.Errorf("rocks: read options: %s: no %s in [DBOptions]", path, key)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("rocks: read options: %s: %s: %w", path, key, err)
	}
	return n, nil
}

// File is a file of a checkpoint directory.
type File struct {
	Name string // base name: "000012.sst", "MANIFEST-000005", "CURRENT", ...
	Size int64
}

// CheckpointFiles lists the files of a checkpoint directory, sorted by name.
// A checkpoint is flat; anything but a regular file is an error.
func CheckpointFiles(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("rocks: list checkpoint: %w", err)
	}
	files := make([]File, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			return nil, fmt.Errorf("rocks: list checkpoint: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("rocks: list checkpoint: %s: not a regular file", filepath.Join(dir, e.Name()))
		}
		files = append(files, File{Name: e.Name(), Size: fi.Size()})
	}
	return files, nil // os.ReadDir sorts by name
}
