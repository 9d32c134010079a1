package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/hogrelay/hogrelay/capture"
)

// v1Endpoint is the metrics label of every Capture v1 request.
const v1Endpoint = capture.V1Path

// handleCaptureV1 serves PostHog's Capture v1 (POST /i/v1/analytics/events):
// 200 {"results": {uuid: {"result": ...}}} once the request's events are
// fsynced in the spool; whole-request refusals as non-2xx
// {"error", "error_description"}.
func (h *Handler) handleCaptureV1(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		h.refuseV1(w, &capture.V1Error{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
			Description: r.Method + " is not allowed on " + r.URL.Path + " (use POST)"})
		return
	}
	cl := h.budget.claim(r.Context())
	defer cl.release()
	body, err := readBody(w, r, capture.V1BodyLimit, cl)
	if err != nil {
		status, msg := bodyError(err, capture.V1BodyLimit, capture.V1Path)
		h.refuseV1Body(w, status, msg)
		return
	}
	batch, results, err := capture.DecodeV1(capture.Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header,
		Body: body, Now: time.Now(), Reserve: cl.reserve,
	}, *h.ingest.Load())
	if status, msg, busy := budgetRefusal(err); busy {
		h.refuseV1Body(w, status, msg)
		return
	}
	if err != nil {
		var ve *capture.V1Error
		if !errors.As(err, &ve) {
			ve = &capture.V1Error{Status: http.StatusBadRequest, Code: "invalid_batch", Description: err.Error()}
		}
		h.refuseV1(w, ve)
		return
	}
	if msg, ok := h.store(w, r, batch); !ok {
		// 503 is retryable for every v1 SDK and carries Retry-After.
		if msg != "" {
			h.refuseV1(w, &capture.V1Error{Status: http.StatusServiceUnavailable, Code: "service_unavailable", Description: msg})
		}
		return
	}
	h.metrics.ingested(v1Endpoint, http.StatusOK, len(batch.Events))
	if dropped := len(results) - len(batch.Events); dropped > 0 {
		h.log.Debug().Str("endpoint", v1Endpoint).Int("dropped", dropped).Msg("capture v1: events refused one by one")
	}
	writeJSON(w, http.StatusOK, struct {
		Results map[string]capture.V1Result `json:"results"`
	}{results})
}

// refuseV1Body refuses a body that could not be read or decoded in budget.
func (h *Handler) refuseV1Body(w http.ResponseWriter, status int, msg string) {
	code := "request_decoding_error"
	switch status {
	case http.StatusRequestEntityTooLarge:
		code = "payload_too_large"
	case http.StatusServiceUnavailable:
		code = "service_unavailable"
		w.Header().Set("Retry-After", "1")
	case http.StatusRequestTimeout:
		code = "request_timeout"
	}
	h.refuseV1(w, &capture.V1Error{Status: status, Code: code, Description: msg})
}

// refuseV1 answers a whole-request refusal in v1's error shape.
func (h *Handler) refuseV1(w http.ResponseWriter, e *capture.V1Error) {
	h.metrics.refused(v1Endpoint, e.Status)
	ev := h.log.Debug()
	if e.Status >= 500 {
		ev = h.log.Warn()
	}
	ev.Int("status", e.Status).Str("endpoint", v1Endpoint).Str("error", e.Code).Msg(e.Description)
	b, _ := json.Marshal(struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}{e.Code, e.Description})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.Status)
	_, _ = w.Write(b)
}
