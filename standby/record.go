package standby

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rockstream/rockstream/internal/durable"
	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/promote"
	"github.com/rockstream/rockstream/rocks"
)

// timelineFile holds the followed timeline, in the database's folder, and
// the promotion once the standby was promoted. It is local to the folder,
// not part of the bucket format: {"timeline": K}, with "promoted" added by
// a promotion; a file without it (any older version's) is a standby's.
const timelineFile = "STANDBY-TIMELINE"

// timelineDoc is the content of timelineFile.
type timelineDoc struct {
	// Timeline is the timeline the standby follows (followed, once
	// promoted).
	Timeline uint32 `json:"timeline"`
	// Promoted is set once the folder's database was promoted: it is then
	// the primary of Promoted.Timeline, and no standby any more.
	Promoted *promotionDoc `json:"promoted,omitempty"`
}

// promotionDoc records a promotion of the folder's database.
type promotionDoc struct {
	Timeline uint32    `json:"timeline"`
	Parent   uint32    `json:"parent"`
	Branch   uint64    `json:"branch"`
	Epoch    uint64    `json:"epoch"`
	WriterID string    `json:"writer_id"`
	Marker   string    `json:"marker"`
	Since    time.Time `json:"since"`
}

func (p *promotionDoc) result() promote.Result {
	return promote.Result{Timeline: p.Timeline, Parent: p.Parent, Branch: p.Branch, Epoch: p.Epoch, WriterID: p.WriterID, Marker: p.Marker}
}

// writeTimeline records the followed timeline.
func writeTimeline(dir string, tl uint32) error {
	return writeRecord(dir, timelineDoc{Timeline: tl})
}

// RecordPromotion records in dir, the folder of a standby, that its
// database was promoted (res): a standby started on it later does not
// follow the archive, and reports the promotion (Promoted) instead.
// `rockstream promote --from` calls it; a promotion of a running Standby
// records itself.
func RecordPromotion(dir string, res promote.Result) error {
	return writeRecord(dir, timelineDoc{Timeline: res.Parent, Promoted: &promotionDoc{
		Timeline: res.Timeline, Parent: res.Parent, Branch: res.Branch, Epoch: res.Epoch,
		WriterID: res.WriterID, Marker: res.Marker, Since: time.Now().UTC().Truncate(time.Second)}})
}

// writeRecord writes the record: temporary file, sync, rename, sync of the
// folder.
func writeRecord(dir string, doc timelineDoc) error {
	data, _ := json.Marshal(doc)
	if err := durable.WriteFile(filepath.Join(dir, timelineFile), data); err != nil {
		return fmt.Errorf("record the standby's timeline in %s: %w", dir, err)
	}
	return nil
}

// readRecord reads the record in dir; found is false when there is none.
func readRecord(dir string) (doc timelineDoc, found bool, err error) {
	path := filepath.Join(dir, timelineFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return doc, false, nil
	}
	if err == nil {
		err = json.Unmarshal(data, &doc)
	}
	if err != nil {
		return doc, false, fmt.Errorf("read %s: %w", path, err)
	}
	return doc, true, nil
}

// RecordedTimeline is the timeline that the standby in dir follows: the
// one its STANDBY-TIMELINE file records (ErrRebuild when m does not have
// it); without that file, for a folder that holds the database, the
// timeline of m's current path that holds its sequence, or ErrRebuild when
// that cannot be told (unrecordedTimeline).
func RecordedTimeline(dir string, m *manifest.Manifest) (uint32, error) {
	doc, found, err := readRecord(dir)
	if err != nil {
		return 0, err
	}
	return recordedTimeline(dir, m, doc, found)
}

func recordedTimeline(dir string, m *manifest.Manifest, doc timelineDoc, found bool) (uint32, error) {
	if !found {
		return unrecordedTimeline(dir, m)
	}
	if _, ok := m.Timeline(doc.Timeline); !ok {
		return 0, fmt.Errorf("read %s: timeline %d is not in the archive's manifest: %w", filepath.Join(dir, timelineFile), doc.Timeline, ErrRebuild)
	}
	return doc.Timeline, nil
}

// unrecordedTimeline is the timeline of a folder that holds this archive's
// database but no timeline record: a bootstrap by a version that wrote the
// record after the rename, cut short in between, or a database put there by
// hand. Every history of the archive agrees up to the lowest branch point,
// so a database at or below it follows the timeline of the current path
// that holds its sequence (from there it goes on to the child at each
// branch point); above it, which history the database holds cannot be
// told, and it is refused.
func unrecordedTimeline(dir string, m *manifest.Manifest) (uint32, error) {
	db, err := rocks.OpenReadOnly(dir)
	if err != nil {
		return 0, fmt.Errorf("standby into %s: %w", dir, err)
	}
	seq := db.LatestSequence()
	db.Close()
	for _, t := range m.Timelines {
		if t.Parent != 0 && t.Branch < seq {
			return 0, fmt.Errorf("standby into %s: %w: it holds this archive's database at sequence %d but no %s record, "+
				"and timeline %d branches from timeline %d at %d, before it, so which history it holds cannot be told: "+
				"empty the folder and start the standby again, or, if you know its timeline N, write {\"timeline\": N} into %s",
				dir, ErrRebuild, seq, timelineFile, t.ID, t.Parent, t.Branch, filepath.Join(dir, timelineFile))
		}
	}
	return holding(m, seq), nil
}

// holding returns the timeline on the path from the root to the current
// timeline that holds sequence seq: the current one, or the ancestor whose
// child on the path branches at or after seq.
func holding(m *manifest.Manifest, seq uint64) uint32 {
	cur, ok := m.Timeline(currentTimeline(m))
	for ok && cur.Parent != 0 && seq < cur.Branch {
		cur, ok = m.Timeline(cur.Parent)
	}
	if !ok {
		return currentTimeline(m) // a broken path: the follow loop says so
	}
	return cur.ID
}
