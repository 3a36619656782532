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
	lock   *os.File // the lock of the temporary folder, while it exists
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

// Prefixes of the folders a restore makes beside its destination.
const (
	// tempPrefix names the temporary folder of a restore: the restore holds
	// an exclusive flock(2) on it while it runs, so that a later restore
	// can tell a folder left by a killed one (no lock) from one in use.
	tempPrefix = ".restoring-"
	// legacyTempPrefix named it before the lock existed: such a folder
	// cannot be told from one in use by an older build, so it is only
	// named in a warning.
	legacyTempPrefix = ".restore-"
	// oldPrefix names what DIR held before a --force restore, moved aside
	// until the new contents are in place.
	oldPrefix = ".old-"
)

// cleanLeftovers deals with the folders that interrupted restores into the
// same destination left beside it (a kill -9 gives no chance to clean up).
// A temporary folder whose lock nobody holds is removed: its restore is
// gone. One that is locked belongs to a restore that is running, and is
// left alone. An ".old-" folder holds what DIR held before a --force
// restore and a legacy temporary folder may be in use by an older build:
// those are never deleted here, only named in a warning.
func (d *dest) cleanLeftovers(log *slog.Logger) {
	entries, err := os.ReadDir(d.parent)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "."+d.name+".") {
			continue
		}
		path := filepath.Join(d.parent, e.Name())
		switch rest := strings.TrimPrefix(e.Name(), "."+d.name); {
		case strings.HasPrefix(rest, tempPrefix):
			removeAbandoned(path, log)
		case strings.HasPrefix(rest, legacyTempPrefix):
			log.Warn("a folder left by an earlier restore is beside the destination", "folder", path,
				"what", "the temporary folder of an interrupted restore by an older build; delete it once no restore into this folder runs")
		case strings.HasPrefix(rest, oldPrefix):
			log.Warn("a folder left by an earlier restore is beside the destination", "folder", path,
				"what", "the previous contents of the destination, moved aside by an interrupted --force restore; check it before you delete it")
		}
	}
}

// CleanLeftovers does for the destination dir what a restore into it
// does first: it removes the temporary folders that killed restores left
// beside it and warns of the folders it cannot judge (see Run). A
// standby calls it at every start, not only when it bootstraps.
func CleanLeftovers(dir string, log *slog.Logger) {
	abs, err := filepath.Abs(dir)
	if err != nil || filepath.Dir(abs) == abs {
		return
	}
	d := &dest{dir: abs, parent: filepath.Dir(abs), name: filepath.Base(abs)}
	d.cleanLeftovers(log)
}

// removeAbandoned removes the temporary folder of a restore that no longer
// runs (nobody holds its lock).
func removeAbandoned(path string, log *slog.Logger) {
	lock, err := tryLock(path)
	if err != nil {
		log.Info("a restore into the same folder is running; its temporary folder is left alone", "folder", path, "error", err)
		return
	}
	defer lock.Close()
	if err := os.RemoveAll(path); err != nil {
		log.Warn("cannot remove the temporary folder of an interrupted restore", "folder", path, "error", err)
		return
	}
	log.Info("removed the temporary folder of an interrupted restore", "folder", path)
}

// tryLock takes an exclusive flock(2) on the folder dir without waiting:
// the lock lasts until the returned file is closed or its process ends.
func tryLock(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}

// temp makes the temporary folder beside the destination, and the
// destination's missing parents: only once the restore has a plan, so
// that a refused restore creates no folder. The folder is locked until
// unlock.
func (d *dest) temp() (string, error) {
	if err := os.MkdirAll(d.parent, 0o755); err != nil {
		return "", fmt.Errorf("destination %s: %w", d.dir, err)
	}
	tmp, err := os.MkdirTemp(d.parent, "."+d.name+tempPrefix)
	if err != nil {
		return "", fmt.Errorf("make a temporary folder beside %s: %w", d.dir, err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("make a temporary folder beside %s: %w", d.dir, err)
	}
	if d.lock, err = tryLock(tmp); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("make a temporary folder beside %s: %w", d.dir, err)
	}
	return tmp, nil
}

// unlock releases the lock of the temporary folder (once it is installed
// or removed).
func (d *dest) unlock() {
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
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
	old, err := os.MkdirTemp(d.parent, "."+d.name+oldPrefix)
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
