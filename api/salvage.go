package api

import (
	"errors"
	"io"
	"net/http"

	"github.com/hogrelay/hogrelay/spool"
)

// maxImportBody bounds one import request; `hogrelay spool salvage` sends
// records in chunks well below it.
const maxImportBody = 64 << 20

// handleSpoolImport re-queues records salvaged from a damaged spool file
// (`hogrelay spool salvage FILE` reads the file and posts them here, framed
// by spool.EncodeRecords).
func (h *Handler) handleSpoolImport(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxImportBody))
	if err != nil {
		writeText(w, http.StatusRequestEntityTooLarge, "spool import: body over 64 MiB or unreadable: "+err.Error())
		return
	}
	recs, err := spool.DecodeRecords(body)
	if err != nil {
		writeText(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := h.deps.Spool.Import(recs)
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, spool.ErrFull) {
			status = http.StatusInsufficientStorage
		}
		h.log.Error().Err(err).Int64("requeued_events", res.PendingEvents).Msg("spool import stopped")
		writeText(w, status, err.Error())
		return
	}
	h.log.Info().Int64("requeued_events", res.PendingEvents).Int64("requeued_dead_letters", res.DeadEvents).
		Msg("salvaged events re-queued")
	writeJSON(w, 200, res)
}
