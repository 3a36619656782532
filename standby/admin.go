package standby

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rockstream/rockstream/manifest"
	"github.com/rockstream/rockstream/promote"
)

// PromoteHeader must be "yes" on a POST /promote.
const PromoteHeader = "X-Rockstream-Promote"

// Handler serves the standby's admin endpoint:
//
//	GET  /status    the Status, as JSON
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
// With a token, every request must carry "Authorization: Bearer TOKEN";
// others get 401.
func (s *Standby) Handler(token string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(s.Status())
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
	if token == "" {
		return mux
	}
	want := []byte("Bearer " + token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// registry holds the standby's metrics, read from Status at each scrape.
func (s *Standby) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
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
	return reg
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
