package manifest

import (
	"cmp"
	"fmt"
	"slices"
)

// Lengths of the free-text fields, in bytes.
const (
	maxIdentityLen = 128
	maxRevisionLen = 64
	maxWriterLen   = 256
	maxReasonLen   = 1024
	maxDigestLen   = 256
)

// Validate checks every rule of the manifest format. Load and Parse call it
// on what they read, Create and Commit on what they write. The error is a
// *ValidationError naming the first bad field.
func (m *Manifest) Validate() error {
	if err := m.checkHeader(); err != nil {
		return err
	}
	tls, err := m.checkTimelines()
	if err != nil {
		return err
	}
	if err := m.checkBases(tls); err != nil {
		return err
	}
	if err := m.checkHoles(tls); err != nil {
		return err
	}
	if err := m.checkCFChanges(tls); err != nil {
		return err
	}
	return m.checkWriter(tls)
}

func (m *Manifest) checkHeader() error {
	if m.Format < Format || m.Format > FormatEncrypted {
		return invalid("format", "version %d is not supported: this rockstream reads %s", m.Format, formatsText(FormatEncrypted))
	}
	if err := m.checkEncryption(); err != nil {
		return err
	}
	if err := checkText("identity", m.Identity, 1, maxIdentityLen); err != nil {
		return err
	}
	return checkText("revision", m.Revision, 1, maxRevisionLen)
}

// checkTimelines checks ids, parents and branch points, and returns the
// timelines by id. A parent has a lower id than its child, which rules out
// cycles.
func (m *Manifest) checkTimelines() (map[uint32]Timeline, error) {
	if err := checkCount("timelines", len(m.Timelines), 1); err != nil {
		return nil, err
	}
	tls := make(map[uint32]Timeline, len(m.Timelines))
	for i, t := range m.Timelines {
		if t.ID == 0 {
			return nil, invalid(fmt.Sprintf("timelines[%d].id", i), "0 (ids start at 1)")
		}
		if _, dup := tls[t.ID]; dup {
			return nil, invalid(fmt.Sprintf("timelines[%d].id", i), "timeline %d is listed twice", t.ID)
		}
		tls[t.ID] = t
	}
	for i, t := range m.Timelines {
		if err := checkParent(i, t, tls); err != nil {
			return nil, err
		}
	}
	return tls, nil
}

func checkParent(i int, t Timeline, tls map[uint32]Timeline) error {
	field := fmt.Sprintf("timelines[%d]", i)
	if t.Parent == 0 {
		if t.Branch != 0 {
			return invalid(field+".branch", "%d on timeline %d, which has no parent", t.Branch, t.ID)
		}
		return nil
	}
	p, ok := tls[t.Parent]
	switch {
	case !ok:
		return invalid(field+".parent", "timeline %d has parent %d, which does not exist", t.ID, t.Parent)
	case t.Parent >= t.ID:
		return invalid(field+".parent", "timeline %d has parent %d: a parent must have a lower id (a cycle?)", t.ID, t.Parent)
	case t.Branch > MaxSequence:
		return invalid(field+".branch", "%d is beyond the largest sequence %d", t.Branch, uint64(MaxSequence))
	case p.Parent != 0 && t.Branch < p.Branch:
		return invalid(field+".branch", "timeline %d branches at %d, before its parent %d's own branch point %d", t.ID, t.Branch, p.ID, p.Branch)
	}
	return nil
}

func (m *Manifest) checkBases(tls map[uint32]Timeline) error {
	if err := checkCount("bases", len(m.Bases), 0); err != nil {
		return err
	}
	seen := make(map[string]int, len(m.Bases))
	for i, b := range m.Bases {
		if err := checkBase(fmt.Sprintf("bases[%d]", i), b, tls); err != nil {
			return err
		}
		if j, dup := seen[b.FileList]; dup {
			return invalid(fmt.Sprintf("bases[%d]", i), "same timeline and sequence as bases[%d]", j)
		}
		seen[b.FileList] = i
	}
	return nil
}

func checkBase(field string, b Base, tls map[uint32]Timeline) error {
	t, ok := tls[b.Timeline]
	switch {
	case !ok:
		return invalid(field+".timeline", "no timeline %d", b.Timeline)
	case b.Sequence > MaxSequence:
		return invalid(field+".sequence", "%d is beyond the largest sequence %d", b.Sequence, uint64(MaxSequence))
	case t.Parent != 0 && b.Sequence < t.Branch:
		return invalid(field+".sequence", "%d is before the branch point %d of timeline %d", b.Sequence, t.Branch, t.ID)
	case b.Size < 0 || b.Size > MaxBaseSize:
		return invalid(field+".size", "%d is not between 0 and %d", b.Size, int64(MaxBaseSize))
	case b.FileCount < 1 || b.FileCount > MaxFiles:
		return invalid(field+".file_count", "%d is not between 1 and %d", b.FileCount, MaxFiles)
	}
	if err := checkKey(field+".file_list", b.FileList, FileListKey(b.Timeline, b.Sequence)); err != nil {
		return err
	}
	return checkText(field+".digest", b.Digest, 0, maxDigestLen)
}

func (m *Manifest) checkHoles(tls map[uint32]Timeline) error {
	if err := checkCount("holes", len(m.Holes), 0); err != nil {
		return err
	}
	for i, h := range m.Holes {
		if err := checkHole(fmt.Sprintf("holes[%d]", i), h, tls); err != nil {
			return err
		}
	}
	return checkHoleOverlap(m.Holes)
}

func checkHole(field string, h Hole, tls map[uint32]Timeline) error {
	t, ok := tls[h.Timeline]
	switch {
	case !ok:
		return invalid(field+".timeline", "no timeline %d", h.Timeline)
	case h.From > h.To:
		return invalid(field+".from", "from %d is after to %d", h.From, h.To)
	case h.To > MaxSequence:
		return invalid(field+".to", "%d is beyond the largest sequence %d", h.To, uint64(MaxSequence))
	case t.Parent != 0 && h.From <= t.Branch:
		return invalid(field+".from", "%d is not after the branch point %d of timeline %d", h.From, t.Branch, t.ID)
	}
	return checkText(field+".reason", h.Reason, 1, maxReasonLen)
}

// checkHoleOverlap refuses two holes of one timeline that share a sequence.
func checkHoleOverlap(holes []Hole) error {
	idx := make([]int, len(holes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(holes[a].Timeline, holes[b].Timeline), cmp.Compare(holes[a].From, holes[b].From))
	})
	for k := 1; k < len(idx); k++ {
		p, h := holes[idx[k-1]], holes[idx[k]]
		if p.Timeline == h.Timeline && h.From <= p.To {
			return invalid(fmt.Sprintf("holes[%d]", idx[k]), "[%d, %d] overlaps holes[%d] [%d, %d] on timeline %d",
				h.From, h.To, idx[k-1], p.From, p.To, h.Timeline)
		}
	}
	return nil
}

func (m *Manifest) checkWriter(tls map[uint32]Timeline) error {
	w := m.Writer
	if w == nil {
		return nil
	}
	if _, ok := tls[w.Timeline]; !ok {
		return invalid("writer.timeline", "no timeline %d", w.Timeline)
	}
	if w.Epoch == 0 {
		return invalid("writer.epoch", "0 (epochs start at 1)")
	}
	if err := checkText("writer.id", w.ID, 1, maxWriterLen); err != nil {
		return err
	}
	return checkText("writer.host", w.Host, 0, maxWriterLen)
}

func checkCount(field string, n, least int) error {
	if n < least || n > MaxEntries {
		return invalid(field, "%d entries, not between %d and %d", n, least, MaxEntries)
	}
	return nil
}

// checkText checks a free-text field: printable UTF-8 of least to most
// bytes.
func checkText(field, s string, least, most int) error {
	if len(s) < least || len(s) > most {
		return invalid(field, "%d bytes, not between %d and %d", len(s), least, most)
	}
	if p := textProblem(s); p != "" {
		return invalid(field, "%s", p)
	}
	return nil
}

// checkKey checks a key read from the archive: safe, and the one the
// layout gives.
func checkKey(field, key, want string) error {
	if p := keyProblem(key); p != "" {
		return invalid(field, "%s", p)
	}
	if key != want {
		return invalid(field, "%s is not the layout's key %q", short(key), want)
	}
	return nil
}

// maxKeyIDs bounds the key ids of an encrypted archive.
const maxKeyIDs = 1000

// checkEncryption: an encrypted archive is of FormatEncrypted and names
// one or more distinct key ids of 16 lower-case hex digits; a plaintext
// one is of an older format.
func (m *Manifest) checkEncryption() error {
	if m.Encryption == nil {
		if m.Format == FormatEncrypted {
			return invalid("encryption", "missing: format %d is an encrypted archive's", m.Format)
		}
		return nil
	}
	if m.Format != FormatEncrypted {
		return invalid("encryption", "format %d has none (it needs format %d)", m.Format, FormatEncrypted)
	}
	if a := m.Encryption.ArchiveID; len(a) != 32 || !isLowerHexString(a) {
		return invalid("encryption.archive_id", "%s is not 32 lower-case hex digits", short(a))
	}
	ids := m.Encryption.KeyIDs
	if len(ids) == 0 || len(ids) > maxKeyIDs {
		return invalid("encryption.key_ids", "%d ids, want 1 to %d", len(ids), maxKeyIDs)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if len(id) != 16 || !isLowerHexString(id) {
			return invalid("encryption.key_ids", "%s is not 16 lower-case hex digits", short(id))
		}
		if seen[id] {
			return invalid("encryption.key_ids", "%s is listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

func isLowerHexString(s string) bool {
	for i := range len(s) {
		if !isLowerHex(s[i]) {
			return false
		}
	}
	return true
}
