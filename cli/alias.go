package cli

import (
	"context"
	"errors"
)

// aliasCmd sends $create_alias.
type aliasCmd struct{ env }

func (c *aliasCmd) Usage() string {
	return `usage: hogrelay alias --distinct-id ID --alias OTHER [flags]

Send a $create_alias event: PostHog merges OTHER into ID.`
}

func (c *aliasCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("alias")
	t := addEventTarget(c.env, fs)
	distinctID := fs.String("distinct-id", "", "the id to keep (required)")
	alias := fs.String("alias", "", "the other id to merge into it (required)")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if *distinctID == "" || *alias == "" {
		return errors.New("alias needs --distinct-id and --alias")
	}
	return t.send(ctx, c.env, map[string]any{
		"event": "$create_alias", "distinct_id": *distinctID,
		"properties": map[string]any{"distinct_id": *distinctID, "alias": *alias},
	})
}
