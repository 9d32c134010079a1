package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// flagUpstream is a PostHog stand-in serving the sample definitions.
func flagUpstream(t *testing.T) *fakeposthog.Server { return newSampleUpstream(t, "") }

// evaluateAll asks the agent for every sample flag for n subjects.
func evaluateAll(t *testing.T, a *agentProc, n int) map[string]any {
	t.Helper()
	out := map[string]any{}
	for i := 0; i < n; i++ {
		body := map[string]any{
			"distinct_id":           fmt.Sprintf("user-%d", i),
			"person_properties":     map[string]any{"email": fmt.Sprintf("u%d@%s", i, []string{"example.com", "other.org"}[i%2])},
			"groups":                map[string]any{"company": fmt.Sprintf("co-%d", i%7)},
			"group_properties":      map[string]any{"company": map[string]any{"plan": []string{"enterprise", "free"}[i%2]}},
			"only_evaluate_locally": true,
		}
		ans := a.postJSON("/hogrelay/v1/flags/evaluate", body)
		require.Equal(t, 200, ans.status, ans.body)
		var got map[string]any
		require.NoError(t, json.Unmarshal([]byte(ans.body), &got))
		out[fmt.Sprint(i)] = got["flags"]
	}
	return out
}

func waitForFlags(t *testing.T, a *agentProc, count int) {
	t.Helper()
	require.Eventually(t, func() bool {
		fl, ok := a.status()["flags"].(map[string]any)
		return ok && fl["flag_count"] == float64(count)
	}, 20*time.Second, 20*time.Millisecond)
}

// The agent keeps answering every flag identically after a restart with
// PostHog unreachable, from the definitions it saved to disk.
func TestFlagsAnswerIdenticallyAfterRestartWithoutNetwork(t *testing.T) {
	up := flagUpstream(t)
	a := startAgent(t, up)
	waitForFlags(t, a, 5)
	before := evaluateAll(t, a, 60)
	out, _, code := a.cli("flags", "list")
	require.Zero(t, code)
	require.Contains(t, out, "source: network")
	require.Contains(t, out, "checkout-button")

	require.NoError(t, a.stop())
	require.NoError(t, up.Close()) // PostHog is gone: connection refused from now on
	a.start()
	require.Equal(t, "disk", a.status()["flags"].(map[string]any)["source"])
	after := evaluateAll(t, a, 60)
	require.Equal(t, before, after)

	out, _, code = a.cli("flags", "list")
	require.Zero(t, code)
	require.Contains(t, out, "source: disk")
	require.Contains(t, out, "ago (")

	// A flag that needs the server (missing property) gets a null answer
	// with the reason, not a guess.
	stdout, stderr, code := a.cli("flags", "get", "internal-tools", "--distinct-id", "nobody")
	require.Equal(t, 3, code)
	require.Equal(t, "null\n", stdout)
	require.Contains(t, stderr, "no answer")
}

func TestFlagsCLIAndSDKEndpoints(t *testing.T) {
	up := flagUpstream(t)
	a := startAgent(t, up)
	waitForFlags(t, a, 5)

	out, _, code := a.cli("flags", "get", "internal-tools", "--distinct-id", "u1", "--person-property", "email=ann@example.com")
	require.Zero(t, code)
	require.Equal(t, "true\n", out)
	_, _, code = a.cli("flags", "enabled", "internal-tools", "--distinct-id", "u1", "--person-property", "email=ann@example.com")
	require.Zero(t, code)
	_, _, code = a.cli("flags", "enabled", "internal-tools", "--distinct-id", "u1", "--person-property", "email=bob@other.org")
	require.Equal(t, 1, code)

	variant, _, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "u1")
	require.Zero(t, code)
	variant = strings.TrimSpace(variant)
	require.Contains(t, []string{"control", "red", "green"}, variant)
	payload, _, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "u1", "--payload")
	require.Zero(t, code)
	require.Contains(t, payload, `"color"`)

	out, _, code = a.cli("flags", "all", "--distinct-id", "u1", "--person-property", "email=ann@example.com",
		"--group", "company=acme", "--group-property", "company.plan=enterprise")
	require.Zero(t, code)
	var all map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &all))
	require.Equal(t, variant, all["flags"].(map[string]any)["checkout-button"])

	// PostHog's /flags v2 shape, as SDKs request it.
	ans := a.postJSON("/flags/?v=2", map[string]any{"token": projectKey, "distinct_id": "u1",
		"person_properties": map[string]any{"email": "ann@example.com"}})
	require.Equal(t, 200, ans.status, ans.body)
	var v2 struct {
		Flags map[string]struct {
			Enabled  bool    `json:"enabled"`
			Variant  *string `json:"variant"`
			Metadata struct {
				Payload *string `json:"payload"`
			} `json:"metadata"`
		} `json:"flags"`
	}
	require.NoError(t, json.Unmarshal([]byte(ans.body), &v2))
	require.True(t, v2.Flags["internal-tools"].Enabled)
	require.Equal(t, variant, *v2.Flags["checkout-button"].Variant)
	require.NotNil(t, v2.Flags["checkout-button"].Metadata.Payload)

	// Legacy /decide v3 shape.
	ans = a.postJSON("/decide/?v=3", map[string]any{"api_key": projectKey, "distinct_id": "u1"})
	require.Equal(t, 200, ans.status, ans.body)
	require.Contains(t, ans.body, `"featureFlags":{`)
	require.Contains(t, ans.body, `"featureFlagPayloads":{`)

	// Missing token: 401, like PostHog.
	require.Equal(t, 401, a.postJSON("/flags/?v=2", map[string]any{"distinct_id": "u1"}).status)

	// Definitions served to SDKs that evaluate locally, with ETag/304.
	res := a.do(http.MethodGet, "/flags/definitions?token="+projectKey+"&send_cohorts", nil, map[string]string{"Authorization": "Bearer phx_sdk"})
	require.Equal(t, 200, res.status)
	require.JSONEq(t, string(fakeposthog.SampleFlagDefinitions), res.body)
	etag := res.header.Get("ETag")
	require.NotEmpty(t, etag)
	res = a.do(http.MethodGet, "/api/feature_flag/local_evaluation?token="+projectKey, nil, map[string]string{"Authorization": "Bearer phx_sdk", "If-None-Match": etag})
	require.Equal(t, 304, res.status)
	require.Equal(t, 401, a.do(http.MethodGet, "/flags/definitions", nil, nil).status)
}

func TestFlagCalledEventsAreRecordedOncePerValue(t *testing.T) {
	up := flagUpstream(t)
	a := startAgent(t, up)
	waitForFlags(t, a, 5)
	for i := 0; i < 3; i++ {
		_, _, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "called-1")
		require.Zero(t, code)
	}
	require.Eventually(t, func() bool {
		n := 0
		for _, e := range up.Events() {
			if e.Event == "$feature_flag_called" && e.DistinctID == "called-1" {
				require.Equal(t, "checkout-button", e.Properties["$feature_flag"])
				n++
			}
		}
		return n == 1
	}, 20*time.Second, 50*time.Millisecond)
	time.Sleep(300 * time.Millisecond) // give a wrong second event the chance to show up
	n := 0
	for _, e := range up.Events() {
		if e.Event == "$feature_flag_called" && e.DistinctID == "called-1" {
			n++
		}
	}
	require.Equal(t, 1, n)
}

func TestQuotaLimitedStopsEvaluationAndRecovers(t *testing.T) {
	up := flagUpstream(t)
	a := startAgent(t, up)
	waitForFlags(t, a, 5)
	up.SetDefinitionsStatus(402)
	_, _, code := a.cli("flags", "reload")
	require.NotZero(t, code)
	fl := a.status()["flags"].(map[string]any)
	require.Equal(t, true, fl["quota_limited"])
	out, stderr, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "q1")
	require.Equal(t, 3, code)
	require.Equal(t, "null\n", out)
	require.Contains(t, stderr, "quota")
	ans := a.postJSON("/flags/?v=2", map[string]any{"token": projectKey, "distinct_id": "q1"})
	require.Contains(t, ans.body, `"quotaLimited":["feature_flags"]`)

	up.SetDefinitionsStatus(0)
	_, _, code = a.cli("flags", "reload")
	require.Zero(t, code)
	out, _, code = a.cli("flags", "get", "checkout-button", "--distinct-id", "q1")
	require.Zero(t, code)
	require.NotEqual(t, "null\n", out)
}

func TestCaptureWithSendFeatureFlagsGetsLocalFlagValues(t *testing.T) {
	up := flagUpstream(t)
	a := startAgent(t, up)
	waitForFlags(t, a, 5)
	out, stderr, code := a.cli("capture", "--distinct-id", "sff-1", "--event", "checkout", "--send-feature-flags")
	require.Zero(t, code, stderr)
	id := strings.TrimSpace(out)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), []string{id}))
	variant, _, _ := a.cli("flags", "get", "checkout-button", "--distinct-id", "sff-1", "--no-called-event")
	for _, e := range up.Events() {
		if e.UUID == id {
			require.Equal(t, strings.TrimSpace(variant), e.Properties["$feature/checkout-button"])
			require.Contains(t, e.Properties["$active_feature_flags"], "checkout-button")
			_, hasInternal := e.Properties["$feature/internal-tools"]
			require.False(t, hasInternal, "a flag needing a property the event does not carry is left out, not guessed")
		}
	}
}
