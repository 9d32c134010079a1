package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/spool"
)

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
	cl := h.budget.claim(r.Context())
	defer cl.release()
	body, err := readBody(w, r, limit, cl)
	if err != nil {
		status, msg := bodyError(err, limit, endpoint+"/")
		h.refuseBody(w, endpoint, status, msg)
		return
	}
	batch, err := capture.Decode(capture.Request{
		Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header,
		Body: body, Now: time.Now(), Reserve: cl.reserve,
	}, *h.ingest.Load())
	if status, msg, busy := budgetRefusal(err); busy {
		h.refuseBody(w, endpoint, status, msg)
		return
	}
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

// Body read limits: a body must keep arriving at bodyMinRate after a grace
// period, so connections that trickle bytes are closed instead of holding a
// file descriptor and decode budget forever.
const (
	bodyGrace   = 10 * time.Second
	bodyMinRate = 64 << 10 // bytes per second
)

// readBody reads the request body, at most limit bytes, reserving its
// memory from the request's claim on the decode budget as it grows.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, cl *claim) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	initial := int64(16 << 10)
	if r.ContentLength > 0 {
		// One allocation of the declared size, and the budget for decoding
		// a plain JSON body of it (capture's payload copies) taken at once.
		initial = r.ContentLength + 1
		if err := cl.prepay((1 + capture.DecodeCopies) * initial); err != nil {
			w.Header().Set("Connection", "close")
			return nil, err
		}
	}
	body := &minRateReader{r: r.Body, rc: http.NewResponseController(w), start: time.Now()}
	data, err := capture.ReadLimited(body, initial, limit, cl.reserve)
	if err == nil && int64(len(data)) > limit {
		err = &http.MaxBytesError{Limit: limit}
	}
	if err != nil {
		// The rest of the body is not wanted: close the connection after
		// the answer instead of letting the server read (trickle) it on.
		w.Header().Set("Connection", "close")
		return nil, err
	}
	_ = body.rc.SetReadDeadline(time.Time{})
	return data, nil
}

// minRateReader moves the connection's read deadline along with the bytes
// received: start + bodyGrace + received/bodyMinRate.
type minRateReader struct {
	r     io.Reader
	rc    *http.ResponseController
	start time.Time
	n     int64
}

func (m *minRateReader) Read(p []byte) (int, error) {
	_ = m.rc.SetReadDeadline(m.start.Add(bodyGrace + time.Duration(m.n*int64(time.Second)/bodyMinRate)))
	n, err := m.r.Read(p)
	m.n += int64(n)
	return n, err
}

// bodyError says what a readBody failure means for the producer: 413 for a
// body over limit (naming the limit and where), else 400.
func bodyError(err error, limit int64, where string) (int, string) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return http.StatusRequestEntityTooLarge, "request body is over the " + strconv.FormatInt(limit>>20, 10) + " MiB limit for " + where
	}
	var be *errBudget
	if errors.As(err, &be) {
		if be.tooBig {
			return http.StatusRequestEntityTooLarge, be.Error()
		}
		return http.StatusServiceUnavailable, be.Error()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return http.StatusRequestTimeout, "the request body arrived too slowly (the agent needs " +
			strconv.Itoa(bodyMinRate>>10) + " KiB/s after the first " + bodyGrace.String() + ")"
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

// budgetRefusal is the answer to a decode-budget refusal inside decoding.
func budgetRefusal(err error) (int, string, bool) {
	var be *errBudget
	if !errors.As(err, &be) {
		return 0, "", false
	}
	status, msg := bodyError(be, 0, "")
	return status, msg, true
}

// refuseBody refuses a request whose body could not be read or decoded in
// budget; a 503 tells the producer when to retry.
func (h *Handler) refuseBody(w http.ResponseWriter, endpoint string, status int, msg string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	h.refuse(w, endpoint, status, msg)
}

func (h *Handler) refuse(w http.ResponseWriter, endpoint string, status int, msg string) {
	h.metrics.refused(endpoint, status)
	if status >= 500 {
		// A full disk or spool refuses every request while it lasts: one
		// line per burst, with how many were left out.
		if ok, n := h.refusals.Allow(); ok {
			h.log.Warn().Int("status", status).Str("endpoint", endpoint).Int("suppressed_since_last", n).Msg(msg)
		}
	} else {
		h.log.Debug().Int("status", status).Str("endpoint", endpoint).Msg(msg)
	}
	writeText(w, status, msg)
}
