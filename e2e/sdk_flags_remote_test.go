package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

type nodeStepsOutput struct {
	Results []struct {
		Success bool            `json:"success"`
		Value   json.RawMessage `json:"value"`
	} `json:"results"`
	Requests []struct {
		Method string `json:"method"`
		URL    string `json:"url"`
		Body   string `json:"body"`
		Status int    `json:"status"`
	} `json:"requests"`
	Errors []string `json:"errors"`
}

// runNodeSteps runs e2e/sdk/flags_remote.mjs: an unmodified posthog-node
// with only a project key, host = the agent, doing steps.
func runNodeSteps(t *testing.T, host string, steps []map[string]any) nodeStepsOutput {
	t.Helper()
	sdkDir, nodeBin := sdkRequireNode(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	b, err := json.Marshal(map[string]any{"host": host, "steps": steps})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(in, b, 0o600))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "flags_remote.mjs", in, out)
	cmd.Dir = sdkDir
	cmd.Env = append(os.Environ(), "POSTHOG_CAPTURE_MODE=")
	combined, err := cmd.CombinedOutput()
	require.NoError(t, err, "node flags_remote.mjs:\n%s", tail(string(combined), 40))
	var o nodeStepsOutput
	raw, err := os.ReadFile(out)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &o))
	require.Empty(t, o.Errors, "posthog-node reported errors")
	return o
}

// An unmodified posthog-node with only a project key and the agent as its
// host gets PostHog's answers (here the stand-in's, per distinct id and
// person properties), and its $feature_flag_called events arrive.
func TestSDKPosthogNodeRemoteEvaluation(t *testing.T) {
	sdkRequireNode(t)
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)
	host := sdkAgentURL(a)

	var doc struct {
		Flags []struct {
			Key    string `json:"key"`
			Active bool   `json:"active"`
		} `json:"flags"`
	}
	require.NoError(t, json.Unmarshal(fakeposthog.SampleFlagDefinitions, &doc))
	type subject struct {
		id    string
		props map[string]any
	}
	var subjects []subject
	for i := range 24 {
		s := subject{id: fmt.Sprintf("node-remote-%d", i), props: map[string]any{}}
		if i%3 == 0 {
			s.props["email"] = fmt.Sprintf("n%d@example.com", i)
		}
		subjects = append(subjects, s)
	}
	eventsFor := map[string]bool{subjects[0].id: true, subjects[1].id: true, subjects[3].id: true}
	steps := []map[string]any{{"action": "init", "api_key": projectKey}}
	for _, s := range subjects {
		for _, f := range doc.Flags {
			steps = append(steps, map[string]any{"action": "get_feature_flag", "key": f.Key, "distinct_id": s.id,
				"person_properties": s.props, "send_feature_flag_events": eventsFor[s.id]})
		}
		steps = append(steps, map[string]any{"action": "get_all_flags", "distinct_id": s.id, "person_properties": s.props})
	}
	steps = append(steps, map[string]any{"action": "flush"})
	out := runNodeSteps(t, host, steps)

	i := 1
	variants := map[string]bool{}
	for _, s := range subjects {
		_, resp := up.EvaluateFlags(map[string]any{"token": projectKey, "distinct_id": s.id, "person_properties": s.props})
		want := map[string]any{}
		for k, f := range resp.(map[string]any)["flags"].(map[string]fakeposthog.Flag) {
			want[k] = wireValue(f)
		}
		for _, f := range doc.Flags {
			r := out.Results[i]
			i++
			require.True(t, r.Success)
			var got any
			require.NoError(t, json.Unmarshal(r.Value, &got))
			if w, ok := want[f.Key]; ok {
				require.Equal(t, w, got, "flag %s for %s", f.Key, s.id)
				variants[fmt.Sprint(w)] = true
			} else {
				require.Equal(t, sdkUndefinedJSON, string(r.Value), "flag %s for %s: the stand-in left it out", f.Key, s.id)
			}
		}
		var all map[string]any
		require.NoError(t, json.Unmarshal(out.Results[i].Value, &all))
		i++
		require.Equal(t, want, all, "getAllFlags for %s", s.id)
	}
	require.Greater(t, len(variants), 2, "answers vary across subjects")
	for _, r := range out.Requests {
		require.NotContains(t, r.URL, "/flags/definitions", "no personal key: the SDK never polls")
	}

	// $feature_flag_called events, sent by posthog-node, reach PostHog
	// through the agent: one per subject and flag.
	var wantEvents []string
	for _, s := range subjects {
		if eventsFor[s.id] {
			for _, f := range doc.Flags {
				wantEvents = append(wantEvents, s.id+"/"+f.Key)
			}
		}
	}
	var got []string
	require.Eventually(t, func() bool {
		got = got[:0]
		for _, e := range up.Events() {
			if e.Event == "$feature_flag_called" {
				got = append(got, e.DistinctID+"/"+fmt.Sprint(e.Properties["$feature_flag"]))
			}
		}
		return len(got) >= len(wantEvents)
	}, 30*time.Second, 100*time.Millisecond, "the SDK's $feature_flag_called events did not arrive")
	require.ElementsMatch(t, wantEvents, got)
}

func wireValue(f fakeposthog.Flag) any {
	if f.Variant != nil {
		return *f.Variant
	}
	return f.Enabled
}

// The feature_flags contracts of PostHog's SDK test harness
// (PostHog/posthog-sdk-test-harness contracts/feature_flags_tests.yaml), for
// posthog-node talking to PostHog through the agent: each case does the
// contract's steps with the SDK and asserts what the contract asserts, on
// what reached PostHog (the stand-in plays the harness's mock server, with
// its default answer and its scripted responses).
func TestSDKHarnessFeatureFlagContractsThroughTheAgent(t *testing.T) {
	sdkRequireNode(t)
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)
	host := sdkAgentURL(a)

	type mock struct {
		status int
		body   string
	}
	ff := func(key, value string, rest ...map[string]any) map[string]any {
		step := map[string]any{"action": "get_feature_flag", "key": key, "distinct_id": value}
		for _, r := range rest {
			for k, v := range r {
				step[k] = v
			}
		}
		return step
	}
	init := func(key string) map[string]any { return map[string]any{"action": "init", "api_key": key} }
	cases := []struct {
		name   string
		mocks  []mock
		steps  []map[string]any
		flags  int               // assert_flags_request_count (-1: not asserted)
		fields map[string]any    // assert_flags_request_field, on the last /flags request
		query  map[string]string // assert_flags_request_query_param
		result any               // assert_action_result value of the last get_feature_flag (nil: not asserted)
		event  map[string]any    // the one $feature_flag_called event's properties
	}{
		{name: "request_with_person_properties_device_id",
			steps: []map[string]any{init("phc_test_key"), ff("signup-aa-test", "test_user_123", map[string]any{
				"person_properties": map[string]any{"$device_id": "device_abc_123"}, "groups": map[string]any{}, "group_properties": map[string]any{}, "disable_geoip": true})},
			flags: 1,
			fields: map[string]any{"token": "phc_test_key", "distinct_id": "test_user_123", "person_properties.$device_id": "device_abc_123",
				"groups": map[string]any{}, "group_properties": map[string]any{}, "geoip_disable": true, "flag_keys_to_evaluate": []any{"signup-aa-test"}}},
		{name: "flags_request_uses_v2_query_param", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1")}, flags: 1, query: map[string]string{"v": "2"}},
		{name: "flags_request_hits_flags_path_not_decide", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1")}, flags: 1},
		{name: "flags_request_omits_authorization_header", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1")}, flags: 1},
		{name: "token_in_flags_body_matches_init", steps: []map[string]any{init("phc_specific_key_12345"), ff("any-flag", "user_1")}, flags: 1,
			fields: map[string]any{"token": "phc_specific_key_12345"}},
		{name: "groups_round_trip", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1", map[string]any{
			"groups": map[string]any{"company": "acme"}, "group_properties": map[string]any{"company": map[string]any{"plan": "enterprise"}}})},
			flags: 1, fields: map[string]any{"groups.company": "acme", "group_properties.company.plan": "enterprise"}},
		{name: "groups_default_to_empty_object", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1")}, flags: 1,
			fields: map[string]any{"groups": map[string]any{}, "group_properties": map[string]any{}}},
		{name: "disable_geoip_false_propagates_as_geoip_disable_false", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1", map[string]any{"disable_geoip": false})},
			flags: 1, fields: map[string]any{"geoip_disable": false}},
		{name: "disable_geoip_omitted_defaults_to_false", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1")}, flags: 1,
			fields: map[string]any{"geoip_disable": false}},
		{name: "flag_keys_to_evaluate_contains_only_requested_key", steps: []map[string]any{init(projectKey), ff("my-specific-flag", "user_1")}, flags: 1,
			fields: map[string]any{"flag_keys_to_evaluate": []any{"my-specific-flag"}}},
		{name: "no_flags_request_on_init_alone", steps: []map[string]any{init(projectKey)}, flags: 0},
		{name: "no_flags_request_on_normal_capture", steps: []map[string]any{init(projectKey),
			{"action": "capture", "distinct_id": "user_1", "event": "regular_event"}, {"action": "flush"}}, flags: 0},
		{name: "two_flag_calls_produce_two_remote_requests", steps: []map[string]any{init(projectKey), ff("any-flag", "user_1"), ff("any-flag", "user_1")}, flags: 2},
		{name: "mock_response_value_is_returned_to_caller", mocks: []mock{{200, `{"featureFlags": {"signup-aa-test": "variant-a"}}`}},
			steps: []map[string]any{init(projectKey), ff("signup-aa-test", "user_1")}, flags: 1, result: "variant-a"},
		{name: "retries_flags_on_502", mocks: []mock{{502, ""}, {200, `{"featureFlags": {"transient-502-flag": true}}`}},
			steps: []map[string]any{init(projectKey), ff("transient-502-flag", "user_1")}, flags: 2, result: true},
		{name: "retries_flags_on_504", mocks: []mock{{504, ""}, {200, `{"featureFlags": {"transient-504-flag": true}}`}},
			steps: []map[string]any{init(projectKey), ff("transient-504-flag", "user_1")}, flags: 2, result: true},
		{name: "get_feature_flag_captures_feature_flag_called_event", mocks: []mock{{200, `{"featureFlags": {"my-flag": true}}`}},
			// A distinct id of its own, so events of earlier cases (still
			// being forwarded) are not counted here.
			steps: []map[string]any{init(projectKey), ff("my-flag", "side-effect-user"), {"action": "flush"}}, flags: 1, result: true,
			event: map[string]any{"$feature_flag": "my-flag", "$feature_flag_response": true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The harness's mock: scripted answers in order, then its
			// default, with a 2xx body laid over the default.
			var mu sync.Mutex
			queue := append([]mock(nil), tc.mocks...)
			up.SetFlagsHandler(func(map[string]any) (int, any) {
				mu.Lock()
				defer mu.Unlock()
				body := map[string]any{"featureFlags": map[string]any{}, "featureFlagPayloads": map[string]any{}, "errorsWhileComputingFlags": false}
				if len(queue) == 0 {
					return 200, body
				}
				m := queue[0]
				queue = queue[1:]
				if m.status != 200 {
					return m.status, map[string]any{"error": "Server error"}
				}
				var over map[string]any
				require.NoError(t, json.Unmarshal([]byte(m.body), &over))
				for k, v := range over {
					body[k] = v
				}
				return 200, body
			})
			before := len(up.FlagsRequests())
			out := runNodeSteps(t, host, tc.steps)
			reqs := up.FlagsRequests()[before:]
			if tc.flags >= 0 {
				require.Len(t, reqs, tc.flags, "assert_flags_request_count")
			}
			var sdkBodies []string
			for _, r := range out.Requests {
				if strings.Contains(r.URL, "/flags") {
					sdkBodies = append(sdkBodies, r.Body)
				}
			}
			for _, r := range reqs {
				require.Equal(t, "/flags/", r.Path, "assert_no_requests_to_paths /decide")
				require.Empty(t, r.Header.Get("Authorization"), "assert_header_absent Authorization")
				require.Contains(t, sdkBodies, string(r.Raw), "PostHog gets the body exactly as posthog-node sent it")
			}
			if len(reqs) > 0 {
				last := reqs[len(reqs)-1]
				for field, want := range tc.fields {
					require.Equal(t, want, dig(last.Body, field), "assert_flags_request_field %s", field)
				}
				for p, want := range tc.query {
					require.Contains(t, strings.Split(last.Query, "&"), p+"="+want, "assert_flags_request_query_param")
				}
			}
			if tc.result != nil {
				var got any
				last := out.Results[len(out.Results)-1]
				for i := len(tc.steps) - 1; i >= 0; i-- {
					if tc.steps[i]["action"] == "get_feature_flag" {
						last = out.Results[i]
						break
					}
				}
				require.NoError(t, json.Unmarshal(last.Value, &got))
				require.Equal(t, tc.result, got, "assert_action_result value")
			}
			if tc.event != nil {
				id := "side-effect-user"
				var props []map[string]any
				require.Eventually(t, func() bool {
					props = props[:0]
					for _, e := range up.Events() {
						if e.Event == "$feature_flag_called" && e.DistinctID == id {
							props = append(props, e.Properties)
						}
					}
					return len(props) > 0
				}, 20*time.Second, 50*time.Millisecond)
				time.Sleep(300 * time.Millisecond) // a duplicate would have arrived by now
				n := 0
				for _, e := range up.Events() {
					if e.Event == "$feature_flag_called" && e.DistinctID == id {
						n++
					}
				}
				require.Equal(t, 1, n, "assert_event_count_with_name $feature_flag_called")
				for k, v := range tc.event {
					require.Equal(t, v, props[0][k], "assert_event_property_in_named_event %s", k)
				}
			}
		})
	}
}

// dig reads a dot-notation field, as the harness's assert_flags_request_field does.
func dig(m map[string]any, path string) any {
	var cur any = m
	for _, p := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[p]
	}
	return cur
}
