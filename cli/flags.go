package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/hogrelay/hogrelay/api"
)

func runFlags(e env, args []string) error {
	if len(args) == 0 {
		return errors.New("flags needs a subcommand: get KEY | enabled KEY | all | list | reload")
	}
	switch args[0] {
	case "get", "enabled", "all":
		return runFlagEval(e, args[0], args[1:])
	case "list":
		return runFlagsList(e, args[1:])
	case "reload":
		fs := newFlagSet(e, "flags reload")
		t := addTarget(fs).adminFlag(fs)
		if _, err := parse(fs, args[1:]); err != nil {
			return err
		}
		// A reload spends PostHog's definitions rate limit: admin only.
		c, err := t.adminClient()
		if err != nil {
			return err
		}
		ctx, cancel := callCtx()
		defer cancel()
		var st api.FlagStatus
		if err := c.Do(ctx, http.MethodPost, "/hogrelay/v1/flags/reload", nil, &st); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "reloaded: %d flags, etag %s\n", st.FlagCount, orDash(st.ETag))
		return nil
	}
	return fmt.Errorf("flags: unknown subcommand %q (get, enabled, all, list, reload)", args[0])
}

func runFlagEval(e env, sub string, args []string) error {
	fs := newFlagSet(e, "flags "+sub)
	t := addTarget(fs)
	distinctID := fs.String("distinct-id", "", "whom to evaluate for (required)")
	localOnly := fs.Bool("local-only", false, "never ask PostHog; answer null when local evaluation cannot decide")
	payload := fs.Bool("payload", false, "print the flag's payload instead of its value")
	noEvent := fs.Bool("no-called-event", false, "do not record $feature_flag_called")
	var pp, groups, gp kvList
	fs.Var(&pp, "person-property", "person property k=v for evaluation (repeatable)")
	fs.Var(&groups, "group", "group type=key (repeatable)")
	fs.Var(&gp, "group-property", "group property type.k=v (repeatable)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	req := api.EvaluateRequest{DistinctID: *distinctID, OnlyLocal: *localOnly, SendCalledEvent: !*noEvent}
	if sub != "all" {
		if len(pos) != 1 {
			return fmt.Errorf("flags %s needs exactly one flag key", sub)
		}
		req.Key = pos[0]
	}
	if req.DistinctID == "" {
		return fmt.Errorf("flags %s needs --distinct-id", sub)
	}
	if req.PersonProperties, err = kvMap("person-property", pp); err != nil {
		return err
	}
	if req.Groups, err = groupMap(groups); err != nil {
		return err
	}
	if req.GroupProperties, err = groupPropMap(gp); err != nil {
		return err
	}
	if sub == "all" {
		var out json.RawMessage
		if err := t.call(http.MethodPost, "/hogrelay/v1/flags/evaluate", req, &out); err != nil {
			return err
		}
		fmt.Fprintln(e.stdout, string(out))
		return nil
	}
	var ans api.EvaluateAnswer
	if err := t.call(http.MethodPost, "/hogrelay/v1/flags/evaluate", req, &ans); err != nil {
		// 3, not 1: a script must tell "the agent could not be asked"
		// from "the flag is off".
		return exitError{code: 3, msg: err.Error()}
	}
	if ans.Error != "" {
		fmt.Fprintln(e.stderr, "hogrelay: no answer for", req.Key+":", ans.Error)
	}
	if sub == "enabled" {
		on := ans.Value != nil && ans.Value != false
		if !on {
			return exitError{code: 1}
		}
		return nil
	}
	if *payload {
		if len(ans.Payload) == 0 {
			fmt.Fprintln(e.stdout, "null")
		} else {
			fmt.Fprintln(e.stdout, string(ans.Payload))
		}
		return nil
	}
	b, _ := json.Marshal(ans.Value)
	if s, ok := ans.Value.(string); ok {
		b = []byte(s)
	}
	fmt.Fprintln(e.stdout, string(b))
	if ans.Error != "" {
		return exitError{code: 3}
	}
	return nil
}

func runFlagsList(e env, args []string) error {
	fs := newFlagSet(e, "flags list")
	t := addTarget(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	var out struct {
		Cache api.FlagStatus      `json:"cache"`
		Flags []api.FlagListEntry `json:"flags"`
	}
	if err := t.call(http.MethodGet, "/hogrelay/v1/flags", nil, &out); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(out, "", "  ")
		fmt.Fprintln(e.stdout, string(b))
		return nil
	}
	cache := out.Cache
	age := "never fetched"
	if !cache.FetchedAt.IsZero() {
		age = time.Since(cache.FetchedAt).Round(time.Second).String() + " ago (" + cache.FetchedAt.Local().Format(time.RFC3339) + ")"
	}
	fmt.Fprintf(e.stdout, "source: %s   fetched: %s   etag: %s   flags: %d\n", cache.Source, age, orDash(cache.ETag), cache.FlagCount)
	if cache.QuotaLimited {
		fmt.Fprintln(e.stdout, "QUOTA LIMITED: PostHog reports the feature flags quota exceeded; flags are not evaluated")
	}
	if cache.LastError != "" {
		fmt.Fprintf(e.stdout, "last error: %s (%s)\n", cache.LastError, cache.LastErrorAt.Local().Format(time.RFC3339))
	}
	sort.Slice(out.Flags, func(i, j int) bool { return out.Flags[i].Key < out.Flags[j].Key })
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
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

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
