package cli

import (
	"context"
	"errors"
)

// captureCmd sends one event.
type captureCmd struct{ env }

func (c *captureCmd) Usage() string {
	return `usage: hogrelay capture --distinct-id ID --event NAME [flags]

Send one event to the agent, as an SDK would, and print its uuid. The agent
stores it durably and forwards it to PostHog.`
}

func (c *captureCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("capture")
	t := addEventTarget(c.env, fs)
	distinctID := fs.String("distinct-id", "", "who did it (required)")
	event := fs.String("event", "", "event name (required)")
	ts := fs.String("timestamp", "", "when it happened, RFC3339 (default: now)")
	id := fs.String("uuid", "", "event uuid (default: a new uuid v7)")
	sendFlags := fs.Bool("send-feature-flags", false, "let the agent add $feature/<key> and $active_feature_flags (local evaluation, else PostHog's /flags, else its cached answer)")
	var props, set, setOnce, groups kvList
	fs.Var(&props, "property", "event property k=v (repeatable; JSON values keep their type)")
	fs.Var(&set, "set", "person property to $set, k=v (repeatable)")
	fs.Var(&setOnce, "set-once", "person property to $set_once, k=v (repeatable)")
	fs.Var(&groups, "group", "group type=key the event belongs to (repeatable)")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if *distinctID == "" || *event == "" {
		return errors.New("capture needs --distinct-id and --event")
	}
	ev, err := buildEvent(*distinctID, *event, *ts, *id, props, set, setOnce, groups)
	if err != nil {
		return err
	}
	if *sendFlags {
		ev["send_feature_flags"] = true
	}
	return t.send(ctx, c.env, ev)
}
