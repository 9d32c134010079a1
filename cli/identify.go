package cli

import (
	"context"
	"errors"
)

// identifyCmd sends $identify.
type identifyCmd struct{ env }

func (c *identifyCmd) Usage() string {
	return `usage: hogrelay identify --distinct-id ID [--set k=v] [--set-once k=v] [flags]

Send an $identify event setting a person's properties.`
}

func (c *identifyCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("identify")
	t := addEventTarget(c.env, fs)
	distinctID := fs.String("distinct-id", "", "the person's id (required)")
	var set, setOnce kvList
	fs.Var(&set, "set", "person property k=v (repeatable)")
	fs.Var(&setOnce, "set-once", "person property set only if unset, k=v (repeatable)")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if *distinctID == "" {
		return errors.New("identify needs --distinct-id")
	}
	ev, err := buildEvent(*distinctID, "$identify", "", "", nil, set, setOnce, nil)
	if err != nil {
		return err
	}
	return t.send(ctx, c.env, ev)
}
