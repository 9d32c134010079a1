package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/hogrelay/hogrelay/api"
)

// flagsListCmd shows the cached definitions.
type flagsListCmd struct{ env }

func (c *flagsListCmd) Usage() string {
	return `usage: hogrelay flags list [--json] [flags]

List the flag definitions the agent holds, with where they came from, when
they were fetched and the last fetch error.`
}

func (c *flagsListCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("flags list")
	t := addTarget(c.env, fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(c.env, fs, c.Usage(), args); err != nil {
		return err
	}
	var out struct {
		Cache api.FlagStatus      `json:"cache"`
		Flags []api.FlagListEntry `json:"flags"`
	}
	if err := t.call(ctx, http.MethodGet, "/hogrelay/v1/flags", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(c.stdout, string(b))
		return nil
	}
	cache := out.Cache
	age := "never fetched"
	if !cache.FetchedAt.IsZero() {
		age = time.Since(cache.FetchedAt).Round(time.Second).String() + " ago (" + cache.FetchedAt.Local().Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(c.stdout, "source: %s   fetched: %s   etag: %s   flags: %d\n", cache.Source, age, orDash(cache.ETag), cache.FlagCount)
	for _, l := range api.FlagModeLines(cache) {
		fmt.Fprintln(c.stdout, l)
	}
	if cache.QuotaLimited {
		fmt.Fprintln(c.stdout, "QUOTA LIMITED: PostHog reports the feature flags quota exceeded; flags are not evaluated")
	}
	if cache.LastError != "" {
		fmt.Fprintf(c.stdout, "last error: %s (%s)\n", cache.LastError, cache.LastErrorAt.Local().Format(time.RFC3339))
	}
	sort.Slice(out.Flags, func(i, j int) bool { return out.Flags[i].Key < out.Flags[j].Key })
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tID\tACTIVE\tKIND")
	for _, f := range out.Flags {
		kind := "boolean"
		if f.Variants > 0 {
			kind = fmt.Sprintf("multivariate (%d)", f.Variants)
		}
		if f.GroupType != nil {
			kind += fmt.Sprintf(", group type %d", *f.GroupType)
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\n", f.Key, f.ID, f.Active, kind)
	}
	return tw.Flush()
}
