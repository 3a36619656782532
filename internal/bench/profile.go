package bench

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"github.com/rockstream/rockstream/internal/bench/datagen"
	"github.com/rockstream/rockstream/internal/bench/report"
)

// profileRef is a CPU profile written by one rockstream process of a
// figure's first run (--cpu-profile; sampling costs about 1% of a core).
type profileRef struct {
	label string // which process, e.g. "archiver catching up on MinIO"
	path  string
}

// profile returns a new profile path for figure, and notes it.
func (b *bench) profile(figure, label string) string {
	path := b.path("profiles", fmt.Sprintf("%02d.pprof", countRefs(b.profiles)+1))
	b.profiles[figure] = append(b.profiles[figure], profileRef{label: label, path: path})
	return path
}

func countRefs(m map[string][]profileRef) int {
	n := 0
	for _, refs := range m {
		n += len(refs)
	}
	return n
}

// profileSections shows `go tool pprof -top` of the profiles of every
// missed figure.
func (b *bench) profileSections(ctx context.Context) []report.Section {
	var body strings.Builder
	shown := map[string]string{}
	for _, r := range b.rows {
		if r.Verdict != report.Missed {
			continue
		}
		key, refs := b.profilesOf(r.Figure)
		fmt.Fprintf(&body, "### %s\n\n", r.Figure)
		if len(refs) == 0 {
			body.WriteString("No CPU profile of rockstream was taken for this figure (see its note).\n\n")
			continue
		}
		if first, ok := shown[key]; ok {
			fmt.Fprintf(&body, "The profiles are those of %s, above.\n\n", first)
			continue
		}
		shown[key] = r.Figure
		for _, ref := range refs {
			fmt.Fprintf(&body, "%s (`go tool pprof -top -nodecount=15`: the top 15 nodes):\n\n```\n%s\n```\n\n", ref.label, b.pprofTop(ctx, ref.path))
		}
	}
	if body.Len() == 0 {
		return nil
	}
	return []report.Section{{Title: "Profiles of the missed figures", Body: body.String()}}
}

// profilesOf returns the profiles noted under the longest figure name that
// figure starts with (the lag profiles cover every rate of an age).
func (b *bench) profilesOf(figure string) (string, []profileRef) {
	best := ""
	for key := range b.profiles {
		if strings.HasPrefix(figure, key) && len(key) > len(best) {
			best = key
		}
	}
	return best, b.profiles[best]
}

func (b *bench) pprofTop(ctx context.Context, path string) string {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=15", b.cfg.Binary, path).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go tool pprof failed: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// generatorSection states the data generator and its measured ratio.
func (b *bench) generatorSection() (report.Section, error) {
	g := datagen.New(1)
	var data []byte
	for len(data) < 8<<20 {
		data = g.Value(data, valueSize)
	}
	ratio, err := datagen.Ratio(data)
	if err != nil {
		return report.Section{}, err
	}
	body := fmt.Sprintf("The harness writes its own data (internal/bench/datagen), not db_bench's repeating value buffer: "+
		"keys `msg/<12 digits>`, values of %d bytes that are JSON records of a chat service (a random 64-bit id, a random "+
		"24-byte signature in base64, author, room, time, and text drawn from a vocabulary of about 300 words with a random "+
		"number every 12 words). **zstd at the segments' level (SpeedFastest, 1 MiB blocks) shrinks them %.2f times** "+
		"(measured on 8 MiB of them in this run). Write batches hold %d puts. db_bench is used only for the writer-slowdown "+
		"figures, where it is the writer being slowed.", valueSize, ratio, opsPerBatch)
	return report.Section{Title: "Data", Body: body}, nil
}
