package cli

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/hogrelay/hogrelay/spool"
)

// salvageChunkBytes bounds one import request to the live agent.
const salvageChunkBytes = 8 << 20

// spoolSalvageCmd re-queues every intact record of a damaged spool file.
type spoolSalvageCmd struct{ env }

func (c *spoolSalvageCmd) Usage() string {
	return `usage: hogrelay spool salvage [flags] FILE

Read every intact event of a damaged spool file (one bbolt cannot open, such
as the spool.db.corrupt-* the agent moves aside) and re-queue it: into the
running agent over its socket, or, when no agent answers (or with --file),
into the stopped agent's spool file. Dead letters stay dead letters; records
whose checksum does not match are counted and left out. FILE is only read.
The agent already does this once by itself when it moves a file aside.`
}

// salvageResult is what the command prints.
type salvageResult struct {
	spool.SalvageReport
	spool.ImportResult
	Live bool `json:"live"`
}

func (c *spoolSalvageCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool salvage")
	st := addAdminSpoolTarget(c.env, fs)
	rest, err := parse(c.env, fs, c.Usage(), args, "FILE (the damaged spool file, e.g. /var/lib/hogrelay/spool.db.corrupt-…)")
	if err != nil {
		return err
	}
	src := rest[0]
	var out salvageResult
	if cl, live := st.live(ctx); live {
		out.Live = true
		var batch []spool.Record
		size := 0
		send := func() error {
			var res spool.ImportResult
			if err := cl.Do(ctx, http.MethodPost, "/hogrelay/v1/spool/import", spool.EncodeRecords(batch), &res); err != nil {
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
		err = st.withFile(false, func(s *spool.Spool) error {
			if samePath(s.Path(), src) {
				return fmt.Errorf("spool salvage: %s is the spool itself; name the damaged file", src)
			}
			var err error
			out.SalvageReport, out.ImportResult, err = s.SalvageFrom(src)
			return err
		})
	}
	if err != nil {
		return err
	}
	return printJSON(c.stdout, out)
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
