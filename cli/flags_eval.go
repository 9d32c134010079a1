package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

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
--payload its payload. Exit status 3 when the agent could not answer.`
	case "enabled":
		return `usage: hogrelay flags enabled KEY --distinct-id ID [flags]

Exit 0 when flag KEY is on (true or any variant) for a person, 1 when it is
off, 3 when the agent could not answer. Prints nothing.`
	}
	return `usage: hogrelay flags all --distinct-id ID [flags]

Print every flag's value for a person as JSON.`
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
		return nil
	}
	b, _ := json.Marshal(ans.Value)
	if s, ok := ans.Value.(string); ok {
		b = []byte(s)
	}
	fmt.Fprintln(c.stdout, string(b))
	if ans.Error != "" {
		return exitError{code: 3}
	}
	return nil
}
