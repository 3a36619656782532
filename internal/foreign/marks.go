package foreign

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Mark is the exact state the writer had at one point: its latest sequence,
// taken while no write was in flight, and the digest of every family. The
// marks file holds one JSON object per line.
type Mark struct {
	Name     string `json:"name"`  // "initial", "mark", "final" (or "verify")
	Batch    int    `json:"batch"` // batches written before it
	Seq      uint64 `json:"seq"`
	Families Digest `json:"families"`
	// Checkpoint is a RocksDB checkpoint of the database at the mark, for
	// key-by-key comparisons.
	Checkpoint string `json:"checkpoint,omitempty"`
}

// TakeMark records the state after batch batches: it flushes the WAL buffer
// (manual_wal_flush), takes a checkpoint into cpDir (when not empty) and
// digests every family. A TransactionDB's sequence is read from the
// checkpoint, opened read-only as a plain DB.
func (a *App) TakeMark(name string, batch int, cpDir string) (Mark, error) {
	if err := a.FlushWAL(); err != nil {
		return Mark{}, fmt.Errorf("foreign: flush the WAL at mark %s: %w", name, err)
	}
	m := Mark{Name: name, Batch: batch}
	seq, ok := a.Sequence()
	if cpDir != "" {
		if err := a.Checkpoint(cpDir); err != nil {
			return Mark{}, err
		}
		m.Checkpoint = cpDir
		if !ok {
			s, err := checkpointSequence(a.shape, cpDir)
			if err != nil {
				return Mark{}, err
			}
			seq, ok = s, true
		}
	}
	if !ok {
		return Mark{}, fmt.Errorf("foreign: %s: no sequence without a checkpoint", a.shape.Name)
	}
	d, err := a.Digest()
	if err != nil {
		return Mark{}, err
	}
	m.Seq, m.Families = seq, d
	return m, nil
}

func checkpointSequence(shape *Shape, dir string) (uint64, error) {
	cp := *shape
	cp.WALDir = false // a checkpoint holds its WAL files
	c, err := Open(&cp, dir, ReadOnly)
	if err != nil {
		return 0, fmt.Errorf("foreign: read the sequence of checkpoint %s: %w", dir, err)
	}
	defer c.Close()
	s, _ := c.Sequence()
	return s, nil
}

// AppendMark adds m as one line to the file at path.
func AppendMark(path string, m Mark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("foreign: marks file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("foreign: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("foreign: sync %s: %w", path, err)
	}
	return f.Close()
}

// ReadMarks reads a marks file.
func ReadMarks(path string) ([]Mark, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("foreign: marks file: %w", err)
	}
	defer f.Close()
	var ms []Mark
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 16<<20)
	for line := 1; sc.Scan(); line++ {
		var m Mark
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("foreign: %s line %d: %w", path, line, err)
		}
		ms = append(ms, m)
	}
	return ms, sc.Err()
}

// CheckpointDir is where the writer puts the checkpoint of the mark name
// after batch batches: beside the marks file.
func CheckpointDir(marksFile, name string, batch int) string {
	return filepath.Join(filepath.Dir(marksFile), fmt.Sprintf("cp-%06d-%s", batch, name))
}
