package rocks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/segments"
)

// FollowerSource is the archiver's Source for a database that another
// process writes: the sidecar. It follows the database as a secondary
// instance and never changes its files.
type FollowerSource struct {
	f       *Follower
	dir     string
	updates *Updates
	from    uint64
	first   bool
}

var _ archive.Source = (*FollowerSource)(nil)

// NewFollowerSource follows the database in dbDir, keeping the secondary
// instance's own files in scratchDir.
func NewFollowerSource(dbDir, scratchDir string) (*FollowerSource, error) {
	f, err := OpenFollower(dbDir, scratchDir)
	if err != nil {
		return nil, err
	}
	return &FollowerSource{f: f, dir: dbDir}, nil
}

// Follower is the followed database, for reads.
func (s *FollowerSource) Follower() *Follower { return s.f }

// Close releases the follower.
func (s *FollowerSource) Close() error { return s.f.Close() }

// Identity is the database's IDENTITY.
func (s *FollowerSource) Identity() (string, error) { return s.f.Identity(), nil }

// Refresh catches up with the writer.
func (s *FollowerSource) Refresh() error { return s.f.CatchUp() }

// Seek makes Next continue at seq.
func (s *FollowerSource) Seek(seq uint64) error {
	if s.updates != nil {
		s.updates.Close()
	}
	u, err := s.f.Updates(seq)
	if err != nil {
		return err
	}
	s.updates, s.from, s.first = u, max(seq, 1), true
	return nil
}

// Next returns the next batch. A WAL gap matches archive.ErrGap.
func (s *FollowerSource) Next() (segments.Batch, bool, error) {
	if s.updates == nil {
		return segments.Batch{}, false, errors.New("rocks: Next before Seek")
	}
	b, ok, err := s.updates.Next()
	if errors.Is(err, ErrGap) {
		return segments.Batch{}, false, fmt.Errorf("%w: %w", archive.ErrGap, err)
	}
	if err != nil || !ok {
		return segments.Batch{}, ok, err
	}
	if s.first && b.Seq != s.from {
		return segments.Batch{}, false, fmt.Errorf("rocks: %s: the WAL from %d starts with a batch at %d: not a batch boundary", s.dir, s.from, b.Seq)
	}
	s.first = false
	return segments.Batch{Seq: b.Seq, Count: b.Count, Data: b.Data}, true, nil
}

// Checkpoint writes a checkpoint into dir, with the database's IDENTITY
// and newest OPTIONS file, which a secondary's checkpoint lacks.
func (s *FollowerSource) Checkpoint(dir string) (uint64, error) {
	seq, err := s.f.Checkpoint(dir)
	if err != nil {
		return 0, err
	}
	if err := copyMeta(s.dir, dir); err != nil {
		return 0, err
	}
	return seq, nil
}

// copyMeta copies IDENTITY and the newest OPTIONS-* file of the database in
// dbDir into the checkpoint in dir, where missing.
func copyMeta(dbDir, dir string) error {
	names := []string{"IDENTITY"}
	opts, _ := filepath.Glob(filepath.Join(dbDir, "OPTIONS-*"))
	sort.Slice(opts, func(i, j int) bool { return optionsNumber(opts[i]) < optionsNumber(opts[j]) })
	if n := len(opts); n > 0 && !strings.HasSuffix(opts[n-1], ".dbtmp") {
		names = append(names, filepath.Base(opts[n-1]))
	}
	for _, name := range names {
		dst := filepath.Join(dir, name)
		if _, err := os.Stat(dst); err == nil {
			continue
		}
		if err := copyFile(filepath.Join(dbDir, name), dst); err != nil {
			return fmt.Errorf("rocks: checkpoint %s: copy %s: %w", dir, name, err)
		}
	}
	return nil
}

func optionsNumber(path string) int64 {
	var n int64
	fmt.Sscanf(strings.TrimPrefix(filepath.Base(path), "OPTIONS-"), "%d", &n)
	return n
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
