package flags

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

const v2Answer = `{"flags":{"needs-server":{"key":"needs-server","enabled":true,"variant":"test",
  "reason":{"code":"condition_match","condition_index":0,"description":"Matched condition set 1"},
  "metadata":{"id":3,"version":1,"description":null,"payload":"{\"n\":1}"}}},
  "errorsWhileComputingFlags":false,"requestId":"0190a3f0-0000-7000-8000-000000000000"}`

func answer(body string) script {
	return status(http.StatusOK, body)
}

// loaded returns a service that has fetched testDefs from f.
func loaded(t *testing.T, f *fakePostHog, mod func(*Options)) harness {
	t.Helper()
	f.setDefs(serveDefs(testDefs, `"v1"`))
	h := newService(t, f.URL, t.TempDir(), mod)
	require.NoError(t, h.svc.Reload(context.Background()))
	return h
}

func TestInconclusiveFlagAsksPostHog(t *testing.T) {
	f := newFake(t)
	f.setFlags(answer(v2Answer))
	h := loaded(t, f, nil)
	in := eval.Input{
		DistinctID:       "user-1",
		DeviceID:         "dev-1",
		Groups:           map[string]string{"company": "acme"},
		PersonProperties: map[string]any{"plan": "pro"},
	}
	ans, err := h.svc.Flag(context.Background(), "needs-server", Ask{Input: in, UserAgent: "posthog-python/7.42.0"})
	require.NoError(t, err)
	require.Equal(t, SourceRemote, ans.Source)
	require.Equal(t, "0190a3f0-0000-7000-8000-000000000000", ans.RequestID, "PostHog's request id, for $feature_flag_called")
	r := ans.Result
	require.Equal(t, eval.Result{
		Key: "needs-server", Enabled: true, Variant: "test", Payload: json.RawMessage(`{"n":1}`), StoredPayload: json.RawMessage(`"{\"n\":1}"`),
		Reason: eval.Reason{Code: "condition_match", ConditionIndex: ptr(0), Description: "Matched condition set 1"},
		ID:     3, Version: 1,
	}, r)

	req, body := f.last()
	require.Equal(t, "/flags/", req.URL.Path)
	require.Equal(t, "2", req.URL.Query().Get("v"))
	require.Equal(t, "posthog-python/7.42.0", req.Header.Get("User-Agent"), "PostHog picks server-side flags from it")
	require.Empty(t, req.Header.Get("Authorization"), "the personal key only goes to the definitions endpoint")
	require.JSONEq(t, `{"token":"phc_testproject","distinct_id":"user-1","device_id":"dev-1",
		"groups":{"company":"acme"},"person_properties":{"plan":"pro"},"group_properties":{},
		"geoip_disable":true,"flag_keys_to_evaluate":["needs-server"]}`, string(body))
}

func TestLocalAnswersNeverGoRemote(t *testing.T) {
	f := newFake(t)
	f.setFlags(answer(v2Answer))
	h := loaded(t, f, nil)
	r, err := h.svc.Flag(context.Background(), "always-on", Ask{Input: eval.Input{DistinctID: "u"}})
	require.NoError(t, err)
	require.True(t, r.Enabled)
	r, err = h.svc.Flag(context.Background(), "always-off", Ask{Input: eval.Input{DistinctID: "u"}})
	require.NoError(t, err)
	require.False(t, r.Enabled)
	require.Zero(t, f.count("/flags/"))
}

func TestRemoteNotAllowed(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mod       func(*Options)
		onlyLocal bool
		why       string
	}{
		{"per call only_evaluate_locally", nil, true, "only_evaluate_locally"},
		{"configured only_evaluate_locally", func(o *Options) { o.OnlyEvaluateLocally = true }, false, "only_evaluate_locally"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.setFlags(answer(v2Answer))
			h := loaded(t, f, tc.mod)
			_, err := h.svc.Flag(context.Background(), "needs-server", Ask{Input: eval.Input{DistinctID: "u"}, OnlyLocal: tc.onlyLocal})
			require.ErrorIs(t, err, ErrNoAnswer)
			require.ErrorIs(t, err, eval.ErrInconclusive)
			require.ErrorContains(t, err, tc.why)

			all, err := h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}, OnlyLocal: tc.onlyLocal})
			require.NoError(t, err)
			require.True(t, all.ErrorsWhileComputing)
			require.NotContains(t, all.Flags, "needs-server")
			require.Contains(t, all.Flags, "always-on")
			require.Zero(t, f.count("/flags/"))
		})
	}
}

func TestNoKeysMeansNoRemote(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Options)
	}{
		{"no project token", func(o *Options) { o.ProjectToken = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.setFlags(answer(v2Answer))
			h := newService(t, f.URL, t.TempDir(), tc.mod)
			_, err := h.svc.Flag(context.Background(), "needs-server", Ask{Input: eval.Input{DistinctID: "u"}})
			require.ErrorIs(t, err, ErrNoAnswer)
			_, err = h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}})
			require.ErrorIs(t, err, ErrNoAnswer)
			require.Zero(t, f.count("/flags/"))
		})
	}
}

func TestRemoteFailureIsNoAnswer(t *testing.T) {
	for _, tc := range []struct {
		name    string
		flags   script
		errText string
		quota   bool
	}{
		{"500", status(500, `{"detail":"internal"}`), "status 500: internal", false},
		{"timeout", func(*fakeposthog.Request) fakeposthog.Response {
			return fakeposthog.Response{Hang: true} // until the client gives up
		}, "deadline exceeded", false},
		{"not JSON", answer(`<html>`), "not a /flags answer", false},
		{"quota limited", answer(`{"flags":{},"errorsWhileComputingFlags":false,"quotaLimited":["feature_flags"]}`), "quota", true},
		{"quota limited, snake case", answer(`{"flags":{},"quota_limited":["feature_flags"]}`), "quota", true},
		{"flag missing from the answer", answer(`{"flags":{},"errorsWhileComputingFlags":true}`), "did not return it", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t)
			f.setFlags(tc.flags)
			h := loaded(t, f, nil)
			h.svc.remoteTimeout = 50 * time.Millisecond // the real 3s, shortened
			_, err := h.svc.Flag(context.Background(), "needs-server", Ask{Input: eval.Input{DistinctID: "u"}})
			require.ErrorIs(t, err, ErrNoAnswer)
			require.ErrorIs(t, err, eval.ErrInconclusive)
			require.ErrorContains(t, err, tc.errText)
			if tc.quota {
				require.ErrorIs(t, err, ErrQuotaLimited)
				all, err := h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}})
				require.ErrorIs(t, err, ErrNoAnswer)
				require.True(t, all.QuotaLimited)
			}
		})
	}
}

func TestRemoteUnreachableFailsFastForAWhile(t *testing.T) {
	f := newFake(t)
	h := loaded(t, f, nil)
	f.Close() // PostHog goes away after the first fetch
	ask := Ask{Input: eval.Input{DistinctID: "u"}}
	_, err := h.svc.Flag(context.Background(), "needs-server", ask)
	require.ErrorIs(t, err, ErrNoAnswer)
	require.ErrorContains(t, err, f.URL+"/flags/?v=2")

	_, err = h.svc.Flag(context.Background(), "needs-server", ask)
	require.ErrorContains(t, err, "not retried yet")

	h.clock.Advance(remoteCooldown)
	_, err = h.svc.Flag(context.Background(), "needs-server", ask)
	require.NotContains(t, err.Error(), "not retried yet")
}

func TestNoDefinitionsAsksPostHogForEverything(t *testing.T) {
	f := newFake(t)
	f.setFlags(answer(v2Answer))
	h := newService(t, f.URL, t.TempDir(), nil) // nothing on disk, no fetch yet
	all, err := h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}})
	require.NoError(t, err)
	require.Equal(t, []string{"needs-server"}, keys(all.Flags))
	require.Equal(t, map[string]Source{"needs-server": SourceRemote}, all.Source)
	_, body := f.last()
	require.NotContains(t, string(body), "flag_keys_to_evaluate", "nil keys = every flag")
}

func TestAllMergesLocalAndRemote(t *testing.T) {
	f := newFake(t)
	f.setFlags(answer(v2Answer))
	h := loaded(t, f, nil)
	all, err := h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}})
	require.NoError(t, err)
	// always-off is inactive: left out, as PostHog's /flags leaves it out.
	require.Equal(t, []string{"always-on", "needs-server"}, keys(all.Flags))
	require.Equal(t, map[string]Source{"always-on": SourceLocal, "needs-server": SourceRemote}, all.Source)
	require.False(t, all.ErrorsWhileComputing)
	require.Equal(t, "test", all.Flags["needs-server"].Value())
	_, body := f.last()
	var req ownRequest
	require.NoError(t, json.Unmarshal(body, &req))
	require.Equal(t, []string{"needs-server"}, req.FlagKeys, "only what local evaluation could not decide")

	// FlagKeys narrows the answer, and a fully local answer costs no request.
	n := f.count("/flags/")
	all, err = h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}, FlagKeys: []string{"always-on"}})
	require.NoError(t, err)
	require.Equal(t, []string{"always-on"}, keys(all.Flags))
	require.Equal(t, n, f.count("/flags/"))

	// Asking for an inactive flag by key is answered locally, by leaving it
	// out: it is known, so PostHog is not asked and it is no error.
	all, err = h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}, FlagKeys: []string{"always-on", "always-off"}})
	require.NoError(t, err)
	require.Equal(t, []string{"always-on"}, keys(all.Flags))
	require.False(t, all.ErrorsWhileComputing)
	require.Equal(t, n, f.count("/flags/"))
}

func TestAllWithRemoteDownAnswersWhatItCan(t *testing.T) {
	f := newFake(t)
	f.setFlags(status(http.StatusBadGateway, ""))
	h := loaded(t, f, nil)
	all, err := h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}})
	require.NoError(t, err)
	require.True(t, all.ErrorsWhileComputing)
	require.Equal(t, []string{"always-on"}, keys(all.Flags))
}

func TestParseLegacyFlagsResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want map[string]eval.Result
	}{
		{"v1/v3 object", `{"featureFlags":{"a":true,"b":false,"c":"blue"},
			"featureFlagPayloads":{"c":"{\"x\":1}","a":"plain text"},"errorsWhileComputingFlags":false}`,
			map[string]eval.Result{
				"a": {Key: "a", Enabled: true, Payload: json.RawMessage(`"plain text"`), StoredPayload: json.RawMessage(`"plain text"`)},
				"b": {Key: "b"},
				"c": {Key: "c", Enabled: true, Variant: "blue", Payload: json.RawMessage(`{"x":1}`), StoredPayload: json.RawMessage(`"{\"x\":1}"`)},
			}},
		{"decide v1 list", `{"featureFlags":["a"]}`, map[string]eval.Result{"a": {Key: "a", Enabled: true}}},
		{"empty", `{"featureFlags":{},"featureFlagPayloads":{},"errorsWhileComputingFlags":false}`, map[string]eval.Result{}},
		{"v2 payload as a value, not a string", `{"flags":{"a":{"key":"a","enabled":true,"variant":null,
			"metadata":{"id":1,"version":2,"payload":{"y":[1,2]}}}}}`,
			map[string]eval.Result{"a": {Key: "a", Enabled: true, ID: 1, Version: 2, Payload: json.RawMessage(`{"y":[1,2]}`), StoredPayload: json.RawMessage(`{"y":[1,2]}`)}}},
		{"v2 payload string is compacted; empty string is none", `{"flags":{
			"a":{"key":"a","enabled":true,"metadata":{"payload":"{ \"y\" : 1 }"}},
			"b":{"key":"b","enabled":true,"metadata":{"payload":""}}}}`,
			map[string]eval.Result{
				"a": {Key: "a", Enabled: true, Payload: json.RawMessage(`{"y":1}`), StoredPayload: json.RawMessage(`"{ \"y\" : 1 }"`)},
				"b": {Key: "b", Enabled: true},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ans, err := parseFlagsResponse([]byte(tc.body))
			require.NoError(t, err)
			require.Equal(t, tc.want, ans.flags)
		})
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// An SDK of another project (its token is not [posthog] api_key) is not
// answered from this project's definitions: every flag is PostHog's to
// answer, from the SDK's own body.
func TestAnotherProjectsTokenIsAskedOfPostHog(t *testing.T) {
	f := newFake(t)
	f.setFlags(answer(v2Answer))
	h := loaded(t, f, nil)
	sent := `{"token":"phc_otherproject","distinct_id":"u","groups":{}}`
	all, err := h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}, Body: []byte(sent), Token: "phc_otherproject"})
	require.NoError(t, err)
	require.Equal(t, []string{"needs-server"}, keys(all.Flags), "PostHog's answer only; always-on is this project's flag")
	require.Equal(t, map[string]Source{"needs-server": SourceRemote}, all.Source)
	_, body := f.last()
	require.JSONEq(t, sent, string(body), "the SDK's body, not narrowed by this project's definitions")

	// This project's own token is still answered locally.
	n := f.count("/flags/")
	all, err = h.svc.All(context.Background(), Ask{Input: eval.Input{DistinctID: "u"}, FlagKeys: []string{"always-on"}, Token: testToken})
	require.NoError(t, err)
	require.Equal(t, map[string]Source{"always-on": SourceLocal}, all.Source)
	require.Equal(t, n, f.count("/flags/"))
}
