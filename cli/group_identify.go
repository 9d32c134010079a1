package cli

import (
	"context"
	"errors"
)

// groupIdentifyCmd sends $groupidentify.
type groupIdentifyCmd struct{ env }

func (c *groupIdentifyCmd) Usage() string {
	return `usage: hogrelay group-identify --type TYPE --key KEY [--property k=v] [flags]

Send a $groupidentify event setting a group's properties.`
}

func (c *groupIdentifyCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("group-identify")
	t := addEventTarget(c.env, fs)
	typ := fs.String("type", "", "group type, e.g. company (required)")
	key := fs.String("key", "", "group key, e.g. acme (required)")
	distinctID := fs.String("distinct-id", "", "distinct id to send it as (default: $<type>_<key>, as the SDKs do)")
	var props kvList
	fs.Var(&props, "property", "group property k=v (repeatable)")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if *typ == "" || *key == "" {
		return errors.New("group-identify needs --type and --key")
	}
	set, err := kvMap("property", props)
	if err != nil {
		return err
	}
	if set == nil {
		set = map[string]any{}
	}
	id := *distinctID
	if id == "" {
		id = "$" + *typ + "_" + *key
	}
	return t.send(ctx, c.env, map[string]any{
		"event": "$groupidentify", "distinct_id": id,
		"properties": map[string]any{"$group_type": *typ, "$group_key": *key, "$group_set": set},
	})
}
