package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestLogDurations: JSON logs give durations in seconds (a number), text
// logs in Go's form; a duration inside a group too.
func TestLogDurations(t *testing.T) {
	var buf bytes.Buffer
	h, err := logHandler(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	slog.New(h).Info("restored", "replay", 1500*time.Millisecond, slog.Group("timings", "fence", 2*time.Millisecond), "batches", 3)
	var got struct {
		Replay  any `json:"replay"`
		Timings struct {
			Fence any `json:"fence"`
		} `json:"timings"`
		Batches any `json:"batches"`
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v: %s", err, buf.String())
	}
	if got.Replay != 1.5 || got.Timings.Fence != 0.002 || got.Batches != float64(3) {
		t.Fatalf("JSON log: replay %v, fence %v, batches %v; want 1.5, 0.002 (seconds) and 3\n%s", got.Replay, got.Timings.Fence, got.Batches, buf.String())
	}
	buf.Reset()
	h, _ = logHandler(&buf, "text", slog.LevelInfo)
	slog.New(h).Info("restored", "replay", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), "replay=1.5s") {
		t.Fatalf("text log: %s", buf.String())
	}
	if _, err := logHandler(&buf, "xml", slog.LevelInfo); err == nil {
		t.Fatal("--log-format xml was taken")
	}
}
