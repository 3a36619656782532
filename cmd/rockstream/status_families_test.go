package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rockstream/rockstream/catalog"
	"github.com/rockstream/rockstream/manifest"
)

// TestPrintStatusFamilyChanges: status prints one line per column family
// change: timeline, after, create or drop, name, id.
func TestPrintStatusFamilyChanges(t *testing.T) {
	st := &catalog.Status{Timelines: []catalog.TimelineStatus{{ID: 1, FamilyChanges: []manifest.ColumnFamilyChange{
		{Timeline: 1, After: 58, Op: manifest.CFCreate, ID: 1, Name: "a", Options: "write_buffer_size=98304", Detected: time.Now()},
		{Timeline: 1, After: 220, Op: manifest.CFDrop, ID: 1, Name: "a", Detected: time.Now()},
	}}}}
	var buf bytes.Buffer
	printStatus(&buf, st)
	for _, want := range []string{
		`column family: timeline 1, after sequence 58: create "a" (id 1)`,
		`column family: timeline 1, after sequence 220: drop "a" (id 1)`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, buf.String())
		}
	}
}
