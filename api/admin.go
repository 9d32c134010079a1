package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hogrelay/hogrelay/spool"
)

func (h *Handler) handleStatus(w http.ResponseWriter, r *http.Request) {
	if h.deps.Status == nil {
		writeText(w, http.StatusNotImplemented, "status is not available")
		return
	}
	writeJSON(w, 200, h.deps.Status())
}

func (h *Handler) handleSpoolStats(w http.ResponseWriter, r *http.Request) {
	st, err := h.deps.Spool.Stats()
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, 200, st)
}

func (h *Handler) handleSpoolExport(w http.ResponseWriter, r *http.Request) {
	which := spool.Pending
	if b, _ := strconv.ParseBool(r.URL.Query().Get("dead_letters")); b {
		which = spool.DeadLetters
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	if _, err := h.deps.Spool.Export(deadlineWriter{w: w, rc: http.NewResponseController(w)}, which); err != nil {
		// Headers are gone; the CLI sees a truncated stream and this log.
		h.log.Error().Err(err).Msg("spool export failed midway")
	}
}

// adminWriteTimeout is how long one write of an admin answer may block on a
// client that does not read; then the connection is given up.
const adminWriteTimeout = 30 * time.Second

// deadlineWriter renews the connection's write deadline before every write,
// so a long export may take as long as it needs while a stalled reader is
// dropped after adminWriteTimeout.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(adminWriteTimeout))
	return d.w.Write(p)
}

func (h *Handler) handleDeadLetterList(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(adminWriteTimeout))
	out, err := h.deps.Spool.DeadLetterList(1000)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, 200, out)
}

func (h *Handler) handleDeadLetterRequeue(w http.ResponseWriter, r *http.Request) {
	n, err := h.deps.Spool.Requeue()
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	h.log.Info().Int64("events", n).Msg("dead letters re-queued")
	writeJSON(w, 200, map[string]int64{"requeued": n})
}

func (h *Handler) handleDeadLetterDrop(w http.ResponseWriter, r *http.Request) {
	n, err := h.deps.Spool.DropDeadLetters()
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	h.log.Warn().Int64("events", n).Msg("dead letters dropped by operator request")
	writeJSON(w, 200, map[string]int64{"dropped": n})
}

func (h *Handler) handleCompact(w http.ResponseWriter, r *http.Request) {
	res, err := h.deps.Spool.Compact()
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, 200, map[string]any{"before_bytes": res.Before, "after_bytes": res.After, "took_ms": res.Took.Milliseconds()})
}

func (h *Handler) handleRetryNow(w http.ResponseWriter, r *http.Request) {
	if h.deps.Forwarder != nil {
		h.deps.Forwarder.Wake()
	}
	writeJSON(w, 200, map[string]bool{"woken": true})
}
