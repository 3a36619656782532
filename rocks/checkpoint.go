package rocks

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"

	"github.com/linxGnu/grocksdb"
)

// checkpointAttempts bounds the retries of Checkpoint.
const checkpointAttempts = 5

// Checkpoint writes a checkpoint of the database into dir, which must not
// exist, and returns its last sequence number. CheckpointFiles lists its
// files.
//
// SST files are hard-linked and the live WAL files copied without a flush,
// so the checkpoint can hold batches that the follower has not caught up
// to: the sequence returned is read by opening the checkpoint (read-only, as
// a restore would recover it), and can be ahead of LatestSequence.
//
// RocksDB builds the checkpoint from the follower's view as of its last
// CatchUp, with the WAL files that are live at the time of the call. Two
// things can go wrong when the writer moved on in between, and Checkpoint
// catches up and tries again (up to checkpointAttempts times) for both:
// a file that the follower still lists is gone (an error), or a WAL file
// that the follower's view still needs was moved to archive/ and left out,
// which RocksDB does not notice: the checkpoint would open at the writer's
// sequence with a hole. checkWALCoverage finds the latter.
func (f *Follower) Checkpoint(dir string) (seq uint64, err error) {
	if err := f.checkpointFiles(dir); err != nil {
		return 0, err
	}
	return checkpointSequence(dir)
}

// checkpointFiles is Checkpoint without reading the sequence: it writes
// the checkpoint into dir, catching up and trying again as Checkpoint says.
func (f *Follower) checkpointFiles(dir string) (err error) {
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rocks: checkpoint into %s: %w", dir, cmp.Or(err, fs.ErrExist))
	}
	for attempt := 1; ; attempt++ {
		if err = f.tryCheckpoint(dir); err == nil {
			return nil
		}
		if attempt == checkpointAttempts || errors.Is(err, ErrClosed) || errors.Is(err, ErrUnsupported) {
			return fmt.Errorf("%w (attempt %d)", err, attempt)
		}
		if err := f.CatchUp(); err != nil {
			return err
		}
	}
}

// checkpointSequence returns the last sequence of the checkpoint in dir,
// opened read-only as a restore would recover it (its WAL replayed).
func checkpointSequence(dir string) (uint64, error) {
	db, err := OpenReadOnly(dir)
	if err != nil {
		return 0, fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
	}
	defer db.Close()
	return db.LatestSequence(), nil
}

// tryCheckpoint creates a checkpoint and removes it again if it is
// incomplete.
func (f *Follower) tryCheckpoint(dir string) error {
	if err := f.createCheckpoint(dir); err != nil {
		return err
	}
	if err := checkWALCoverage(dir); err != nil {
		if rmErr := os.RemoveAll(dir); rmErr != nil {
			return fmt.Errorf("%w; removing it: %w", err, rmErr)
		}
		return err
	}
	return nil
}

func (f *Follower) createCheckpoint(dir string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.h == nil {
		return fmt.Errorf("rocks: checkpoint %s: %w", f.dir, ErrClosed)
	}
	cp, err := f.h.db.NewCheckpoint()
	if err != nil {
		return fmt.Errorf("rocks: checkpoint %s: %w", f.dir, err)
	}
	defer cp.Destroy()
	// A flush threshold of MaxUint64 never flushes: a secondary cannot.
	if err := cp.CreateCheckpoint(dir, math.MaxUint64); err != nil {
		return fmt.Errorf("rocks: checkpoint %s into %s: %w", f.dir, dir, err)
	}
	return nil
}

// checkWALCoverage checks that the WAL files of a checkpoint start no later
// than right after the last sequence of its MANIFEST, so that recovery
// replays every batch that its SST files lack. (The MANIFEST's last
// sequence is at or after the point up to which every column family is in
// SST files, and the live WAL files of a database always reach back that
// far; the files that can be missing are the oldest ones.)
func checkWALCoverage(dir string) error {
	flushed, err := manifestSequence(dir)
	if err != nil {
		return err
	}
	first, ok, err := oldestWALSequence(dir)
	if err != nil || !ok || first <= flushed+1 {
		return err
	}
	return fmt.Errorf("rocks: checkpoint %s is incomplete: its sst files end at seq %d, its wal starts at seq %d (the writer archived a wal file that the checkpoint needed)",
		dir, flushed, first)
}

// manifestSequence opens dir read-only without its WAL (an empty wal_dir)
// and returns the last sequence that its MANIFEST records.
func manifestSequence(dir string) (uint64, error) {
	noWAL, err := os.MkdirTemp("", "rocks-nowal-")
	if err != nil {
		return 0, fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
	}
	defer os.RemoveAll(noWAL)
	names, err := listColumnFamilies(dir)
	if err != nil {
		return 0, err
	}
	opts := newOptions()
	opts.SetWalDir(noWAL)
	h, err := openHandle(dir, names, opts, func(o *grocksdb.Options, n []string, co []*grocksdb.Options) (
		*grocksdb.DB, []*grocksdb.ColumnFamilyHandle, error) {
		return grocksdb.OpenDbForReadOnlyColumnFamilies(o, dir, n, co, false)
	})
	if err != nil {
		return 0, err
	}
	defer h.close()
	return h.latestSequence(), nil
}
