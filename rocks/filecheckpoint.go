package rocks

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// CopiedCheckpoint says what CopyCheckpoint copied.
type CopiedCheckpoint struct {
	Seq      uint64    // the last sequence that recovery of the checkpoint reaches
	Manifest *Manifest // the MANIFEST as copied
	Retries  int       // rounds taken again because a file vanished under the copy
	Linked   int       // SST and blob files hard-linked (or copied across devices)
	WALs     []string  // the WAL files copied, by number
	WALBytes int64
}

// copyRounds bounds CopyCheckpoint's rounds. A round is cheap: it reads
// the MANIFEST on from where the last one stopped, links what became live
// and copies the WAL again.
const copyRounds = 50

// errVanished: a file that the MANIFEST names went away before it was
// linked or copied (a compaction, a WAL moved to archive/ or deleted).
var errVanished = errors.New("a file vanished under the checkpoint")

// CopyCheckpoint writes a checkpoint of the database in dbDir (its WAL
// files in walDir, "" for dbDir) into dir, which must not exist, with no
// RocksDB instance: it copies the bytes of the MANIFEST up to its last
// complete edit and writes a CURRENT naming the copy, hard-links every SST
// and blob file that this MANIFEST lists (copies them across devices),
// copies the newest OPTIONS file and IDENTITY, and copies the WAL files that
// recovery replays or checks: every one from the oldest that a column
// family still needs (its log number, or the MANIFEST's min log number to
// keep when lower) on, in walDir or walDir/archive, and every WAL that the
// MANIFEST tracks with a synced size (WalSet::CheckWals, db/wal_edit.cc
// fails on one missing or shorter). The WAL files are copied newest first,
// so that an older file, whose last records RocksDB can write right after
// it created the next one, is copied after its successor and holds every
// batch before that successor's first; each copy is cut at the end of its
// last complete record, so that recovery sees no torn tail.
//
// The writer goes on meanwhile: when a file vanished between the read of
// the MANIFEST and its link or copy, the round is taken again with the
// MANIFEST read on (or from the start, when CURRENT names a new one).
//
// The checkpoint's WAL files are in dir itself: open it with wal_dir unset
// (or set to dir). Seq is the last sequence that recovery reaches: the
// larger of the MANIFEST's last sequence and the end of the last batch of
// the WAL copies.
func CopyCheckpoint(dbDir, walDir, dir string) (CopiedCheckpoint, error) {
	walDir = cmp.Or(walDir, dbDir)
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		return CopiedCheckpoint{}, fmt.Errorf("rocks: checkpoint into %s: %w", dir, cmp.Or(err, fs.ErrExist))
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return CopiedCheckpoint{}, fmt.Errorf("rocks: checkpoint into %s: %w", dir, err)
	}
	c := &copier{dbDir: dbDir, walDir: walDir, dir: dir, linked: map[string]bool{}}
	defer c.close()
	res, err := c.run()
	if err != nil {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			err = fmt.Errorf("%w; removing it: %w", err, rmErr)
		}
		return CopiedCheckpoint{}, err
	}
	return res, nil
}

// afterManifestRead, when set (by tests), runs in each round between the
// read of the MANIFEST and the links.
var afterManifestRead func()

// copier is one CopyCheckpoint.
type copier struct {
	dbDir, walDir, dir string
	mr                 *manifestReader
	linked             map[string]bool // SST and blob files in dir
	wals               []walCopy
}

// walCopy is a WAL file copied into the checkpoint.
type walCopy struct {
	num     uint64
	name    string
	size    int64  // after the cut
	lastSeq uint64 // the last sequence of its last batch; 0: none
	twoPC   bool   // it holds two-phase-commit markers (see copier.sequence)
	// first, next and gap: see walScan
	first, next, gap uint64
}

func (c *copier) close() {
	if c.mr != nil {
		c.mr.close()
	}
}

func (c *copier) run() (CopiedCheckpoint, error) {
	var res CopiedCheckpoint
	var err error
	for round := 1; ; round++ {
		if err = c.round(); !errors.Is(err, errVanished) {
			break
		}
		if round == copyRounds {
			return res, fmt.Errorf("rocks: checkpoint of %s: %w, %d rounds in a row (%w)", c.dbDir, errVanished, round, err)
		}
		res.Retries++
	}
	if err != nil {
		return res, err
	}
	if err := c.finish(); err != nil {
		return res, err
	}
	res.Manifest = c.mr.st.manifest(c.mr.name)
	res.Linked = len(c.linked)
	if res.Seq, err = c.sequence(res.Manifest.LastSequence); err != nil {
		return res, err
	}
	for _, w := range c.wals {
		res.WALs = append(res.WALs, w.name)
		res.WALBytes += w.size
	}
	return res, nil
}

// round reads the MANIFEST (on), links its live files and copies the WAL.
func (c *copier) round() error {
	if err := c.openManifest(); err != nil {
		return err
	}
	if err := c.mr.read(); err != nil {
		return err
	}
	m := c.mr.st.manifest(c.mr.name)
	if afterManifestRead != nil {
		afterManifestRead()
	}
	if err := c.linkLive(m); err != nil {
		return err
	}
	return c.copyWALs(m)
}

// openManifest opens the MANIFEST that CURRENT names, unless the one open
// is still it; a new one starts the checkpoint over.
func (c *copier) openManifest() error {
	mr, err := openManifest(c.dbDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && c.mr != nil {
			return fmt.Errorf("%w: %w", errVanished, err) // CURRENT was just replaced
		}
		return err
	}
	if c.mr != nil && c.mr.name == mr.name {
		mr.close()
		return nil
	}
	if c.mr != nil {
		c.mr.close()
	}
	c.mr = mr
	return nil
}

// tableName and blobName are RocksDB's names for SST and blob files
// (file/filename.cc).
func tableName(n uint64) string { return fmt.Sprintf("%06d.sst", n) }
func blobName(n uint64) string  { return fmt.Sprintf("%06d.blob", n) }

// linkLive links the files that m lists and dir lacks, and removes those
// that it no longer lists.
func (c *copier) linkLive(m *Manifest) error {
	want := map[string]bool{}
	for _, f := range m.Families {
		for _, t := range f.Files {
			want[tableName(t.Number)] = true
		}
		for _, b := range f.Blobs {
			want[blobName(b.Number)] = true
		}
	}
	for name := range c.linked {
		if !want[name] {
			if err := os.Remove(filepath.Join(c.dir, name)); err != nil {
				return fmt.Errorf("rocks: checkpoint into %s: %w", c.dir, err)
			}
			delete(c.linked, name)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if c.linked[name] {
			continue
		}
		if err := linkOrCopy(filepath.Join(c.dbDir, name), filepath.Join(c.dir, name)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("%w: %w", errVanished, err)
			}
			return fmt.Errorf("rocks: checkpoint into %s: %w", c.dir, err)
		}
		c.linked[name] = true
	}
	return nil
}

// linkOrCopy hard-links src to dst, or copies it when they are on
// different devices (or the file system has no hard links).
func linkOrCopy(src, dst string) error {
	err := os.Link(src, dst)
	if err == nil || !(errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP)) {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = copyFile(in, dst, -1)
	return err
}

// copyFile copies n bytes of in (all when n < 0) into a new file dst.
func copyFile(in io.Reader, dst string, n int64) (int64, error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, err
	}
	var copied int64
	if n < 0 {
		copied, err = io.Copy(out, in)
	} else {
		copied, err = io.CopyN(out, in, n)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(dst)
		return 0, fmt.Errorf("copy into %s: %w", dst, err)
	}
	return copied, nil
}

// finish writes the MANIFEST's copy, CURRENT, IDENTITY and OPTIONS.
func (c *copier) finish() error {
	dst := filepath.Join(c.dir, c.mr.name)
	if _, err := copyFile(io.NewSectionReader(c.mr.f, 0, c.mr.st.applied), dst, c.mr.st.applied); err != nil {
		return fmt.Errorf("rocks: checkpoint into %s: %w", c.dir, err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "CURRENT"), []byte(c.mr.name+"\n"), 0o644); err != nil {
		return fmt.Errorf("rocks: checkpoint into %s: %w", c.dir, err)
	}
	return copyDBMeta(c.dbDir, c.dir)
}
