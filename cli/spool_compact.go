package cli

import (
	"context"

	"github.com/hogrelay/hogrelay/spool"
)

// spoolCompactCmd rewrites the spool file.
type spoolCompactCmd struct{ env }

func (c *spoolCompactCmd) Usage() string {
	return `usage: hogrelay spool compact [flags]

Rewrite the spool file without its free pages, so a file that grew during an
outage gives the space back. Prints the sizes before and after.`
}

func (c *spoolCompactCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool compact")
	st := addAdminSpoolTarget(c.env, fs)
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if cl, live := st.live(ctx); live {
		return st.post(ctx, cl, c.stdout, "/hogrelay/v1/spool/compact")
	}
	return st.withFile(false, func(s *spool.Spool) error {
		res, err := s.Compact()
		if err != nil {
			return err
		}
		return printJSON(c.stdout, map[string]any{"before_bytes": res.Before, "after_bytes": res.After, "took_ms": res.Took.Milliseconds()})
	})
}
