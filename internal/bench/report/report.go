package report

import (
	"cmp"
	"fmt"
	"strings"
)

// Verdict is a figure's result against its goal.
type Verdict string

// Verdicts.
const (
	Met         Verdict = "MET"
	Missed      Verdict = "MISSED"
	NotMeasured Verdict = "NOT MEASURED"
	NoGoal      Verdict = "—"
)

// Goal is a bound on a figure's median value or on its median ratio.
type Goal struct {
	OnRatio bool    // the bound is on the ratio, else on the value
	AtMost  bool    // the median must be at most Limit, else at least
	Limit   float64 // the bound
	Text    string  // as the table shows it, e.g. "≥ 100 MB/s"
}

// Row is one figure.
type Row struct {
	Figure   string
	Unit     string
	Value    Stats
	Baseline string // what the baseline is, measured in the same run
	Base     Stats  // its value over the runs
	BaseUnit string // the baseline's unit, when not Unit
	Ratio    Stats  // value / baseline (or as Figure says), run by run
	Goals    []Goal // every one must be met
	// Verdict is set by Judge from the goals; a figure that could not be
	// measured sets NotMeasured and says why in Note.
	Verdict Verdict
	Note    string
}

// Judge sets the verdict from the goals, unless the figure was not
// measured: MET when the median meets every goal.
func (r *Row) Judge() {
	if r.Verdict == NotMeasured {
		return
	}
	if len(r.Goals) == 0 {
		r.Verdict = NoGoal
		return
	}
	r.Verdict = Met
	for _, g := range r.Goals {
		v := r.Value
		if g.OnRatio {
			v = r.Ratio
		}
		switch {
		case v.N == 0:
			r.Verdict = NotMeasured
			return
		case g.AtMost && v.Median > g.Limit, !g.AtMost && v.Median < g.Limit:
			r.Verdict = Missed
		}
	}
}

// Section is a titled block of text after the table.
type Section struct {
	Title string
	Body  string
}

// Doc is the whole report.
type Doc struct {
	Title    string
	Header   []string    // paragraphs before the table
	Facts    [][2]string // command, date, machine, versions: name and value
	Rows     []Row
	Sections []Section
}

// Markdown renders the report.
func (d *Doc) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	for _, p := range d.Header {
		fmt.Fprintf(&b, "%s\n\n", p)
	}
	if len(d.Facts) > 0 {
		b.WriteString("| | |\n|---|---|\n")
		for _, f := range d.Facts {
			fmt.Fprintf(&b, "| %s | %s |\n", f[0], cell(f[1]))
		}
		b.WriteString("\n")
	}
	b.WriteString("## Figures\n\n")
	b.WriteString("Each value is the median over the runs, with (min–max); a ratio is taken run by run against the baseline measured in the same run, then its median. The verdict judges the median.\n\n")
	b.WriteString("| Figure | Median (min–max) | Baseline, same run | Baseline value | Ratio | Goal | Result |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, r := range d.Rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", cell(r.Figure), withUnit(r.Value, r.Unit),
			cell(orDash(r.Baseline)), withUnit(r.Base, cmp.Or(r.BaseUnit, r.Unit)), r.Ratio, cell(goalText(r.Goals)), verdictText(r.Verdict))
	}
	b.WriteString("\n")
	if notes := d.notes(); notes != "" {
		b.WriteString("### Notes on the rows\n\n" + notes + "\n")
	}
	for _, s := range d.Sections {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", s.Title, strings.TrimRight(s.Body, "\n"))
	}
	return b.String()
}

func (d *Doc) notes() string {
	var b strings.Builder
	for _, r := range d.Rows {
		if r.Note != "" {
			fmt.Fprintf(&b, "- **%s** (%s): %s\n", r.Figure, verdictText(r.Verdict), r.Note)
		}
	}
	return b.String()
}

func withUnit(s Stats, unit string) string {
	if s.N == 0 || unit == "" {
		return s.String()
	}
	return s.String() + " " + unit
}

func goalText(goals []Goal) string {
	if len(goals) == 0 {
		return "—"
	}
	texts := make([]string, len(goals))
	for i, g := range goals {
		texts[i] = g.Text
	}
	return strings.Join(texts, "; ")
}

func verdictText(v Verdict) string {
	switch v {
	case Met, Missed, NotMeasured:
		return "**" + string(v) + "**"
	case "":
		return "—"
	}
	return string(v)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// cell escapes what would break a table cell.
func cell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}
