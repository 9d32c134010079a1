package cli

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/hogrelay/hogrelay/flags"
)

func newFlagsCacheGroup(e env) *group {
	return &group{env: e, name: "flags cache", summary: "The agent's cache of PostHog's /flags answers (for offline answers).",
		subs: []entry{{"clear", "forget every cached answer (it holds distinct ids)", func(e env) command { return &flagsCacheClearCmd{env: e} }}}}
}

// flagsCacheClearCmd empties the answer cache: through the running agent,
// or with --data-dir in a stopped agent's data directory.
type flagsCacheClearCmd struct{ env }

func (c *flagsCacheClearCmd) Usage() string {
	return `usage: hogrelay flags cache clear [--data-dir DIR] [flags]

Forget every answer the agent keeps from PostHog's /flags for offline use
(data_dir/` + flags.AnswerFile + `, which holds distinct ids and the properties
sent). Until PostHog answers again, flags that need it have no answer.
Served on the agent's admin socket. With --data-dir, clear the file of a
stopped agent instead of asking the running one.`
}

func (c *flagsCacheClearCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("flags cache clear")
	// The cache holds every user's distinct ids: an admin call.
	t := addTarget(c.env, fs).adminFlag()
	dataDir := fs.String("data-dir", "", "clear the cache file in this (stopped agent's) data directory")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if *dataDir != "" {
		path := filepath.Join(*dataDir, flags.AnswerFile)
		if err := flags.ClearAnswerFile(path); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "cleared %s\n", path)
		return nil
	}
	var out struct {
		Cleared int `json:"cleared_entries"`
	}
	if err := t.adminCall(ctx, http.MethodPost, "/hogrelay/v1/flags/cache/clear", nil, &out); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "cleared %d cached flag answers\n", out.Cleared)
	return nil
}
