package cli

import (
	"context"
	"errors"
)

// pageviewCmd sends $pageview.
type pageviewCmd struct{ env }

func (c *pageviewCmd) Usage() string {
	return `usage: hogrelay pageview --distinct-id ID --url URL [flags]

Send a $pageview event with $current_url set to URL.`
}

func (c *pageviewCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("pageview")
	t := addEventTarget(c.env, fs)
	distinctID := fs.String("distinct-id", "", "who viewed (required)")
	url := fs.String("url", "", "the page's URL, sent as $current_url (required)")
	var props kvList
	fs.Var(&props, "property", "event property k=v (repeatable)")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	if *distinctID == "" || *url == "" {
		return errors.New("pageview needs --distinct-id and --url")
	}
	ev, err := buildEvent(*distinctID, "$pageview", "", "", props, nil, nil, nil)
	if err != nil {
		return err
	}
	ev["properties"].(map[string]any)["$current_url"] = *url
	return t.send(ctx, c.env, ev)
}
