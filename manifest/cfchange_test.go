package manifest

import (
	"strings"
	"testing"
	"time"
)

func cfManifest() *Manifest {
	m := New("id-1", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	if _, err := m.AddTimeline(1, 500, m.Created); err != nil {
		panic(err)
	}
	return m
}

// TestCFChangeValidate refuses every malformed change with the field named.
func TestCFChangeValidate(t *testing.T) {
	good := ColumnFamilyChange{Timeline: 1, After: 10, Op: CFCreate, ID: 2, Name: "events", Options: "write_buffer_size=65536"}
	for _, tc := range []struct {
		name  string
		edit  func(*ColumnFamilyChange)
		field string
	}{
		{"no timeline", func(c *ColumnFamilyChange) { c.Timeline = 9 }, "column_family_changes[0].timeline"},
		{"beyond max sequence", func(c *ColumnFamilyChange) { c.After = MaxSequence + 1 }, "column_family_changes[0].after"},
		{"unknown op", func(c *ColumnFamilyChange) { c.Op = "rename" }, "column_family_changes[0].op"},
		{"default family", func(c *ColumnFamilyChange) { c.ID = 0 }, "column_family_changes[0].id"},
		{"drop with options", func(c *ColumnFamilyChange) { c.Op = CFDrop }, "column_family_changes[0].options"},
		{"empty name", func(c *ColumnFamilyChange) { c.Name = "" }, "column_family_changes[0].name"},
		{"control character in name", func(c *ColumnFamilyChange) { c.Name = "a\x00b" }, "column_family_changes[0].name"},
		{"huge options", func(c *ColumnFamilyChange) { c.Options = strings.Repeat("x", maxCFOptionsLen+1) }, "column_family_changes[0].options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cfManifest()
			c := good
			tc.edit(&c)
			m.AddCFChange(c)
			err := m.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.field)
			}
		})
	}
	m := cfManifest()
	m.AddCFChange(good)
	m.AddCFChange(ColumnFamilyChange{Timeline: 2, After: 600, Op: CFDrop, ID: 2, Name: "events"})
	if err := m.Validate(); err != nil {
		t.Fatalf("a good manifest: %v", err)
	}
	if m.Format != FormatCFChanges {
		t.Fatalf("format %d after AddCFChange, want %d", m.Format, FormatCFChanges)
	}
	m.Format = Format
	if err := m.Validate(); err == nil || !strings.Contains(err.Error(), "need format 2") {
		t.Fatalf("format 1 with changes: %v, want a refusal", err)
	}
}

// TestCFChangesBetween picks the changes of a replay: along the lineage
// only, with After in [from, to], in order of After.
func TestCFChangesBetween(t *testing.T) {
	m := cfManifest() // timeline 2 branches from 1 at 500
	m.Format = FormatCFChanges
	m.ColumnFamilyChanges = []ColumnFamilyChange{
		{Timeline: 1, After: 300, Op: CFCreate, ID: 2, Name: "b"},
		{Timeline: 1, After: 100, Op: CFCreate, ID: 1, Name: "a"},
		{Timeline: 1, After: 500, Op: CFDrop, ID: 1, Name: "a"},    // at the branch point: both timelines
		{Timeline: 1, After: 700, Op: CFDrop, ID: 2, Name: "b"},    // timeline 1 after the branch only
		{Timeline: 2, After: 500, Op: CFCreate, ID: 3, Name: "c"},  // made right at the start of timeline 2
		{Timeline: 2, After: 800, Op: CFCreate, ID: 4, Name: "d"},  // timeline 2 only
		{Timeline: 1, After: 300, Op: CFCreate, ID: 5, Name: "b2"}, // same After as b: after it
	}
	names := func(cs []ColumnFamilyChange) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Op+" "+c.Name)
		}
		return strings.Join(s, ", ")
	}
	for _, tc := range []struct {
		tl       uint32
		from, to uint64
		want     string
	}{
		{1, 0, 1000, "create a, create b, create b2, drop a, drop b"},
		{1, 100, 299, "create a"},
		{1, 101, 300, "create b, create b2"},
		{1, 301, 499, ""},
		{2, 0, 1000, "create a, create b, create b2, drop a, create c, create d"},
		{2, 500, 799, "drop a, create c"},
		{2, 501, 1000, "create d"},
	} {
		got := names(m.CFChangesBetween(m.Lineage(tc.tl), tc.from, tc.to))
		if got != tc.want {
			t.Errorf("timeline %d, [%d, %d]: %q, want %q", tc.tl, tc.from, tc.to, got, tc.want)
		}
	}
}
