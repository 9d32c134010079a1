package fakeposthog

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/hogrelay/hogrelay/flags/eval"
)

// Flag is one flag of a /flags v2 answer (flags.<key>) as PostHog's
// feature-flags service writes it. The fake has its own type rather than
// hogrelay's flags package: it stands for PostHog in that package's own
// tests, and a stand-in that encoded with the code under test could not
// catch that code's mistakes.
type Flag struct {
	Key     string  `json:"key"`
	Enabled bool    `json:"enabled"`
	Variant *string `json:"variant"`
	Reason  struct {
		Code           string `json:"code"`
		ConditionIndex *int   `json:"condition_index"`
		Description    string `json:"description"`
	} `json:"reason"`
	Metadata struct {
		ID          int64   `json:"id"`
		Version     int64   `json:"version"`
		Description *string `json:"description"`
		// Payload is the payload as PostHog stores it: a JSON document in
		// a string, or null.
		Payload *string `json:"payload"`
	} `json:"metadata"`
}

// flagOf is res as PostHog answers it.
func flagOf(res eval.Result) Flag {
	f := Flag{Key: res.Key, Enabled: res.Enabled}
	if res.Variant != "" {
		v := res.Variant
		f.Variant = &v
	}
	f.Reason.Code, f.Reason.ConditionIndex, f.Reason.Description = res.Reason.Code, res.Reason.ConditionIndex, res.Reason.Description
	f.Metadata.ID, f.Metadata.Version = res.ID, res.Version
	stored := res.StoredPayload
	if len(stored) == 0 {
		stored = res.Payload
	}
	if len(stored) > 0 && string(stored) != "null" {
		// PostHog keeps a payload as text; a JSON string is that text quoted.
		text := string(stored)
		var unquoted string
		if json.Unmarshal(stored, &unquoted) == nil {
			text = unquoted
		}
		f.Metadata.Payload = &text
	}
	return f
}

// EvaluateFlags answers a remote-evaluation body the way PostHog's /flags
// would for this server's definitions: each active flag evaluated with
// flags/eval for the request's distinct id, groups and properties (v2 shape).
// This stand-in has no stored person or group properties, so a flag that
// needs them (flags/eval says inconclusive) is left out of the answer. It
// is the handler when none is set, so `hogrelay dev` and tests get answers
// per distinct id with only a project key.
func (s *Server) EvaluateFlags(body map[string]any) (int, any) {
	if status, resp := DefaultFlagsHandler(body); status != http.StatusOK {
		return status, resp
	}
	s.mu.Lock()
	ev, err := s.evaluatorLocked()
	s.mu.Unlock()
	if err != nil {
		return http.StatusInternalServerError, "fakeposthog: the flag definitions do not compile: " + err.Error()
	}
	in := evalInput(body)
	results, _ := ev.EvaluateAll(in)
	want := map[string]bool{}
	keys, _ := body["flag_keys_to_evaluate"].([]any)
	if keys == nil {
		keys, _ = body["flag_keys"].([]any)
	}
	for _, k := range keys {
		if ks, ok := k.(string); ok {
			want[ks] = true
		}
	}
	out := map[string]Flag{}
	for k, r := range results {
		if len(want) == 0 || want[k] {
			out[k] = flagOf(r)
		}
	}
	return http.StatusOK, map[string]any{"flags": out, "errorsWhileComputingFlags": false, "requestId": newUUIDv4()}
}

// ExpectedFlags is what EvaluateFlags gives for a distinct id with no groups
// or properties: flag key → value (true, false or the variant). Tests
// compare what an SDK got through the agent with it.
func (s *Server) ExpectedFlags(distinctID string) map[string]any {
	_, resp := s.EvaluateFlags(map[string]any{"token": "phc_expected", "distinct_id": distinctID})
	out := map[string]any{}
	if m, ok := resp.(map[string]any); ok {
		for k, f := range m["flags"].(map[string]Flag) {
			if f.Variant != nil {
				out[k] = *f.Variant
			} else {
				out[k] = f.Enabled
			}
		}
	}
	return out
}

// evaluatorLocked compiles the current definitions once per generation.
// Callers hold s.mu.
func (s *Server) evaluatorLocked() (*eval.Evaluator, error) {
	if s.flags.ev != nil && s.flags.evGeneration == s.flags.generation {
		return s.flags.ev, nil
	}
	ev, err := eval.Compile(s.flags.defs)
	if err != nil {
		return nil, err
	}
	s.flags.ev, s.flags.evGeneration = ev, s.flags.generation
	return ev, nil
}

func evalInput(body map[string]any) eval.Input {
	in := eval.Input{DistinctID: firstString(body, "distinct_id", "$distinct_id")}
	if in.DistinctID == "" {
		if v, ok := body["distinct_id"]; ok && v != nil {
			in.DistinctID = fmt.Sprint(v)
		}
	}
	in.DeviceID = firstString(body, "device_id", "$device_id")
	if g, ok := body["groups"].(map[string]any); ok && len(g) > 0 {
		in.Groups = map[string]string{}
		for k, v := range g {
			in.Groups[k] = fmt.Sprint(v)
		}
	}
	in.PersonProperties, _ = body["person_properties"].(map[string]any)
	if gp, ok := body["group_properties"].(map[string]any); ok && len(gp) > 0 {
		in.GroupProperties = map[string]map[string]any{}
		for k, v := range gp {
			if m, ok := v.(map[string]any); ok {
				in.GroupProperties[k] = m
			}
		}
	}
	return in
}
