package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/hogrelay/hogrelay/api"
)

// flagsEvalCmd is flags get, flags enabled and flags all: one evaluation
// request, three ways of printing its answer.
type flagsEvalCmd struct {
	env
	sub string // "get", "enabled" or "all"
}

func (c *flagsEvalCmd) Usage() string {
	switch c.sub {
	case "get":
		return `usage: hogrelay flags get KEY --distinct-id ID [flags]

Print flag KEY's value for a person (true, false or the variant), or with
--payload its payload. Exit status 3 when there is no answer (null is
printed), 4 when the answer is PostHog's last one, from the agent's answer
cache, because PostHog cannot be reached (stderr says how old it is).`
	case "enabled":
		return `usage: hogrelay flags enabled KEY --distinct-id ID [flags]

Exit 0 when flag KEY is on (true or any variant) for a person, 1 when it is
off or has no answer (stderr says why), 3 when the agent could not be asked.
A cached answer (PostHog unreachable) counts as its value, so scripts keep
working in an outage; stderr says it is cached.`
	}
	return `usage: hogrelay flags all --distinct-id ID [flags]

Print every flag's value for a person as JSON ("sources" says local, remote
or cached per flag). Exit status 4 when answers came from the answer cache
because PostHog cannot be reached.`
}

func (c *flagsEvalCmd) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("flags " + c.sub)
	t := addTarget(c.env, fs)
	distinctID := fs.String("distinct-id", "", "whom to evaluate for (required)")
	localOnly := fs.Bool("local-only", false, "never ask PostHog; answer null when local evaluation cannot decide")
	var payload *bool
	if c.sub == "get" {
		payload = fs.Bool("payload", false, "print the flag's payload instead of its value")
	}
	noEvent := fs.Bool("no-called-event", false, "do not record $feature_flag_called")
	var pp, groups, gp kvList
	fs.Var(&pp, "person-property", "person property k=v for evaluation (repeatable)")
	fs.Var(&groups, "group", "group type=key (repeatable)")
	fs.Var(&gp, "group-property", "group property type.k=v (repeatable)")
	var want []string
	if c.sub != "all" {
		want = []string{"KEY"}
	}
	pos, err := parse(c.env, fs, c.Usage(), args, want...)
	if err != nil {
		return err
	}
	req := api.EvaluateRequest{DistinctID: *distinctID, OnlyLocal: *localOnly, SendCalledEvent: !*noEvent}
	if c.sub != "all" {
		req.Key = pos[0]
	}
	if req.DistinctID == "" {
		return fmt.Errorf("flags %s needs --distinct-id", c.sub)
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
	if c.sub == "all" {
		var out json.RawMessage
		if err := t.call(ctx, http.MethodPost, "/hogrelay/v1/flags/evaluate", req, &out); err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, string(out))
		var all api.EvaluateAllAnswer
		if json.Unmarshal(out, &all) == nil && !all.CachedAt.IsZero() {
			c.cachedNote("answers", all.CachedAt)
			return exitError{code: 4}
		}
		return nil
	}
	var ans api.EvaluateAnswer
	if err := t.call(ctx, http.MethodPost, "/hogrelay/v1/flags/evaluate", req, &ans); err != nil {
		// 3, not 1: a script must tell "the agent could not be asked"
		// from "the flag is off".
		return exitError{code: 3, msg: err.Error()}
	}
	if ans.Error != "" {
		fmt.Fprintln(c.stderr, "hogrelay: no answer for", req.Key+":", ans.Error)
	}
	cached := ans.Source == "cached"
	if cached {
		c.cachedNote("the answer for "+req.Key, ans.CachedAt)
	}
	if c.sub == "enabled" {
		on := ans.Value != nil && ans.Value != false
		if !on {
			return exitError{code: 1}
		}
		return nil
	}
	if *payload {
		if len(ans.Payload) == 0 {
			fmt.Fprintln(c.stdout, "null")
		} else {
			fmt.Fprintln(c.stdout, string(ans.Payload))
		}
	} else {
		b, _ := json.Marshal(ans.Value)
		if s, ok := ans.Value.(string); ok {
			b = []byte(s)
		}
		fmt.Fprintln(c.stdout, string(b))
	}
	switch {
	case ans.Error != "":
		return exitError{code: 3}
	case cached:
		return exitError{code: 4}
	}
	return nil
}

// cachedNote says on stderr that what follows is PostHog's last answer,
// not a fresh one, and how old it is.
func (c *flagsEvalCmd) cachedNote(what string, at time.Time) {
	fmt.Fprintf(c.stderr, "hogrelay: %s cached: PostHog cannot be reached; this is its answer from %s ago (%s)\n",
		what+" is", time.Since(at).Round(time.Second), at.Local().Format(time.RFC3339))
}
