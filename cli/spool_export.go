package cli

import (
	"context"

	"github.com/hogrelay/hogrelay/spool"
)

// spoolExportCmd streams the spool's events as JSON lines.
type spoolExportCmd struct{ env }

func (c *spoolExportCmd) Usage() string {
	return `usage: hogrelay spool export [--dead-letters] [flags]

Print every pending event (or, with --dead-letters, every dead letter) as one
JSON line each, oldest first. Project keys are not printed.`
}

func (c *spoolExportCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool export")
	st := addAdminSpoolTarget(c.env, fs)
	deadLetters := fs.Bool("dead-letters", false, "export the dead-letter bucket instead of pending events")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if cl, live := st.live(ctx); live {
		path := "/hogrelay/v1/spool/export"
		if *deadLetters {
			path += "?dead_letters=1"
		}
		// Exports can be large: no overall deadline.
		return cl.Stream(ctx, path, c.stdout)
	}
	which := spool.Pending
	if *deadLetters {
		which = spool.DeadLetters
	}
	return st.withFile(true, func(s *spool.Spool) error {
		_, err := s.Export(c.stdout, which)
		return err
	})
}
