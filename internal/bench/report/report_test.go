package report

import (
	"math"
	"strings"
	"testing"
)

func TestOf(t *testing.T) {
	cases := []struct {
		in   []float64
		want Stats
	}{
		{nil, Stats{}},
		{[]float64{3}, Stats{3, 3, 3, 1}},
		{[]float64{5, 1, 3}, Stats{3, 1, 5, 3}},
		{[]float64{4, 1, 3, 2}, Stats{2.5, 1, 4, 4}},
	}
	for _, c := range cases {
		if got := Of(c.in); got != c.want {
			t.Errorf("Of(%v) = %+v, want %+v", c.in, got, c.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	s := make([]float64, 100)
	for i := range s {
		s[i] = float64(i + 1)
	}
	if p := Percentile(s, 0.5); p != 50 {
		t.Errorf("p50 = %v", p)
	}
	if p := Percentile(s, 0.99); p != 99 {
		t.Errorf("p99 = %v", p)
	}
	if p := Percentile(s[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %v", p)
	}
	if !math.IsNaN(Percentile(nil, 0.5)) {
		t.Error("percentile of nothing is a number")
	}
}

func TestRatios(t *testing.T) {
	got := Ratios([]float64{10, 20, 30}, []float64{5, 0, 10, 7})
	if len(got) != 2 || got[0] != 2 || got[1] != 3 {
		t.Fatalf("Ratios = %v, want [2 3] (a zero baseline is skipped)", got)
	}
}

func TestJudge(t *testing.T) {
	atLeast := []Goal{{Limit: 100, Text: "≥ 100"}}
	atMostRatio := []Goal{{OnRatio: true, AtMost: true, Limit: 1.2, Text: "≤ 1.2×"}}
	both := []Goal{atLeast[0], {OnRatio: true, Limit: 0.5, Text: "≥ 0.5×"}}
	cases := []struct {
		row  Row
		want Verdict
	}{
		{Row{Value: Of([]float64{90, 120, 130}), Goals: atLeast}, Met},
		{Row{Value: Of([]float64{90, 99, 130}), Goals: atLeast}, Missed},
		{Row{Ratio: Of([]float64{1.1, 1.3, 1.0}), Goals: atMostRatio}, Met},
		{Row{Ratio: Of([]float64{1.25}), Goals: atMostRatio}, Missed},
		{Row{Value: Of([]float64{1}), Goals: atMostRatio}, NotMeasured}, // no ratio
		{Row{Value: Of([]float64{1})}, NoGoal},
		{Row{Value: Of([]float64{120}), Ratio: Of([]float64{0.6}), Goals: both}, Met},
		{Row{Value: Of([]float64{120}), Ratio: Of([]float64{0.4}), Goals: both}, Missed},
		{Row{Verdict: NotMeasured, Goals: atLeast, Value: Of([]float64{500})}, NotMeasured},
	}
	for i, c := range cases {
		c.row.Judge()
		if c.row.Verdict != c.want {
			t.Errorf("case %d: %s, want %s", i, c.row.Verdict, c.want)
		}
	}
}

func TestMarkdown(t *testing.T) {
	r := Row{Figure: "Archive throughput, file://", Unit: "MB/s", Value: Of([]float64{120, 110, 130}),
		Baseline: "zstd | EncodeAll", Base: Of([]float64{400, 410, 390}), Ratio: Of([]float64{0.3, 0.27, 0.33}),
		Goals: []Goal{{Limit: 100, Text: "≥ 100 MB/s"}, {OnRatio: true, Limit: 0.2, Text: "≥ 0.2×"}}, Note: "includes start-up"}
	r.Judge()
	d := Doc{Title: "Benchmarks", Header: []string{"hello"}, Facts: [][2]string{{"Command", "make bench"}},
		Rows: []Row{r}, Sections: []Section{{"Profiles", "top"}}}
	md := d.Markdown()
	for _, want := range []string{"# Benchmarks", "| Command | make bench |", "120 (110–130) MB/s", `zstd \| EncodeAll`,
		"0.3 (0.27–0.33)", "≥ 100 MB/s; ≥ 0.2×", "**MET**", "includes start-up", "## Profiles"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1234.4: "1234", 12.34: "12.3", 1.234: "1.23", 0.1234: "0.123", 0.00012: "0.00012", math.NaN(): "n/a"} {
		if got := Num(v); got != want {
			t.Errorf("Num(%v) = %q, want %q", v, got, want)
		}
	}
}
