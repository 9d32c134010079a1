package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// projectKeyOnly is the default PostHog setup: a project key, no personal key.
var projectKeyOnly = []string{`posthog.personal_api_key = ""`, `listen.http = "127.0.0.1:0"`}

// newSampleUpstream is a PostHog stand-in answering /flags from the sample
// definitions, per distinct id.
func newSampleUpstream(t *testing.T, addr string) *fakeposthog.Server {
	t.Helper()
	up, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: fakeposthog.SampleFlagDefinitions, Addr: addr})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	return up
}

// sdkFlags posts an SDK's /flags body to the agent's producer socket and
// decodes the v2 answer.
type v2Answer struct {
	Flags map[string]struct {
		Enabled bool    `json:"enabled"`
		Variant *string `json:"variant"`
	} `json:"flags"`
	Errors    bool   `json:"errorsWhileComputingFlags"`
	RequestID string `json:"requestId"`
	Hogrelay  *struct {
		Cached bool `json:"cached"`
	} `json:"hogrelay"`
}

func (v v2Answer) values() map[string]any {
	out := map[string]any{}
	for k, f := range v.Flags {
		if f.Variant != nil {
			out[k] = *f.Variant
		} else {
			out[k] = f.Enabled
		}
	}
	return out
}

func sdkFlags(t *testing.T, a *agentProc, body string) (v2Answer, answer) {
	t.Helper()
	ans := a.do(http.MethodPost, "/flags/?v=2", []byte(body), map[string]string{"Content-Type": "application/json", "User-Agent": "posthog-node/5.70.0"})
	require.Equal(t, 200, ans.status, ans.body)
	var out v2Answer
	require.NoError(t, json.Unmarshal([]byte(ans.body), &out), ans.body)
	return out, ans
}

// With only a project key, the CLI and SDKs get PostHog's answers: the agent
// asks POST /flags/?v=2 with the token and no Authorization header, and an
// SDK's body reaches PostHog exactly as the SDK sent it.
func TestFlagsProjectKeyOnlyAnswersAsPostHog(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)

	for i := range 12 {
		id := fmt.Sprintf("user-%d", i)
		want := up.ExpectedFlags(id)
		require.NotEmpty(t, want)
		out, errOut, code := a.cli("flags", "get", "checkout-button", "--distinct-id", id, "--no-called-event")
		require.Zero(t, code, errOut)
		require.Equal(t, want["checkout-button"], strings.TrimSpace(out), "flags get for %s", id)
		out, errOut, code = a.cli("flags", "all", "--distinct-id", id, "--no-called-event")
		require.Zero(t, code, errOut)
		var all struct {
			Flags   map[string]any    `json:"flags"`
			Sources map[string]string `json:"sources"`
		}
		require.NoError(t, json.Unmarshal([]byte(out), &all), out)
		require.Equal(t, want, all.Flags, "flags all for %s", id)
		for k := range want {
			require.Equal(t, "remote", all.Sources[k])
		}
		got, _ := sdkFlags(t, a, `{"token":"`+projectKey+`","distinct_id":"`+id+`"}`)
		require.Equal(t, want, got.values(), "an SDK's /flags for %s", id)
	}
	require.Zero(t, up.DefinitionRequests(), "no personal key: nothing polls definitions")

	// What an SDK sent is what PostHog gets: every field, unknown ones too,
	// as sent; groups added as {} only when absent.
	sent := `{"token":"phc_from_the_sdk","distinct_id":"user-1","person_properties":{"$device_id":"device_abc_123"},"group_properties":{},"geoip_disable":false,"flag_keys_to_evaluate":["checkout-button"],"evaluation_contexts":["web"],"a_field_from_tomorrow":{"x":[1,"y"]}}`
	before := len(up.FlagsRequests())
	sdkFlags(t, a, sent)
	reqs := up.FlagsRequests()
	require.Len(t, reqs, before+1, "one PostHog request per SDK call")
	last := reqs[len(reqs)-1]
	require.Equal(t, `{"groups":{},`+sent[1:], string(last.Raw))
	require.Equal(t, "v=2", last.Query)
	require.Equal(t, "/flags/", last.Path)
	require.Empty(t, last.Header.Get("Authorization"), "/flags authenticates by the token in the body")
	require.Equal(t, "posthog-node/5.70.0", last.Header.Get("User-Agent"), "PostHog picks server-side flags from it")

	// The agent's own calls send the configured geoip_disable.
	a.cli("flags", "get", "checkout-button", "--distinct-id", "user-2", "--no-called-event")
	reqs = up.FlagsRequests()
	require.Equal(t, true, reqs[len(reqs)-1].Body["geoip_disable"])
	require.Equal(t, projectKey, reqs[len(reqs)-1].Body["token"])

	// Status says which mode answers and why polling is off.
	fl := a.status()["flags"].(map[string]any)
	require.Equal(t, "remote", fl["answers"])
	require.Contains(t, fl["polling_off_because"], "no personal API key")
	out, _, _ := a.cli("flags", "list")
	require.Contains(t, out, "answers: remote evaluation")
	require.Contains(t, out, "polling: off because there is no personal API key")
	out, _, _ = a.cli("status")
	require.Contains(t, out, "remote evaluation")
}

// PostHog's SDKs retry /flags once on 502 and 504 (and never on 500, 503 or
// 429); so does the agent, for each question.
func TestFlagsRemoteRetriesOnceOn502And504(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)
	for _, tc := range []struct {
		status   int
		requests int
		answered bool
	}{{502, 2, true}, {504, 2, true}, {500, 1, false}, {503, 1, false}, {429, 1, false}} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			var n atomic.Int32
			up.SetFlagsHandler(func(body map[string]any) (int, any) {
				if n.Add(1) == 1 {
					return tc.status, "scripted failure"
				}
				return up.EvaluateFlags(body)
			})
			before := len(up.FlagsRequests())
			id := fmt.Sprintf("retry-%d", tc.status)
			out, errOut, code := a.cli("flags", "get", "checkout-button", "--distinct-id", id, "--no-called-event")
			require.Equal(t, tc.requests, len(up.FlagsRequests())-before)
			if tc.answered {
				require.Zero(t, code, errOut)
				require.Equal(t, up.ExpectedFlags(id)["checkout-button"], strings.TrimSpace(out))
			} else {
				require.Equal(t, 3, code, "no answer")
				require.Equal(t, "null", strings.TrimSpace(out))
				require.Contains(t, errOut, fmt.Sprintf("status %d", tc.status))
			}
		})
	}
}

// After PostHog goes away and the agent restarts, a context seen before is
// answered from the answer cache, marked as cached; one never seen gets no
// value; when PostHog is back, fresh answers win.
func TestFlagsOfflineAfterRestartFromTheAnswerCache(t *testing.T) {
	up := newSampleUpstream(t, "")
	addr := strings.TrimPrefix(up.URL(), "http://")
	a := startAgent(t, up, projectKeyOnly...)
	want := up.ExpectedFlags("seen-user")
	out, errOut, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "seen-user", "--no-called-event")
	require.Zero(t, code, errOut)
	require.Equal(t, want["checkout-button"], strings.TrimSpace(out))
	sdkBody := `{"token":"` + projectKey + `","distinct_id":"sdk-user","groups":{},"person_properties":{"distinct_id":"sdk-user"}}`
	fresh, _ := sdkFlags(t, a, sdkBody)
	require.Nil(t, fresh.Hogrelay)

	require.NoError(t, a.stop())
	require.NoError(t, up.Close()) // PostHog is gone: connection refused
	info, err := os.Stat(filepath.Join(a.dir, "data", "flag-answers.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the cache holds distinct ids")
	a.start()

	out, errOut, code = a.cli("flags", "get", "checkout-button", "--distinct-id", "seen-user", "--no-called-event")
	require.Equal(t, 4, code, "a cached answer exits 4: %s", errOut)
	require.Equal(t, want["checkout-button"], strings.TrimSpace(out))
	require.Contains(t, errOut, "cached: PostHog cannot be reached")
	_, errOut, code = a.cli("flags", "enabled", "checkout-button", "--distinct-id", "seen-user", "--no-called-event")
	require.Zero(t, code, "enabled answers by the cached value, so scripts keep working: %s", errOut)

	got, ans := sdkFlags(t, a, sdkBody)
	require.Equal(t, fresh.values(), got.values(), "an SDK's context seen before")
	require.False(t, got.Errors)
	require.NotNil(t, got.Hogrelay)
	require.True(t, got.Hogrelay.Cached)
	require.Equal(t, fresh.RequestID, got.RequestID, "PostHog's answer, with its request id")
	require.True(t, strings.HasPrefix(ans.header.Get("X-Hogrelay-Flags"), "cached; age="), ans.header)

	// Never seen: no value, never a guess.
	out, errOut, code = a.cli("flags", "get", "checkout-button", "--distinct-id", "never-seen", "--no-called-event")
	require.Equal(t, 3, code, errOut)
	require.Equal(t, "null", strings.TrimSpace(out))
	require.Contains(t, errOut, "no earlier answer for this context is cached")
	out, _, code = a.cli("flags", "get", "checkout-button", "--payload", "--distinct-id", "never-seen", "--no-called-event")
	require.Equal(t, 3, code, "--payload with no answer exits 3 too")
	require.Equal(t, "null", strings.TrimSpace(out))
	unseen, _ := sdkFlags(t, a, `{"token":"`+projectKey+`","distinct_id":"never-seen"}`)
	require.Empty(t, unseen.Flags)
	require.True(t, unseen.Errors, "offline with nothing cached: errorsWhileComputingFlags")

	fl := a.status()["flags"].(map[string]any)
	require.Equal(t, "cached", fl["answers"])
	cache := fl["answer_cache"].(map[string]any)
	require.EqualValues(t, 2, cache["entries"])
	require.Positive(t, cache["offline_hits"])
	require.Positive(t, cache["offline_misses"])
	metrics := a.do(http.MethodGet, "/metrics", nil, nil).body
	require.Contains(t, metrics, `hogrelay_flags_evaluations_total{source="cached"}`)

	// PostHog is back, answering differently: fresh answers win.
	up2, err := fakeposthog.New(fakeposthog.Options{Addr: addr})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up2.Close() })
	up2.SetFlagsHandler(func(body map[string]any) (int, any) {
		return 200, json.RawMessage(`{"flags":{"checkout-button":{"key":"checkout-button","enabled":true,"variant":"fresh","reason":{"code":"condition_match","condition_index":0,"description":"x"},"metadata":{"id":2,"version":1,"payload":null}}},"errorsWhileComputingFlags":false,"requestId":"00000000-0000-4000-8000-000000000001"}`)
	})
	require.Eventually(t, func() bool {
		out, _, code = a.cli("flags", "get", "checkout-button", "--distinct-id", "seen-user", "--no-called-event")
		return code == 0 && strings.TrimSpace(out) == "fresh"
	}, 20*time.Second, 200*time.Millisecond, "the fail-fast pause after an outage ends and PostHog answers again")
	got, ans = sdkFlags(t, a, sdkBody)
	require.Equal(t, "fresh", got.values()["checkout-button"])
	require.Nil(t, got.Hogrelay)
	require.Empty(t, ans.header.Get("X-Hogrelay-Flags"))
}

// The answer cache keeps at most answer_cache_max_entries contexts, least
// recently used going first, across a restart; `flags cache clear` empties it.
func TestFlagsAnswerCacheBoundsAndClear(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, append([]string{`flags.answer_cache_max_entries = 5`}, projectKeyOnly...)...)
	for i := range 20 {
		sdkFlags(t, a, fmt.Sprintf(`{"token":%q,"distinct_id":"bound-%d"}`, projectKey, i))
	}
	require.Eventually(t, func() bool {
		c := a.status()["flags"].(map[string]any)["answer_cache"].(map[string]any)
		return c["entries"] == float64(5)
	}, 10*time.Second, 50*time.Millisecond)

	require.NoError(t, a.stop())
	require.NoError(t, up.Close())
	a.start()
	c := a.status()["flags"].(map[string]any)["answer_cache"].(map[string]any)
	require.EqualValues(t, 5, c["entries"])
	require.LessOrEqual(t, c["bytes"], c["max_bytes"])
	recent, _ := sdkFlags(t, a, fmt.Sprintf(`{"token":%q,"distinct_id":"bound-19"}`, projectKey))
	require.NotEmpty(t, recent.Flags, "the most recent stay")
	oldest, _ := sdkFlags(t, a, fmt.Sprintf(`{"token":%q,"distinct_id":"bound-0"}`, projectKey))
	require.Empty(t, oldest.Flags, "the least recently used went first")

	out, errOut, code := a.cli("flags", "cache", "clear")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "cleared 5 cached flag answers")
	c = a.status()["flags"].(map[string]any)["answer_cache"].(map[string]any)
	require.EqualValues(t, 0, c["entries"])
	recent, _ = sdkFlags(t, a, fmt.Sprintf(`{"token":%q,"distinct_id":"bound-19"}`, projectKey))
	require.Empty(t, recent.Flags, "cleared means forgotten")

	// On a stopped agent's data directory.
	require.NoError(t, a.stop())
	out, errOut, code = a.cli("flags", "cache", "clear", "--data-dir", filepath.Join(a.dir, "data"))
	require.Zero(t, code, errOut)
	require.Contains(t, out, "cleared")
	require.NoFileExists(t, filepath.Join(a.dir, "data", "flag-answers.db"))
}

// The CLI's answers send $feature_flag_called as PostHog's SDKs do, once per
// distinct id, flag and value, for remote and local answers alike.
func TestFlagsCalledEventsForRemoteAnswers(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)
	for range 3 {
		_, errOut, code := a.cli("flags", "get", "checkout-button", "--distinct-id", "called-user")
		require.Zero(t, code, errOut)
	}
	want := up.ExpectedFlags("called-user")["checkout-button"]
	var ev map[string]any
	require.Eventually(t, func() bool {
		for _, e := range up.Events() {
			if e.Event == "$feature_flag_called" && e.DistinctID == "called-user" {
				ev = e.Properties
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	require.Equal(t, "checkout-button", ev["$feature_flag"])
	require.Equal(t, want, ev["$feature_flag_response"])
	require.Equal(t, want, ev["$feature/checkout-button"])
	require.Equal(t, false, ev["locally_evaluated"])
	require.NotEmpty(t, ev["$feature_flag_request_id"], "PostHog's requestId")
	require.NotEmpty(t, ev["$feature_flag_id"])
	require.Equal(t, "hogrelay", ev["$lib"])
	time.Sleep(500 * time.Millisecond) // let any duplicate arrive
	n := 0
	for _, e := range up.Events() {
		if e.Event == "$feature_flag_called" && e.DistinctID == "called-user" {
			n++
		}
	}
	require.Equal(t, 1, n, "once per distinct id, flag and value")
}

// capture --send-feature-flags with only a project key: the flag properties
// come from PostHog's /flags; /decide and the v1 /flags shapes are answered
// from the same remote answers, in the shape each version has.
func TestFlagsProjectKeyOnlyForCaptureAndOlderShapes(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)
	want := up.ExpectedFlags("cap-user")

	_, errOut, code := a.cli("capture", "--distinct-id", "cap-user", "--event", "bought", "--send-feature-flags")
	require.Zero(t, code, errOut)
	var props map[string]any
	require.Eventually(t, func() bool {
		for _, e := range up.Events() {
			if e.Event == "bought" && e.DistinctID == "cap-user" {
				props = e.Properties
				return true
			}
		}
		return false
	}, 20*time.Second, 50*time.Millisecond)
	for k, v := range want {
		require.Equal(t, v, props["$feature/"+k], "send_feature_flags property for %s", k)
	}
	require.NotEmpty(t, props["$active_feature_flags"])

	body := []byte(`{"token":"` + projectKey + `","distinct_id":"cap-user"}`)
	for _, tc := range []struct{ path, key string }{
		{"/decide/?v=3", "featureFlags"},
		{"/flags/?v=1", "featureFlags"},
		{"/flags/?config=true", "featureFlags"},
		{"/decide/?v=4", "flags"},
		{"/flags/", "flags"},
	} {
		ans := a.do(http.MethodPost, tc.path, body, map[string]string{"Content-Type": "application/json"})
		require.Equal(t, 200, ans.status, ans.body)
		var out map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(ans.body), &out))
		require.Contains(t, out, tc.key, "%s answers the %s shape: %s", tc.path, tc.key, ans.body)
		if tc.key == "featureFlags" {
			var ff map[string]any
			require.NoError(t, json.Unmarshal(out["featureFlags"], &ff))
			require.Equal(t, want, ff, tc.path)
		}
	}
}

// The answer cache survives a SIGKILL in the middle of writes: the agent
// starts, opens it without damage and answers from it.
func TestFlagsAnswerCacheSurvivesKill9(t *testing.T) {
	up := newSampleUpstream(t, "")
	a := startAgent(t, up, projectKeyOnly...)
	for i := range 30 {
		sdkFlags(t, a, fmt.Sprintf(`{"token":%q,"distinct_id":"kill-%d"}`, projectKey, i))
	}
	require.Eventually(t, func() bool {
		c := a.status()["flags"].(map[string]any)["answer_cache"].(map[string]any)
		return c["entries"].(float64) >= 30
	}, 10*time.Second, 20*time.Millisecond)
	// More answers in flight while the agent dies.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 30; i < 200; i++ {
			resp, err := a.HTTP.Post("http://hogrelay/flags/?v=2", "application/json",
				strings.NewReader(fmt.Sprintf(`{"token":%q,"distinct_id":"kill-%d"}`, projectKey, i)))
			if err != nil {
				return // the agent is gone
			}
			resp.Body.Close()
		}
	}()
	time.Sleep(30 * time.Millisecond)
	a.kill9()
	<-done
	require.NoError(t, up.Close())
	a.start()
	fl := a.status()["flags"].(map[string]any)
	require.Empty(t, fl["last_error"], "the cache opened without damage")
	c := fl["answer_cache"].(map[string]any)
	require.GreaterOrEqual(t, c["entries"].(float64), 30.0)
	got, _ := sdkFlags(t, a, fmt.Sprintf(`{"token":%q,"distinct_id":"kill-7"}`, projectKey))
	require.Equal(t, up.ExpectedFlags("kill-7"), got.values())
	require.True(t, got.Hogrelay != nil && got.Hogrelay.Cached)
}
