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
		out.SalvageReport, out.ImportResult, err = spool.SalvageInto(src, salvageChunkBytes, func(recs []spool.Record) (spool.ImportResult, error) {
			var res spool.ImportResult
			if err := cl.Do(ctx, http.MethodPost, "/hogrelay/v1/spool/import", spool.EncodeRecords(recs), &res); err != nil {
				return res, fmt.Errorf("re-queue into the running agent: %w", err)
			}
			return res, nil
		})
		if err != nil {
			err = fmt.Errorf("%w (%d events were re-queued before)", err, out.ImportResult.PendingEvents)
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
