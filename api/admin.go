package api

import (
	"bufio"
	"encoding/json"
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

// ExportLine is one line of `hogrelay spool export`: an event with where it
// sits in the spool. The project token is left out on purpose (keys never
// appear in tool output); Token hints which project it belongs to.
type ExportLine struct {
	Seq        uint64          `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Historical bool            `json:"historical_migration,omitempty"`
	Reason     string          `json:"dead_letter_reason,omitempty"`
	Event      json.RawMessage `json:"event,omitempty"`
}

// WriteExport streams every event of the chosen bucket as JSON lines; the
// CLI uses it both over the socket and on a stopped agent's file.
func WriteExport(w *bufio.Writer, sp *spool.Spool, which spool.Which) (int, error) {
	n := 0
	enc := json.NewEncoder(w)
	err := sp.Each(which, func(rec spool.Record) error {
		if len(rec.Events) == 0 {
			n++
			return enc.Encode(ExportLine{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Reason: rec.Reason})
		}
		for _, e := range rec.Events {
			line := ExportLine{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Historical: rec.Historical, Reason: rec.Reason, Event: e}
			if !json.Valid(e) {
				line.Event = nil
				line.Reason = "stored bytes are not valid JSON"
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	return n, err
}

func (h *Handler) handleSpoolExport(w http.ResponseWriter, r *http.Request) {
	which := spool.Pending
	if b, _ := strconv.ParseBool(r.URL.Query().Get("dead_letters")); b {
		which = spool.DeadLetters
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	bw := bufio.NewWriterSize(w, 64<<10)
	if _, err := WriteExport(bw, h.deps.Spool, which); err != nil {
		// Headers are gone; the CLI sees a truncated stream and this log.
		h.log.Error().Err(err).Msg("spool export failed midway")
	}
}

// DeadLetter is one entry of the dead-letter listing.
type DeadLetter struct {
	Seq        uint64          `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Reason     string          `json:"reason"`
	Event      json.RawMessage `json:"event,omitempty"`
}

func (h *Handler) handleDeadLetterList(w http.ResponseWriter, r *http.Request) {
	out, err := ListDeadLetters(h.deps.Spool, 1000)
	if err != nil {
		writeText(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, 200, out)
}

// ListDeadLetters returns up to limit dead letters, oldest first.
func ListDeadLetters(sp *spool.Spool, limit int) ([]DeadLetter, error) {
	out := []DeadLetter{}
	errStop := errLimit{}
	err := sp.Each(spool.DeadLetters, func(rec spool.Record) error {
		for _, e := range rec.Events {
			if len(out) >= limit {
				return errStop
			}
			d := DeadLetter{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Reason: rec.Reason}
			if json.Valid(e) {
				d.Event = e
			}
			out = append(out, d)
		}
		if len(rec.Events) == 0 {
			out = append(out, DeadLetter{Seq: rec.Seq, ReceivedAt: rec.ReceivedAt, Reason: rec.Reason})
		}
		return nil
	})
	if err == errStop {
		err = nil
	}
	return out, err
}

type errLimit struct{}

func (errLimit) Error() string { return "limit reached" }

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
