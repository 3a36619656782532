package restore

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// dest is the folder a restore builds: the temporary folder is made beside
// it, on the same file system, so that the final rename is atomic.
type dest struct {
	dir    string // absolute
	parent string
	name   string
}

// checkDest checks, before anything is downloaded, that dir can receive a
// restore: missing, an empty folder, or any folder with force. It creates
// nothing.
func checkDest(dir string, force bool) (*dest, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("destination %s: %w", dir, err)
	}
	d := &dest{dir: abs, parent: filepath.Dir(abs), name: filepath.Base(abs)}
	if d.parent == abs {
		return nil, fmt.Errorf("destination %s: cannot restore into the root folder", abs)
	}
	if _, err := d.state(force); err != nil {
		return nil, err
	}
	return d, nil
}

// Destination states.
const (
	missing = iota
	empty
	full
)

// state says what dir holds now, and refuses what cannot be replaced.
func (d *dest) state(force bool) (int, error) {
	fi, err := os.Lstat(d.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return missing, nil
	case err != nil:
		return 0, fmt.Errorf("destination %s: %w", d.dir, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		return 0, fmt.Errorf("destination %s is a symbolic link: give the folder it points to", d.dir)
	case !fi.IsDir():
		return 0, fmt.Errorf("destination %s is not a folder", d.dir)
	}
	isEmpty, err := emptyDir(d.dir)
	switch {
	case err != nil:
		return 0, fmt.Errorf("destination %s: %w", d.dir, err)
	case isEmpty:
		return empty, nil
	case !force:
		return 0, fmt.Errorf("%w: %s holds files: restore into a new folder, or pass --force to replace its contents", ErrNotEmpty, d.dir)
	}
	return full, nil
}

func emptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	return false, err
}

// warnLeftovers names the folders that an interrupted restore into the
// same destination left beside it (a kill -9 gives no chance to clean up).
// They are never deleted here: another restore may be running, and an
// ".old-" folder holds what DIR held before a --force restore.
func (d *dest) warnLeftovers(log *slog.Logger) {
	entries, err := os.ReadDir(d.parent)
	if err != nil {
		return
	}
	kinds := []struct{ prefix, what string }{
		{"." + d.name + ".restore-", "the temporary folder of an interrupted restore; delete it once no restore into this folder runs"},
		{"." + d.name + ".old-", "the previous contents of the destination, moved aside by an interrupted --force restore; check it before you delete it"},
	}
	for _, e := range entries {
		for _, k := range kinds {
			if e.IsDir() && strings.HasPrefix(e.Name(), k.prefix) {
				log.Warn("a folder left by an earlier restore is beside the destination",
					"folder", filepath.Join(d.parent, e.Name()), "what", k.what)
			}
		}
	}
}

// temp makes the temporary folder beside the destination, and the
// destination's missing parents: only once the restore has a plan, so
// that a refused restore creates no folder.
func (d *dest) temp() (string, error) {
	if err := os.MkdirAll(d.parent, 0o755); err != nil {
		return "", fmt.Errorf("destination %s: %w", d.dir, err)
	}
	tmp, err := os.MkdirTemp(d.parent, "."+d.name+".restore-")
	if err != nil {
		return "", fmt.Errorf("make a temporary folder beside %s: %w", d.dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("make a temporary folder beside %s: %w", d.dir, err)
	}
	return tmp, nil
}

// install renames tmp into place. A destination that holds files (with
// force) is first renamed aside, and deleted once tmp is in place; if
// tmp cannot be renamed in, it is put back.
func (d *dest) install(tmp string, force bool, log *slog.Logger) error {
	if err := syncTree(tmp); err != nil {
		return err
	}
	st, err := d.state(force)
	if err != nil {
		return err
	}
	if st != full {
		// rename(2) replaces an empty folder atomically (os.Rename
		// refuses to).
		if err := syscall.Rename(tmp, d.dir); err != nil {
			return fmt.Errorf("move the restored database into %s: %w", d.dir, err)
		}
		return d.syncParent()
	}
	return d.replace(tmp, log)
}

// replace swaps a full destination for tmp.
func (d *dest) replace(tmp string, log *slog.Logger) error {
	old, err := os.MkdirTemp(d.parent, "."+d.name+".old-")
	if err != nil {
		return fmt.Errorf("make room beside %s: %w", d.dir, err)
	}
	if err := syscall.Rename(d.dir, old); err != nil {
		os.Remove(old)
		return fmt.Errorf("move the old contents of %s aside: %w", d.dir, err)
	}
	if err := os.Rename(tmp, d.dir); err != nil {
		if back := os.Rename(old, d.dir); back != nil {
			return fmt.Errorf("move the restored database into %s: %w; and the old contents stay in %s: %w", d.dir, err, old, back)
		}
		return fmt.Errorf("move the restored database into %s: %w", d.dir, err)
	}
	if err := d.syncParent(); err != nil {
		return err
	}
	if err := os.RemoveAll(old); err != nil {
		log.Error("the restore is in place, but the old contents could not be deleted", "dir", old, "error", err)
	}
	return nil
}

func (d *dest) syncParent() error {
	if err := syncDir(d.parent); err != nil {
		return fmt.Errorf("sync %s: %w", d.parent, err)
	}
	return nil
}

// syncTree syncs every file of the folder dir, then dir itself, so that
// the restored database is durable before it is renamed into place.
func syncTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		if err := syncFile(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Join(dir, e.Name()), err)
		}
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
