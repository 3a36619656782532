package rocks

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// checkpointAttempts bounds the retries of Checkpoint.
const checkpointAttempts = 5

// Checkpoint writes a checkpoint of the database into dir, which must not
// exist, and returns its last sequence number. CheckpointFiles lists its
// files.
//
// SST files are hard-linked and the live WAL files copied without a flush,
// so the checkpoint can hold batches that the follower has not caught up
// to: the sequence returned is the one that recovery of the checkpoint
// reaches, read in Go from its MANIFEST and WAL (checkpointSequence), and
// can be ahead of LatestSequence.
//
// The sidecar (FollowerSource) no longer checkpoints through a secondary:
// see CopyCheckpoint. A secondary aborts on 2PC markers in the WAL and
// crashes on an integrated BlobDB database.
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

// checkpointSequence returns the last sequence that recovery of the
// checkpoint in dir reaches, read in Go (checkpointDirSequence): the larger
// of its MANIFEST's last sequence and the end of the last complete batch of
// its WAL files. No RocksDB instance opens it: a read-only open aborts the
// process when the database tracks WALs in its MANIFEST
// (track_and_verify_wals_in_manifest) and our options do not
// (db_impl_open.cc:624, assert(recovery_ctx != nullptr)).
func checkpointSequence(dir string) (uint64, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return 0, fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
	}
	paths, err := walFiles(dir)
	if err != nil {
		return 0, err
	}
	seq := m.LastSequence
	for _, p := range paths {
		num, _ := walNumber(filepath.Base(p))
		scan, err := scanWAL(p, num)
		if err != nil {
			return 0, fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
		}
		seq = max(seq, scan.lastSeq)
	}
	return seq, nil
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

// manifestSequence returns the last sequence that the MANIFEST of the
// checkpoint in dir records: the point up to which its SST files hold the
// database, before the WAL is replayed.
func manifestSequence(dir string) (uint64, error) {
	m, err := ReadManifest(dir)
	if err != nil {
		return 0, fmt.Errorf("rocks: checkpoint %s: %w", dir, err)
	}
	return m.LastSequence, nil
}
