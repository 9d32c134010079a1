package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/hogrelay/hogrelay/spool"
)

// salvageChunkBytes bounds one import request to the live agent.
const salvageChunkBytes = 8 << 20

// runSpoolSalvage reads every intact record of a damaged spool file (one
// bbolt cannot open, e.g. a spool.db.corrupt-* the agent moved aside) and
// re-queues it: into the running agent over its socket, or into the stopped
// agent's spool file.
func runSpoolSalvage(e env, args []string) error {
	fs := newFlagSet(e, "spool salvage")
	st := spoolTarget{target: addTarget(fs), file: fs.String("file", "", "re-queue into this spool file directly (agent stopped) instead of the configured one")}
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return errors.New("spool salvage needs the damaged file: hogrelay spool salvage FILE (e.g. /var/lib/hogrelay/spool.db.corrupt-…)")
	}
	src := rest[0]
	out := struct {
		spool.SalvageReport
		spool.ImportResult
		Live bool `json:"live"`
	}{}
	if c, live := st.live(); live {
		out.Live = true
		var batch []spool.Record
		size := 0
		send := func() error {
			var res spool.ImportResult
			if err := c.Do(ctxNoDeadline(), http.MethodPost, "/hogrelay/v1/spool/import", spool.EncodeRecords(batch), &res); err != nil {
				return fmt.Errorf("re-queue into the running agent (%d events already re-queued): %w", out.ImportResult.PendingEvents, err)
			}
			out.ImportResult.PendingEvents += res.PendingEvents
			out.ImportResult.DeadEvents += res.DeadEvents
			batch, size = batch[:0], 0
			return nil
		}
		out.SalvageReport, err = spool.Salvage(src, func(r spool.Record) error {
			batch = append(batch, r)
			if size += r.Size; size >= salvageChunkBytes {
				return send()
			}
			return nil
		})
		if err == nil && len(batch) > 0 {
			err = send()
		}
	} else {
		s, oerr := st.open(false)
		if oerr != nil {
			return oerr
		}
		if same(s.Path(), src) {
			_ = s.Close()
			return fmt.Errorf("spool salvage: %s is the spool itself; name the damaged file", src)
		}
		out.SalvageReport, out.ImportResult, err = s.SalvageFrom(src)
		if cerr := s.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(e.stdout, string(b))
	return err
}

func same(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
