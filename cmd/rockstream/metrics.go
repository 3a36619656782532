package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"

	"github.com/rockstream/rockstream/archive"
	"github.com/rockstream/rockstream/stream"
)

// defaultArchiveListen is the archiver's --listen: loopback, like the
// standby's 127.0.0.1:9465.
const defaultArchiveListen = "127.0.0.1:9464"

// listenArchive serves the archivers' endpoints on --listen of c. A
// --listen given (flag, variable or config file) that cannot listen is
// bad usage; the default taken by another process (a second archiver on
// the machine) is a warning: archiving matters more than its metrics.
func listenArchive(ctx context.Context, c *cli.Context, jobs []*archiveJob) error {
	addr := c.String("listen")
	streams := slices.ContainsFunc(jobs, func(j *archiveJob) bool { return j.hub != nil })
	token, err := tokenOf(c)
	if err != nil {
		return err
	}
	switch {
	case addr == "" && streams:
		return usageError{errors.New("--stream needs --listen: the stream is served there")}
	case addr == "":
		return nil
	case streams:
		if err := checkListen(addr, token); err != nil {
			return err
		}
	}
	var cert *tls.Certificate
	if certFile, keyFile := c.String("tls-cert"), c.String("tls-key"); certFile != "" || keyFile != "" {
		if certFile == "" || keyFile == "" {
			return usageError{errors.New("--tls-cert and --tls-key go together: give both")}
		}
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return usageError{fmt.Errorf("--tls-cert %s, --tls-key %s: %w", certFile, keyFile, err)}
		}
		cert = &pair
	}
	err = serveArchiveMetrics(ctx, addr, jobs, token, cert)
	if err != nil && !c.IsSet("listen") && errors.Is(err, syscall.EADDRINUSE) {
		slog.Warn("the default --listen address is taken (another archiver on this machine?): archiving without /metrics, /status and the probes; give each archiver its own --listen ADDR, or --listen \"\"",
			"addr", addr, "error", err)
		return nil
	}
	return err
}

// serveArchiveMetrics serves /metrics and /status for running archivers
// until ctx ends. The metrics of a database of a config file carry the
// label database.
func serveArchiveMetrics(ctx context.Context, addr string, jobs []*archiveJob, token string, cert *tls.Certificate) error {
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
	for _, j := range jobs {
		if j.hub == nil {
			continue
		}
		path := "GET /stream"
		if j.name != "" {
			path += "/" + j.name
		}
		mux.Handle(path, bearer(token, j.hub))
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return usageError{fmt.Errorf("--listen %s: %w", addr, err)}
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if cert != nil {
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	go srv.Serve(l)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	slog.Info("serving metrics", "addr", l.Addr().String())
	return nil
}

// bearer requires 'Authorization: Bearer token' on h, when token is set.
func bearer(token string, h http.Handler) http.Handler {
	if token == "" {
		return h
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
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
	gauge("head_known", "1 once the archiver has seen where the database's WAL ends (right after its start); 0 before: the lag then counts only what it has read.",
		func(s archive.Stats) float64 { return boolGauge(s.HeadKnown) })
	gauge("lag_sequences", "Sequences the database holds and the archive does not (head_sequence minus archived_sequence).",
		func(s archive.Stats) float64 { return float64(s.LagSequences) })
	gauge("lag_bytes", "WAL bytes the archive lacks: batches read and not uploaded, and WAL not read yet up to the head.",
		func(s archive.Stats) float64 { return float64(s.LagBytes) })
	gauge("lag_seconds", "How long the oldest write that the archive lacks has waited (0: it holds everything).",
		func(s archive.Stats) float64 { return s.LagSeconds })
	r.MustRegister(j.uploads)
	if h := j.hub; h != nil {
		r.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rockstream_archive_stream_clients", Help: "Standbys reading the live stream now."},
			func() float64 { return float64(h.Stats().Clients) }))
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rockstream_archive_stream_batches_total", Help: "Batches sent on live streams (each standby counts)."},
			func() float64 { return float64(h.Stats().Batches) }))
		r.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rockstream_archive_stream_behind_total", Help: "Live streams ended because their standby fell behind the stream's buffer (it reads the bucket)."},
			func() float64 { return float64(h.Stats().Behind) }))
	}
	gauge("last_base_timestamp_seconds", "When the newest base of the archive was taken (0: none yet); time() minus it is the base's age.",
		func(s archive.Stats) float64 { return unixSeconds(s.LastBase) })
	gauge("last_upload_timestamp_seconds", "When the last segment was uploaded.", func(s archive.Stats) float64 { return unixSeconds(s.LastUpload) })
}

// uploadHistogram is the archiver's histogram of segment upload times.
func uploadHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rockstream_archive_upload_duration_seconds",
		Help:    "How long each segment took to upload, from its first try to the one that succeeded (retries and their waits included).",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300}})
}

// unixSeconds is t in seconds since 1970, 0 for the zero time.
func unixSeconds(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / 1e9
}

// archiveStatus is the body of /status: one archiver's timeline and stats
// as they are, or with a config file, a list of databases.
func archiveStatus(jobs []*archiveJob) any {
	type one struct {
		Database string           `json:"database,omitempty"`
		DB       string           `json:"db,omitempty"`
		To       string           `json:"to,omitempty"`
		Timeline uint32           `json:"timeline"`
		Stats    archive.Stats    `json:"stats"`
		Stream   *stream.HubStats `json:"stream,omitempty"`
	}
	hub := func(j *archiveJob) *stream.HubStats {
		if j.hub == nil {
			return nil
		}
		st := j.hub.Stats()
		return &st
	}
	if len(jobs) == 1 && jobs[0].name == "" {
		return one{Timeline: jobs[0].a.Timeline(), Stats: jobs[0].a.Stats(), Stream: hub(jobs[0])}
	}
	all := make([]one, len(jobs))
	for i, j := range jobs {
		all[i] = one{Database: j.name, DB: j.o.db, To: j.o.store.String(), Timeline: j.a.Timeline(), Stats: j.a.Stats(), Stream: hub(j)}
	}
	return struct {
		Databases []one `json:"databases"`
	}{all}
}

func readyLagFlag(what string) cli.Flag {
	return durationFlag(&cli.DurationFlag{Name: "ready-max-lag", Value: 5 * time.Minute, EnvVars: []string{"ROCKSTREAM_READY_MAX_LAG"},
		Usage: "answer GET /readyz with 200 only while " + what + " `DURATION` (else 503, with the reason)"})
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

// boolGauge is 1 for true, 0 for false.
func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
