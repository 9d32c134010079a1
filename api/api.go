// Package api is the HTTP handler hogrelay serves on its unix sockets and its
// optional loopback TCP listener: PostHog's capture and flags endpoints (so
// unmodified SDKs can use the agent as their host), health and metrics, and
// the /hogrelay/v1/ calls the CLI uses. What each listener may reach is its
// Surface (surface.go).
package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/flags"
	"github.com/hogrelay/hogrelay/forwarder"
	"github.com/hogrelay/hogrelay/logging"
	"github.com/hogrelay/hogrelay/spool"
)

// Deps are what the handler serves from. Flags may be nil (no flag service).
type Deps struct {
	Spool     *spool.Spool
	Forwarder *forwarder.Forwarder
	Flags     *flags.Service
	// Status builds the agent-wide status document for /hogrelay/v1/status.
	Status   func() any
	Registry *prometheus.Registry
	Logger   zerolog.Logger
	// Ready reports whether the agent is ready to take events (/readyz).
	Ready func() bool
	// DecodeBudget bounds the bytes of request bodies being read and
	// decoded at once (default DefaultDecodeBudget).
	DecodeBudget int64
	// Called builds the $feature_flag_called events of the CLI's flag
	// questions; nil = one with defaults.
	Called *flags.CalledEvents
}

// DefaultDecodeBudget is [ingest] max_decode_bytes' default. A 20 MiB batch
// needs ~60-80 MiB to decode (wire bytes, payload, normalised events and
// spool records), so three such requests decode at once and small ones by
// the thousand.
const DefaultDecodeBudget = 256 << 20

// budgetWait is how long a request waits for decode budget before 503.
const budgetWait = 2 * time.Second

// Handler is an http.Handler; create it with New.
type Handler struct {
	deps    Deps
	log     zerolog.Logger
	mux     *router
	ingest  atomic.Pointer[capture.Options]
	access  atomic.Pointer[access]
	budget  *decodeBudget
	metrics *metrics
	called  *flags.CalledEvents
	// refusals rate-limits the warning logged for each 5xx refusal.
	refusals logging.Burst
}

// New builds the handler with the given ingest policy.
func New(d Deps, opts capture.Options) *Handler {
	h := &Handler{
		deps:     d,
		log:      d.Logger.With().Str("component", "api").Logger(),
		refusals: logging.Burst{Window: 10 * time.Second},
		called:   d.Called,
	}
	if h.called == nil {
		h.called = flags.NewCalledEvents(50_000, "hogrelay", "", true)
	}
	h.mux = newRouter(h)
	if d.DecodeBudget <= 0 {
		d.DecodeBudget = DefaultDecodeBudget
	}
	h.budget = newDecodeBudget(d.DecodeBudget, budgetWait)
	h.metrics = newMetrics(h.budget)
	h.ingest.Store(&opts)
	h.routes()
	return h
}

// SetIngestOptions swaps the ingest policy (SIGHUP).
func (h *Handler) SetIngestOptions(o capture.Options) { h.ingest.Store(&o) }

func (h *Handler) routes() {
	for _, p := range []string{"/batch", "/e", "/i/v0/e", "/capture", "/track", "/engage"} {
		h.mux.HandleFunc(p, h.handleCapture)
		h.mux.HandleFunc(p+"/", h.handleCapture)
	}
	h.mux.HandleFunc(capture.V1Path, h.handleCaptureV1)
	h.mux.HandleFunc(capture.V1Path+"/", h.handleCaptureV1)
	h.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeText(w, 200, "ok") })
	h.mux.HandleFunc("GET /readyz", h.handleReady)
	if h.deps.Registry != nil {
		h.mux.Handle("GET /metrics", promhttp.HandlerFor(h.deps.Registry, promhttp.HandlerOpts{}))
	}
	h.mux.HandleFunc("GET /hogrelay/v1/status", h.handleStatus)
	h.mux.HandleFunc("GET /hogrelay/v1/spool/stats", h.handleSpoolStats)
	h.mux.HandleFunc("GET /hogrelay/v1/spool/export", h.handleSpoolExport)
	h.mux.HandleFunc("GET /hogrelay/v1/spool/dead-letters", h.handleDeadLetterList)
	h.mux.HandleFunc("POST /hogrelay/v1/spool/dead-letters/requeue", h.handleDeadLetterRequeue)
	h.mux.HandleFunc("POST /hogrelay/v1/spool/dead-letters/drop", h.handleDeadLetterDrop)
	h.mux.HandleFunc("POST /hogrelay/v1/spool/compact", h.handleCompact)
	h.mux.HandleFunc("POST /hogrelay/v1/spool/import", h.handleSpoolImport)
	h.mux.HandleFunc("POST /hogrelay/v1/forwarder/retry", h.handleRetryNow)
	h.flagRoutes()
	h.mux.HandleFunc("/", h.handleUnknown)
}

// ServeHTTP serves the producer socket's surface; listeners use On.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.On(ProducerSocket).ServeHTTP(w, r)
}

func (h *Handler) handleUnknown(w http.ResponseWriter, r *http.Request) {
	writeText(w, http.StatusNotFound, "unknown endpoint "+r.Method+" "+r.URL.Path+
		": hogrelay serves PostHog's capture endpoints (/batch/, /e/, /i/v0/e/, /capture/, /track/, /engage/), "+
		"Capture v1 (/i/v1/analytics/events), its flags endpoints (/flags/, /decide/, /flags/definitions), /healthz, /readyz, /metrics and /hogrelay/v1/")
}

func (h *Handler) handleReady(w http.ResponseWriter, r *http.Request) {
	if h.deps.Ready != nil && !h.deps.Ready() {
		writeText(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	if h.deps.Spool != nil {
		if err := h.deps.Spool.Health(); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	writeText(w, 200, "ready")
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(strings.TrimRight(msg, "\n") + "\n"))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeText(w, http.StatusInternalServerError, "encoding the answer failed: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// retryAfter is what producers are told to wait when the spool cannot take
// their events right now.
const retryAfter = 5 * time.Second
