package cli

import (
	"context"

	"github.com/hogrelay/hogrelay/spool"
)

// spoolStatsCmd prints the spool's counters.
type spoolStatsCmd struct{ env }

func (c *spoolStatsCmd) Usage() string {
	return `usage: hogrelay spool stats [flags]

Print the spool's pending and dead-letter counts and bytes, its file size and
its bound (max_bytes) as JSON.`
}

func (c *spoolStatsCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool stats")
	st := addSpoolTarget(c.env, fs)
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if cl, live := st.live(ctx); live {
		return st.get(ctx, cl, c.stdout, "/hogrelay/v1/spool/stats")
	}
	return st.withFile(true, func(s *spool.Spool) error {
		stats, err := s.Stats()
		if err != nil {
			return err
		}
		return printJSON(c.stdout, stats)
	})
}
