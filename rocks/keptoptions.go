package rocks

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/linxGnu/grocksdb"

	"github.com/rockstream/rockstream/internal/durable"
)

// KeptOptionsName is the copy of a database's own OPTIONS file that an
// in-place replay (ReplayOptions.InPlace: a standby's catch-up) keeps in the
// database's folder while the database is open with the replay's bulk-load
// options, which RocksDB writes into a newer OPTIONS file. While it exists,
// every open through this package takes the options from it
// (newestOptionsFile), so that a crash half-way does not turn the bulk
// load's options into the database's own; the replay removes it once the
// database was opened with its own options again, and so does a writable
// open (OpenWritable with Own) after such a crash. RocksDB ignores the
// file: its name is none of RocksDB's.
const KeptOptionsName = "ROCKSTREAM-OWN-OPTIONS"

// keepOwnOptions copies the newest OPTIONS file of dir to KeptOptionsName,
// durably, unless a copy is there already (kept by a replay cut short: that
// one is the database's own).
func keepOwnOptions(dir string) error {
	kept := filepath.Join(dir, KeptOptionsName)
	if fileExists(kept) {
		return nil
	}
	src, err := newestOptionsFile(dir)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("rocks: keep the options of %s: %w", dir, err)
	}
	if err := durable.WriteFile(kept, data); err != nil {
		return fmt.Errorf("rocks: keep the options of %s: %w", dir, err)
	}
	return nil
}

// dropKeptOptions removes the kept copy of dir's options, durably, if there
// is one; the database must have been opened with them since the bulk load.
func dropKeptOptions(dir string) error {
	err := os.Remove(filepath.Join(dir, KeptOptionsName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		err = durable.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("rocks: drop the kept options of %s: %w", dir, err)
	}
	return nil
}

// loadOptionsFile loads the options in the OPTIONS file path of the
// database in dir: LoadLatestOptions of dir for its newest OPTIONS file, or
// of a temporary folder that holds a copy of path under an OPTIONS name
// (grocksdb v1.7.15 loads no other way).
func loadOptionsFile(dir, path string, cache *grocksdb.Cache) (*grocksdb.LatestOptions, error) {
	if filepath.Base(path) != KeptOptionsName {
		return grocksdb.LoadLatestOptions(dir, grocksdb.NewDefaultEnv(), true, cache)
	}
	tmp, err := os.MkdirTemp("", "rockstream-options-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	data, err := os.ReadFile(path)
	if err == nil {
		err = os.WriteFile(filepath.Join(tmp, "OPTIONS-000001"), data, 0o644)
	}
	if err != nil {
		return nil, err
	}
	return grocksdb.LoadLatestOptions(tmp, grocksdb.NewDefaultEnv(), true, cache)
}

// fileExists says whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
