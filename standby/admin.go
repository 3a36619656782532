package standby

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/promote"
)

// PromoteHeader must be "yes" on a POST /promote.
const PromoteHeader = "X-Rockstream-Promote"

// Handler serves the standby's admin endpoint:
//
//	GET  /status    the Status, as JSON: 200, or 503 when State is failed
//	GET  /healthz   200 while the process serves (a liveness probe)
//	GET  /readyz    200 when the standby follows within Options.ReadyLag
//	                of the archive (or was promoted and archives), 503
//	                otherwise, with the reason: a readiness probe
//	GET  /metrics   Prometheus metrics (rockstream_standby_*), from a
//	                registry of the standby's own
//	POST /promote   promote the standby (Standby.Promote): 200 with the
//	                promote.Result as JSON; 409 when the archive refuses it
//	                (another promotion won, or the old primary keeps
//	                uploading), 503 when the standby does not follow,
//	                500 otherwise, with {"error": "..."}
//
// A promotion that the standby took goes on to its end when the client
// disconnects or times out (see Promote); GET /status then shows state
// "promoting", and "promoted" with the result in "promotion", or the
// error in "promote_error".
//
// POST /promote also needs the header PromoteHeader: yes (403 otherwise),
// so that no web page can trigger a failover through the loopback address.
// With a token, every request but /healthz and /readyz must carry
// "Authorization: Bearer TOKEN"; others get 401. The probes need no token
// (a load balancer or a kubelet cannot always send one) and tell only
// the state and the lag.
func (s *Standby) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		st := s.Status()
		if st.State == Failed {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(st)
	})
	probes := http.NewServeMux()
	probes.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	probes.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		ready, why := s.Ready()
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		st := s.Status()
		json.NewEncoder(w).Encode(map[string]any{"ready": ready, "reason": why, "state": st.State, "lag_seconds": st.LagSeconds})
	})
	mux.HandleFunc("POST /promote", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get(PromoteHeader) != "yes" {
			// A web page can send a plain cross-origin POST to a loopback
			// address, but not one with a custom header: a failover needs it.
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"error": "a promotion needs the header " + PromoteHeader + ": yes"})
			return
		}
		res, err := s.Promote(r.Context())
		if err != nil {
			code := http.StatusInternalServerError
			switch {
			case errors.Is(err, ErrNotFollowing):
				code = http.StatusServiceUnavailable
			case errors.Is(err, manifest.ErrFenced), errors.Is(err, manifest.ErrConflict), errors.Is(err, promote.ErrMoreToApply):
				code = http.StatusConflict
			}
			w.WriteHeader(code)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(res)
	})
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
			probes.ServeHTTP(w, r)
			return
		}
		if token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// applyDelayHistogram is the standby's histogram of apply delays.
func applyDelayHistogram() prometheus.Histogram {
	return prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rockstream_standby_apply_delay_seconds",
		Help:    "Per segment applied: the time from its sealing by the archiver to its last batch applied here (the two machines' clocks included).",
		Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}})
}

// registry holds the standby's metrics, read from Status at each scrape.
func (s *Standby) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.opts.Collectors...)
	labeled := prometheus.WrapRegistererWith(s.opts.Labels, reg)
	gauge := func(name, help string, f func(Status) float64) {
		labeled.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rockstream_standby_" + name, Help: help},
			func() float64 { return f(s.Status()) }))
	}
	counter := func(name, help string, f func(Status) float64) {
		labeled.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rockstream_standby_" + name, Help: help},
			func() float64 { return f(s.Status()) }))
	}
	gauge("applied_sequence", "Latest sequence of the standby's database.", func(st Status) float64 { return float64(st.Applied) })
	gauge("archive_head_sequence", "Last archived sequence known, from the newest segment read.", func(st Status) float64 { return float64(st.Head) })
	gauge("lag_sequences", "Archive head minus applied sequence.", func(st Status) float64 { return float64(st.LagSequences) })
	gauge("lag_seconds", "0 when caught up with the segments found, else seconds since the archive time of the last applied batch.",
		func(st Status) float64 { return st.LagSeconds })
	gauge("timeline", "Timeline followed.", func(st Status) float64 { return float64(st.Timeline) })
	gauge("timeline_ended", "1 while the followed timeline has its end marker and the manifest names no child timeline (a promotion cut short).",
		func(st Status) float64 { return b2f(st.State == Ended) })
	counter("batches_applied_total", "Write batches applied.", func(st Status) float64 { return float64(st.Batches) })
	counter("segments_applied_total", "Segments applied.", func(st Status) float64 { return float64(st.Segments) })
	counter("errors_total", "Errors met, retried or not.", func(st Status) float64 { return float64(st.Errors) })
	for _, state := range []State{Bootstrapping, CatchingUp, Following, Ended, Promoting, Promoted, Stopped, Failed} {
		labeled.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rockstream_standby_state",
			Help:        "1 for the standby's state now (the label state), 0 for the others.",
			ConstLabels: prometheus.Labels{"state": string(state)}},
			func() float64 { return b2f(s.Status().State == state) }))
	}
	labeled.MustRegister(s.applyDelay)
	if s.opts.Stream != nil {
		gauge("stream_connected", "1 while the live stream from the primary's archiver is connected.",
			func(st Status) float64 { return b2f(st.Stream != nil && st.Stream.Connected) })
		counter("stream_batches_applied_total", "Batches applied from the live stream (not from the bucket).",
			func(st Status) float64 { return float64(st.Stream.Batches) })
		counter("stream_connects_total", "Live streams opened.", func(st Status) float64 { return float64(st.Stream.Connects) })
		gauge("stream_unarchived_batches", "Batches applied from the live stream that the bucket did not hold at the last heartbeat (a promotion uploads them).",
			func(st Status) float64 { return float64(st.Stream.Unarchived) })
	}
	return reg
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Ready says whether the standby is ready to serve as what it is: a
// standby that follows the archive within Options.ReadyLag, or a promoted
// one (the new primary, archiving). It gives the reason when it is not.
func (s *Standby) Ready() (bool, string) {
	st := s.Status()
	switch st.State {
	case Following:
		if lag := time.Duration(st.LagSeconds * float64(time.Second)); lag > s.opts.ReadyLag {
			return false, fmt.Sprintf("following, but %s behind the archive (more than %s)", lag.Round(time.Millisecond), s.opts.ReadyLag)
		}
		return true, "following"
	case Promoted:
		return true, "promoted: the new primary"
	case Failed:
		return false, "failed: " + st.Error
	}
	why := string(st.State)
	if st.Reason != "" {
		why += ": " + st.Reason
	}
	return false, why
}
