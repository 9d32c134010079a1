package cli

import (
	"context"

	"github.com/hogrelay/hogrelay/spool"
)

// deadLetterCommands are the spool dead-letters subcommands.
func deadLetterCommands() []entry {
	return []entry{
		{"list", "show the dead letters and why PostHog refused them", func(e env) command { return &deadLettersListCmd{env: e} }},
		{"requeue", "move every dead letter back to pending, to be sent again", func(e env) command { return &deadLettersRequeueCmd{env: e} }},
		{"drop", "delete every dead letter", func(e env) command { return &deadLettersDropCmd{env: e} }},
	}
}

func newDeadLettersGroup(e env) *group {
	return &group{env: e, name: "spool dead-letters", summary: "Events PostHog refused for good (e.g. 400) are kept as dead letters until\nrequeued or dropped.", subs: deadLetterCommands()}
}

// deadLettersListCmd lists dead letters.
type deadLettersListCmd struct{ env }

func (c *deadLettersListCmd) Usage() string {
	return `usage: hogrelay spool dead-letters list [flags]

Print the dead letters (up to 1,000 records) with the reason PostHog gave,
as JSON.`
}

func (c *deadLettersListCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool dead-letters list")
	st := addAdminSpoolTarget(c.env, fs)
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if cl, live := st.live(ctx); live {
		return st.get(ctx, cl, c.stdout, "/hogrelay/v1/spool/dead-letters")
	}
	return st.withFile(true, func(s *spool.Spool) error {
		out, err := s.DeadLetterList(1000)
		if err != nil {
			return err
		}
		return printJSON(c.stdout, out)
	})
}

// deadLettersRequeueCmd moves dead letters back to pending.
type deadLettersRequeueCmd struct{ env }

func (c *deadLettersRequeueCmd) Usage() string {
	return `usage: hogrelay spool dead-letters requeue [flags]

Move every dead letter back to pending; the forwarder sends them again.
Prints how many events moved.`
}

func (c *deadLettersRequeueCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool dead-letters requeue")
	st := addAdminSpoolTarget(c.env, fs)
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if cl, live := st.live(ctx); live {
		return st.post(ctx, cl, c.stdout, "/hogrelay/v1/spool/dead-letters/requeue")
	}
	return st.withFile(false, func(s *spool.Spool) error {
		n, err := s.Requeue()
		if err != nil {
			return err
		}
		return printJSON(c.stdout, map[string]int64{"requeued": n})
	})
}

// deadLettersDropCmd deletes dead letters.
type deadLettersDropCmd struct{ env }

func (c *deadLettersDropCmd) Usage() string {
	return `usage: hogrelay spool dead-letters drop [flags]

Delete every dead letter for good (export them first with
'hogrelay spool export --dead-letters' to keep a copy). Prints how many
events were deleted.`
}

func (c *deadLettersDropCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("spool dead-letters drop")
	st := addAdminSpoolTarget(c.env, fs)
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if cl, live := st.live(ctx); live {
		return st.post(ctx, cl, c.stdout, "/hogrelay/v1/spool/dead-letters/drop")
	}
	return st.withFile(false, func(s *spool.Spool) error {
		n, err := s.DropDeadLetters()
		if err != nil {
			return err
		}
		return printJSON(c.stdout, map[string]int64{"dropped": n})
	})
}
