package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// What an SDK's /flags request carries is read as PostHog's flags service
// reads it (rust/feature-flags, issue 10 items 1-4): distinct_id is a person
// property, each requested group's key is its $group_key, an empty
// distinct_id is valid (and hashes to 0, inside a 0 % rollout), a long id
// keeps its first 200 characters, and a numeric id or group key is the text
// serde_json prints for it. All of these are answered by the agent
// itself, without asking PostHog.
func TestFlagsRequestReadAsThePostHogService(t *testing.T) {
	groupKeyFlag := map[string]any{"id": 3, "key": "by-group-key", "active": true, "filters": map[string]any{
		"aggregation_group_type_index": 0,
		"groups": []any{map[string]any{"rollout_percentage": 100, "properties": []any{
			map[string]any{"key": "$group_key", "type": "group", "group_type_index": 0, "operator": "exact", "value": "acme"}}}}}}
	defs, err := json.Marshal(map[string]any{
		"group_type_mapping": map[string]string{"0": "company"},
		"cohorts":            map[string]any{},
		"flags": []any{
			map[string]any{"id": 1, "key": "by-distinct-id", "active": true, "filters": map[string]any{"groups": []any{
				map[string]any{"rollout_percentage": 100, "properties": []any{
					map[string]any{"key": "distinct_id", "type": "person", "operator": "icontains", "value": "user"}}}}}},
			map[string]any{"id": 2, "key": "zero-rollout", "active": true, "filters": map[string]any{"groups": []any{
				map[string]any{"rollout_percentage": 0, "properties": []any{}}}}},
			groupKeyFlag,
			map[string]any{"id": 4, "key": "long-id", "active": true, "filters": map[string]any{"groups": []any{
				map[string]any{"rollout_percentage": 100, "properties": []any{
					map[string]any{"key": "distinct_id", "type": "person", "operator": "exact", "value": strings.Repeat("é", 200)}}}}}},
			// Numbers as serde_json prints them: 1e3 is "1000.0", 5.0 stays "5.0".
			map[string]any{"id": 5, "key": "numeric-id", "active": true, "filters": map[string]any{"groups": []any{
				map[string]any{"rollout_percentage": 100, "properties": []any{
					map[string]any{"key": "distinct_id", "type": "person", "operator": "exact", "value": "1000.0"}}}}}},
			map[string]any{"id": 6, "key": "numeric-group-key", "active": true, "filters": map[string]any{
				"aggregation_group_type_index": 0,
				"groups": []any{map[string]any{"rollout_percentage": 100, "properties": []any{
					map[string]any{"key": "$group_key", "type": "group", "group_type_index": 0, "operator": "exact", "value": "5.0"}}}}}},
			// Any company: on whenever the request names one with a key.
			map[string]any{"id": 7, "key": "any-company", "active": true, "filters": map[string]any{
				"aggregation_group_type_index": 0,
				"groups":                       []any{map[string]any{"rollout_percentage": 100, "properties": []any{}}}}},
		},
	})
	require.NoError(t, err)
	up, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: defs})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	a := startAgent(t, up)
	waitForFlags(t, a, 7)

	ask := func(body map[string]any) map[string]bool {
		t.Helper()
		body["token"] = projectKey
		ans := a.postJSON("/flags/?v=2", body)
		require.Equal(t, 200, ans.status, ans.body)
		var out struct {
			Flags map[string]struct {
				Enabled bool `json:"enabled"`
			} `json:"flags"`
			Errors bool `json:"errorsWhileComputingFlags"`
		}
		require.NoError(t, json.Unmarshal([]byte(ans.body), &out))
		require.False(t, out.Errors, ans.body)
		got := map[string]bool{}
		for k, f := range out.Flags {
			got[k] = f.Enabled
		}
		return got
	}

	none := map[string]bool{"by-distinct-id": false, "zero-rollout": false, "by-group-key": false, "long-id": false,
		"numeric-id": false, "numeric-group-key": false, "any-company": false}
	with := func(on ...string) map[string]bool {
		m := map[string]bool{}
		for k, v := range none {
			m[k] = v
		}
		for _, k := range on {
			m[k] = true
		}
		return m
	}
	got := ask(map[string]any{"distinct_id": "user-7", "groups": map[string]any{"company": "acme"}})
	require.Equal(t, with("by-distinct-id", "by-group-key", "any-company"), got)

	got = ask(map[string]any{"distinct_id": "bot-7", "groups": map[string]any{"company": "globex"},
		"group_properties": map[string]any{"company": map[string]any{"$group_key": "acme"}}})
	require.Equal(t, with("any-company"), got)

	got = ask(map[string]any{"distinct_id": ""})
	require.Equal(t, with("zero-rollout"), got)

	got = ask(map[string]any{"distinct_id": json.RawMessage("1e3"), "groups": map[string]any{"company": json.RawMessage("5.0")}})
	require.Equal(t, with("numeric-id", "numeric-group-key", "any-company"), got)

	// A boolean is no group key for the service: the group's conditions are skipped.
	got = ask(map[string]any{"distinct_id": "bot-7", "groups": map[string]any{"company": true}})
	require.Equal(t, none, got)

	got = ask(map[string]any{"distinct_id": strings.Repeat("é", 250)})
	require.True(t, got["long-id"], "the id is cut at 200 characters, not bytes")

	require.Empty(t, up.FlagsRequests(), "every answer was the agent's own")
}
