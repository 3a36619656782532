package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/standby"
)

func summaryFlag() cli.Flag {
	return durationFlag(&cli.DurationFlag{Name: "summary-interval", Value: time.Minute, EnvVars: []string{"ROCKSTREAM_SUMMARY_INTERVAL"},
		Usage: "log a summary line at info this often: what was done since the last one, the position and the lag (0: none while it runs)"})
}

// summaryEvery is the archiver's summary interval: negative for "only
// at the stop", as archive.Options says.
func summaryEvery(c *cli.Context) time.Duration {
	if d := c.Duration("summary-interval"); d > 0 {
		return d
	}
	return -1
}

// summarizeStandby logs the standby's summary line every interval until
// ctx ends: the position, the lag, and what it applied since the last one.
func summarizeStandby(ctx context.Context, sb *standby.Standby, every time.Duration, log *slog.Logger) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	prev := sb.Status()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		st := sb.Status()
		log.Info("standby summary", "state", st.State, "timeline", st.Timeline,
			"segments", st.Segments-prev.Segments, "batches", st.Batches-prev.Batches, "errors", st.Errors-prev.Errors,
			"applied_sequence", st.Applied, "archive_head", st.Head,
			"lag_sequences", st.LagSequences, "lag_seconds", st.LagSeconds)
		prev = st
	}
}
