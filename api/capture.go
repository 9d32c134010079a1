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
	endpoint := routeName(r)
	switch r.Method {
	case http.MethodPost, http.MethodGet:
	case http.MethodOptions:
		// Browsers preflight cross-origin POSTs; answer like capture does
		// (on TCP the browser check has already set the allowed origin).
		if w.Header().Get("Access-Control-Allow-Origin") == "" {
			w.Header().Set("Access-Control-Allow-Origin", "*")
		}
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
	buf, release, err := readBody(w, r, limit)
	defer release()
	if err != nil {
		status, msg := bodyError(err, limit, endpoint+"/")
		h.refuse(w, endpoint, status, msg)
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
	if msg, ok := h.store(w, r, batch); !ok {
		if msg != "" {
			h.refuse(w, endpoint, http.StatusServiceUnavailable, msg)
		}
		return
	}
	if r.URL.Query().Get("beacon") == "1" {
		h.metrics.ingested(endpoint, http.StatusNoContent, len(batch.Events))
		w.WriteHeader(http.StatusNoContent)
		return
	}
	h.metrics.ingested(endpoint, http.StatusOK, len(batch.Events))
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, `{"status":1}`)
}

// routeName is the metrics label and log name of a capture request: the
// route it matched ("/e" for /e/anything), never the raw path, so a client
// cannot mint label values.
func routeName(r *http.Request) string {
	p := r.Pattern
	if i := strings.IndexByte(p, ' '); i >= 0 {
		p = p[i+1:]
	}
	if p == "" || p == "/" {
		return "other"
	}
	return strings.TrimSuffix(p, "/")
}

// readBody reads the request body, at most limit bytes, into a pooled
// buffer; call release once the bytes are no longer used.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) (*bytes.Buffer, func(), error) {
	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	release := func() {
		if buf.Cap() <= 4<<20 { // do not pin huge buffers in the pool
			bodyPool.Put(buf)
		}
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	return buf, release, err
}

// bodyError says what a readBody failure means for the producer: 413 for a
// body over limit (naming the limit and where), else 400.
func bodyError(err error, limit int64, where string) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "request body is over the " + strconv.FormatInt(limit>>20, 10) + " MiB limit for " + where
	}
	return http.StatusBadRequest, "reading the request body failed: " + err.Error()
}

// store appends the batch to the spool and reports ok once it is fsynced.
// On failure it sets Retry-After and returns the message for a 503; msg is
// "" when the producer went away before the commit (nobody to answer).
func (h *Handler) store(w http.ResponseWriter, r *http.Request, b capture.Batch) (msg string, ok bool) {
	err := h.deps.Spool.Append(r.Context(), b.Token, b.HistoricalMigration, b.Events)
	switch {
	case err == nil:
		return "", true
	case errors.Is(err, r.Context().Err()):
		return "", false
	case errors.Is(err, spool.ErrFull):
		msg = "events not stored: " + err.Error() + "; retry later"
	case errors.Is(err, spool.ErrClosed):
		msg = "events not stored: the agent is shutting down; retry shortly"
	default:
		msg = "events not stored: " + err.Error()
	}
	w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds())))
	return msg, false
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
