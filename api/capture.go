package api

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/spool"
)

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// handleCapture answers like PostHog's capture: 200 {"status":1} — but only
// after every event of the request is fsynced in the spool.
func (h *Handler) handleCapture(w http.ResponseWriter, r *http.Request) {
	endpoint := strings.TrimSuffix(r.URL.Path, "/")
	switch r.Method {
	case http.MethodPost, http.MethodGet:
	case http.MethodOptions:
		// Browsers preflight cross-origin POSTs; answer like capture does.
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		w.Header().Set("Access-Control-Allow-Headers", "*")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, POST, OPTIONS")
		h.refuse(w, endpoint, http.StatusMethodNotAllowed, r.Method+" is not allowed on "+r.URL.Path+" (use POST)")
		return
	}
	limit, _ := capture.Route(r.URL.Path)
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 4<<20 { // do not pin huge buffers in the pool
			bodyPool.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit)); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.refuse(w, endpoint, http.StatusRequestEntityTooLarge,
				"request body is over the "+strconv.FormatInt(limit>>20, 10)+" MiB limit for "+endpoint+"/")
			return
		}
		h.refuse(w, endpoint, http.StatusBadRequest, "reading the request body failed: "+err.Error())
		return
	}
	batch, err := capture.Decode(capture.Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header,
		Body: buf.Bytes(), Now: time.Now(),
	}, *h.ingest.Load())
	if err != nil {
		var ce *capture.Error
		if errors.As(err, &ce) {
			h.refuse(w, endpoint, ce.Status, ce.Message)
			return
		}
		h.refuse(w, endpoint, http.StatusBadRequest, err.Error())
		return
	}
	if err := h.deps.Spool.Append(r.Context(), batch.Token, batch.HistoricalMigration, batch.Events); err != nil {
		status, msg := http.StatusServiceUnavailable, "events not stored: "+err.Error()
		switch {
		case errors.Is(err, spool.ErrFull):
			msg = "events not stored: " + err.Error() + "; retry later"
		case errors.Is(err, spool.ErrClosed):
			msg = "events not stored: the agent is shutting down; retry shortly"
		case errors.Is(err, r.Context().Err()):
			return // the producer went away before the commit; nobody to answer
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
		h.refuse(w, endpoint, status, msg)
		return
	}
	h.metrics.ingested(endpoint, len(batch.Events))
	if r.URL.Query().Get("beacon") == "1" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":1}`)
}

func (h *Handler) refuse(w http.ResponseWriter, endpoint string, status int, msg string) {
	h.metrics.refused(endpoint, status)
	if status >= 500 {
		h.log.Warn().Int("status", status).Str("endpoint", endpoint).Msg(msg)
	} else {
		h.log.Debug().Int("status", status).Str("endpoint", endpoint).Msg(msg)
	}
	writeText(w, status, msg)
}
