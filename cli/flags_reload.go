package cli

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hogrelay/hogrelay/api"
)

// flagsReloadCmd fetches definitions now.
type flagsReloadCmd struct{ env }

func (c *flagsReloadCmd) Usage() string {
	return `usage: hogrelay flags reload [flags]

Ask the agent to fetch flag definitions from PostHog now, instead of waiting
for the next poll. Served on the agent's admin socket.`
}

func (c *flagsReloadCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("flags reload")
	// A reload spends PostHog's definitions rate limit: an admin call.
	t := addTarget(c.env, fs).adminFlag()
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	var st api.FlagStatus
	if err := t.adminCall(ctx, http.MethodPost, "/hogrelay/v1/flags/reload", nil, &st); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "reloaded: %d flags, etag %s\n", st.FlagCount, orDash(st.ETag))
	return nil
}
