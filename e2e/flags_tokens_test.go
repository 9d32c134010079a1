package e2e

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testagent"
)

// [ingest] allowed_tokens applies to the SDKs' /flags and /decide as to
// capture: the agent does not ask PostHog on behalf of projects it does not
// serve.
func TestFlagsRefuseTokensOutsideAllowedTokens(t *testing.T) {
	up := newSampleUpstream(t, "")
	asked := recordFlagsTokens(up, nil)
	a := startAgent(t, up, `ingest.allowed_tokens = ["`+testagent.ProjectKey+`"]`)
	for _, path := range []string{"/flags/?v=2", "/decide/?v=4"} {
		ans := a.do(http.MethodPost, path, []byte(`{"token":"phc_someoneelse","distinct_id":"u"}`), map[string]string{"Content-Type": "application/json"})
		require.Equal(t, http.StatusUnauthorized, ans.status, "%s: %s", path, ans.body)
		require.Contains(t, ans.body, "allowed_tokens", path)
		require.NotContains(t, ans.body, "phc_someoneelse", "a refused token is never echoed")
	}
	out, _ := sdkFlags(t, a, `{"token":"`+testagent.ProjectKey+`","distinct_id":"user-1"}`)
	require.Equal(t, up.ExpectedFlags("user-1"), out.values(), "the allowed token is answered")
	require.NotContains(t, asked(), "phc_someoneelse", "nothing was asked of PostHog for the refused token")
}

// recordFlagsTokens makes up note the token of every /flags question it
// gets; answer, when not nil, may answer it instead of the fake's own
// logic. The returned func lists the tokens.
func recordFlagsTokens(up *fakeposthog.Server, answer func(token string) (fakeposthog.Response, bool)) func() []string {
	var (
		mu     sync.Mutex
		tokens []string
	)
	up.SetAnswer(func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		if r.Path != "/flags/" {
			return fakeposthog.Response{}, false
		}
		var body struct {
			Token string `json:"token"`
		}
		_ = json.Unmarshal(r.Body, &body)
		mu.Lock()
		tokens = append(tokens, body.Token)
		mu.Unlock()
		if answer == nil {
			return fakeposthog.Response{}, false
		}
		return answer(body.Token)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), tokens...)
	}
}

// An SDK of another project, through an agent that evaluates its own
// project's definitions locally, gets PostHog's answer for its project, not
// this project's flags.
func TestFlagsForAnotherProjectAreNotThisProjects(t *testing.T) {
	const other = "phc_anotherproject"
	up := newSampleUpstream(t, "")
	asked := recordFlagsTokens(up, func(token string) (fakeposthog.Response, bool) {
		if token != other {
			return fakeposthog.Response{}, false
		}
		return fakeposthog.Response{Status: 200, Body: `{"flags":{"other-project-flag":{"key":"other-project-flag","enabled":true,"variant":null}},"errorsWhileComputingFlags":false,"requestId":"r1"}`}, true
	})
	a := startAgent(t, up) // a personal key: this project's definitions are evaluated locally

	mine, _ := sdkFlags(t, a, `{"token":"`+testagent.ProjectKey+`","distinct_id":"user-1"}`)
	require.Equal(t, up.ExpectedFlags("user-1"), mine.values())

	theirs, _ := sdkFlags(t, a, `{"token":"`+other+`","distinct_id":"user-1"}`)
	require.Equal(t, map[string]any{"other-project-flag": true}, theirs.values(), "PostHog's answer for the other project, none of this project's flags")
	require.Contains(t, asked(), other, "the other project's question went to PostHog, with its token")
}

// Local-evaluation SDKs of another project polling the agent for
// definitions are refused rather than handed this project's flags; the
// agent's own project still gets them.
func TestDefinitionsAreServedOnlyToTheirProject(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up)
	bearer := map[string]string{"Authorization": "Bearer phx_sdk"}
	require.Eventually(t, func() bool {
		return a.do(http.MethodGet, "/flags/definitions?token="+testagent.ProjectKey+"&send_cohorts", nil, bearer).status == 200
	}, 10*time.Second, 20*time.Millisecond, "the agent's own project gets the definitions")
	for _, path := range []string{"/flags/definitions", "/api/feature_flag/local_evaluation"} {
		ans := a.do(http.MethodGet, path+"?token=phc_anotherproject&send_cohorts", nil, bearer)
		require.Equal(t, http.StatusForbidden, ans.status, "%s: %s", path, ans.body)
		require.Contains(t, ans.body, "another", path)
		require.NotContains(t, ans.body, "checkout-button", "none of this project's flags")
	}
}
