package rocks

import (
	"fmt"
	"os"
	"path/filepath"
)

// readWALFiles reads every batch of the WAL files (<number>.log) of dir, in
// order, as finished files, and gives each to fn.
func readWALFiles(dir string, fn func(path string, off int64, payload []byte) error) error {
	paths, err := walFiles(dir)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, walReadChunk)
	for _, path := range paths {
		num, _ := walNumber(filepath.Base(path))
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("rocks: read wal: %w", err)
		}
		w := &walFile{num: num, path: path, f: f, buf: buf, finished: true}
		err = readAllRecords(w, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func readAllRecords(w *walFile, fn func(path string, off int64, payload []byte) error) error {
	for {
		payload, _, res, err := w.read()
		if err != nil || res != readRecord {
			return err
		}
		if err := fn(w.path, w.recOff, payload); err != nil {
			return err
		}
	}
}

// PreparedIn reads the WAL files of dir (a base's copies of the source's
// WAL) and returns the two-phase-commit transactions that the batches up to
// sequence upTo prepared and did not commit or roll back: what a copy that
// holds exactly the batches up to upTo must know to apply the commits that
// come after (DB.Prepared). A batch that uses no sequence and starts at
// upTo+1 is after upTo. A commit whose prepare is older than the files is
// taken as ending nothing that counts here.
func PreparedIn(dir string, upTo uint64) (*Txns, error) {
	txns := &Txns{lenient: true}
	err := readWALFiles(dir, func(path string, off int64, payload []byte) error {
		seq, _, err := batchHeader(payload)
		if err != nil || seq > upTo {
			return err
		}
		if _, err := txns.Span(payload); err != nil {
			return fmt.Errorf("rocks: read wal %s at offset %d: %w", path, off, err)
		}
		return nil
	})
	txns.lenient = false
	return txns, err
}
