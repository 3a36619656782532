package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/archive"
)

// serveArchiveMetrics serves /metrics and /status for running archivers
// until ctx ends. The metrics of a database of a config file carry the
// label database.
func serveArchiveMetrics(ctx context.Context, addr string, jobs []*archiveJob) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(buildInfoCollector(), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, j := range jobs {
		registerArchiver(reg, j)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(archiveStatus(jobs))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		all, out := true, []map[string]any{}
		for _, j := range jobs {
			ready, why := archiverReady(j)
			all = all && ready
			out = append(out, map[string]any{"database": j.name, "ready": ready, "reason": why})
		}
		if !all {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"ready": all, "databases": out})
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError{fmt.Errorf("--listen %s: %w", addr, err)}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	slog.Info("serving metrics", "addr", l.Addr().String())
	return nil
}

// registerArchiver registers the metrics of one archiver.
func registerArchiver(reg *prometheus.Registry, j *archiveJob) {
	labels := prometheus.Labels{}
	if j.name != "" {
		labels["database"] = j.name
	}
	r := prometheus.WrapRegistererWith(labels, reg)
	a := j.a
	counter := func(name, help string, f func(archive.Stats) float64) {
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rockstream_archive_" + name, Help: help},
			func() float64 { return f(a.Stats()) }))
	}
	gauge := func(name, help string, f func(archive.Stats) float64) {
		r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rockstream_archive_" + name, Help: help},
			func() float64 { return f(a.Stats()) }))
	}
	counter("segments_total", "Segments uploaded.", func(s archive.Stats) float64 { return float64(s.Segments) })
	counter("batches_total", "Write batches read from the WAL.", func(s archive.Stats) float64 { return float64(s.Batches) })
	counter("wal_bytes_total", "Bytes of write batches read.", func(s archive.Stats) float64 { return float64(s.BatchBytes) })
	counter("uploaded_bytes_total", "Segment bytes uploaded.", func(s archive.Stats) float64 { return float64(s.UploadBytes) })
	counter("upload_retries_total", "Segment uploads tried again.", func(s archive.Stats) float64 { return float64(s.Retries) })
	counter("bases_total", "Bases taken.", func(s archive.Stats) float64 { return float64(s.Bases) })
	counter("holes_total", "WAL gaps recorded as holes.", func(s archive.Stats) float64 { return float64(s.Holes) })
	gauge("replay_needs", "Options of the database that rockstream cannot replay by itself (a merge operator or comparator of the application's own): above 0, a restore needs --hand-off or the operators, and a standby cannot follow.",
		func(s archive.Stats) float64 { return float64(len(s.ReplayNeeds)) })
	counter("prunes_total", "Scheduled prunes (--retention-*) that succeeded.", func(s archive.Stats) float64 { return float64(s.Prunes) })
	counter("prune_errors_total", "Scheduled prunes that failed (tried again at the next interval).", func(s archive.Stats) float64 { return float64(s.PruneErrors) })
	counter("pruned_objects_total", "Objects deleted by the scheduled prunes.", func(s archive.Stats) float64 { return float64(s.PrunedObjects) })
	counter("pruned_bytes_total", "Bytes deleted by the scheduled prunes.", func(s archive.Stats) float64 { return float64(s.PrunedBytes) })
	gauge("last_sequence", "Last sequence in the archive or its upload queue.", func(s archive.Stats) float64 { return float64(s.LastSequence) })
	gauge("archived_sequence", "Last sequence the archive holds (an uploaded segment or a base).",
		func(s archive.Stats) float64 { return float64(s.ArchivedSequence) })
	gauge("head_sequence", "The database's last sequence: the last complete batch of its newest WAL file, as last seen.",
		func(s archive.Stats) float64 { return float64(s.HeadSequence) })
	gauge("lag_sequences", "Sequences the database holds and the archive does not (head_sequence minus archived_sequence).",
		func(s archive.Stats) float64 { return float64(s.LagSequences) })
	gauge("lag_bytes", "WAL bytes the archive lacks: batches read and not uploaded, and WAL not read yet up to the head.",
		func(s archive.Stats) float64 { return float64(s.LagBytes) })
	gauge("lag_seconds", "How long the oldest write that the archive lacks has waited (0: it holds everything).",
		func(s archive.Stats) float64 { return s.LagSeconds })
	gauge("last_upload_timestamp_seconds", "When the last segment was uploaded.", func(s archive.Stats) float64 {
		if s.LastUpload.IsZero() {
			return 0
		}
		return float64(s.LastUpload.UnixNano()) / 1e9
	})
}

// archiveStatus is the body of /status: one archiver's timeline and stats
// as they are, or with a config file, a list of databases.
func archiveStatus(jobs []*archiveJob) any {
	type one struct {
		Database string        `json:"database,omitempty"`
		DB       string        `json:"db,omitempty"`
		To       string        `json:"to,omitempty"`
		Timeline uint32        `json:"timeline"`
		Stats    archive.Stats `json:"stats"`
	}
	if len(jobs) == 1 && jobs[0].name == "" {
		return one{Timeline: jobs[0].a.Timeline(), Stats: jobs[0].a.Stats()}
	}
	all := make([]one, len(jobs))
	for i, j := range jobs {
		all[i] = one{Database: j.name, DB: j.o.db, To: j.o.store.String(), Timeline: j.a.Timeline(), Stats: j.a.Stats()}
	}
	return struct {
		Databases []one `json:"databases"`
	}{all}
}

func readyLagFlag(what string) *cli.DurationFlag {
	return &cli.DurationFlag{Name: "ready-max-lag", Value: 5 * time.Minute, EnvVars: []string{"ROCKSTREAM_READY_MAX_LAG"},
		Usage: "answer GET /readyz with 200 only while " + what + " `DURATION` (else 503, with the reason)"}
}

// archiverReady says whether an archiver is ready: it has claimed the
// archive and holds a base, and the archive lacks no write older than
// --ready-max-lag. A store that stops answering shows there: nothing is
// uploaded, so the lag grows past the bound.
func archiverReady(j *archiveJob) (bool, string) {
	st := j.a.Stats()
	switch {
	case st.Timeline == 0 || st.ArchivedSequence == 0:
		return false, "starting: no base in the archive yet"
	case time.Duration(st.LagSeconds*float64(time.Second)) > j.readyLag:
		return false, fmt.Sprintf("the archive lacks writes of the last %.1f s (more than %s): is the store answering? see /status and the log",
			st.LagSeconds, j.readyLag)
	}
	return true, "archiving"
}
