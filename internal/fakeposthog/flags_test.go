package fakeposthog

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/flags/eval"
)

func getDefinitions(t *testing.T, s *Server, path string, header map[string]string) reply {
	t.Helper()
	r, err := do(t, nil, nil, http.MethodGet, s.URL()+path, nil, header)
	require.NoError(t, err)
	return r
}

const definitionsPath = "/flags/definitions?token=" + testToken + "&send_cohorts"

func TestDefinitionsAuth(t *testing.T) {
	paths := []string{
		definitionsPath,
		"/flags/definitions/?token=" + testToken + "&send_cohorts=true",
		"/api/feature_flag/local_evaluation?token=" + testToken + "&send_cohorts",
		"/api/feature_flag/local_evaluation/?token=" + testToken,
	}
	tests := []struct {
		name       string
		auth       string
		wantStatus int
		wantCode   string
	}{
		{"personal API key", "Bearer phx_personal", http.StatusOK, ""},
		{"project secret key", "Bearer phs_secret", http.StatusOK, ""},
		{"scheme is case-insensitive", "bearer phs_secret", http.StatusOK, ""},
		{"no Authorization", "", http.StatusUnauthorized, "not_authenticated"},
		{"basic auth", "Basic cGh4Og==", http.StatusUnauthorized, "not_authenticated"},
		{"project token instead of a key", "Bearer " + testToken, http.StatusUnauthorized, "authentication_failed"},
	}
	for _, path := range paths {
		for _, tc := range tests {
			t.Run(path+"/"+tc.name, func(t *testing.T) {
				s := start(t, Options{FlagDefinitions: SampleFlagDefinitions})
				hdr := map[string]string{}
				if tc.auth != "" {
					hdr["Authorization"] = tc.auth
				}
				r := getDefinitions(t, s, path, hdr)
				require.Equal(t, tc.wantStatus, r.status, r.body)
				if tc.wantStatus == http.StatusOK {
					require.Equal(t, string(SampleFlagDefinitions), r.body)
					require.Equal(t, s.DefinitionsETag(), r.header.Get("ETag"))
					require.Equal(t, "application/json", r.header.Get("Content-Type"))
					return
				}
				var body map[string]any
				require.NoError(t, json.Unmarshal([]byte(r.body), &body))
				require.Equal(t, "authentication_error", body["type"])
				require.Equal(t, tc.wantCode, body["code"])
				require.Empty(t, r.header.Get("ETag"))
			})
		}
	}
}

func TestDefinitionsETag(t *testing.T) {
	s := start(t, Options{})
	auth := map[string]string{"Authorization": "Bearer phs_secret"}

	first := getDefinitions(t, s, definitionsPath, auth)
	require.Equal(t, http.StatusOK, first.status)
	require.JSONEq(t, emptyDefinitions, first.body)
	etag := first.header.Get("ETag")
	require.NotEmpty(t, etag)

	for _, inm := range []string{etag, bareETag(etag), `"` + bareETag(etag) + `"`} {
		r := getDefinitions(t, s, definitionsPath, map[string]string{"Authorization": "Bearer phs_secret", "If-None-Match": inm})
		require.Equal(t, http.StatusNotModified, r.status, "If-None-Match %s", inm)
		require.Empty(t, r.body)
		require.Equal(t, etag, r.header.Get("ETag"))
	}

	r := getDefinitions(t, s, definitionsPath, map[string]string{"Authorization": "Bearer phs_secret", "If-None-Match": `W/"stale"`})
	require.Equal(t, http.StatusOK, r.status)

	// Setting definitions issues a new ETag even for the same bytes.
	s.SetFlagDefinitions([]byte(emptyDefinitions))
	r = getDefinitions(t, s, definitionsPath, map[string]string{"Authorization": "Bearer phs_secret", "If-None-Match": etag})
	require.Equal(t, http.StatusOK, r.status)
	require.NotEqual(t, etag, r.header.Get("ETag"))
	require.Equal(t, s.DefinitionsETag(), r.header.Get("ETag"))

	s.SetFlagDefinitions(SampleFlagDefinitions)
	r = getDefinitions(t, s, definitionsPath, auth)
	require.Equal(t, string(SampleFlagDefinitions), r.body)

	require.Equal(t, 7, s.DefinitionRequests())
	log := s.DefinitionLog()
	require.Len(t, log, 7)
	require.Equal(t, []int{200, 304, 304, 304, 200, 200, 200}, statuses(log))
	require.Equal(t, testToken, log[0].Token)
	require.True(t, log[0].SendCohorts)
	require.Equal(t, etag, log[1].IfNoneMatch)
}

func statuses(log []DefinitionRequest) []int {
	out := make([]int, len(log))
	for i, l := range log {
		out[i] = l.Status
	}
	return out
}

func TestDefinitionsStatusOverride(t *testing.T) {
	tests := []struct {
		code     int
		wantJSON map[string]any
		wantText string
	}{
		{code: 402, wantJSON: map[string]any{"type": "quota_limited", "code": "payment_required", "detail": "You have exceeded your feature flag request quota", "attr": nil}},
		{code: 401, wantJSON: map[string]any{"type": "authentication_error", "code": "authentication_failed", "detail": "Personal API key is invalid.", "attr": nil}},
		{code: 429, wantJSON: map[string]any{"type": "validation_error", "code": "rate_limit_exceeded", "detail": "Rate limit exceeded", "attr": nil}},
		{code: 500, wantText: "An internal server error occurred"},
		{code: 502, wantText: "Bad Gateway"},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.code), func(t *testing.T) {
			s := start(t, Options{})
			s.SetDefinitionsStatus(tc.code)
			// The override applies before auth, so no key is needed.
			r := getDefinitions(t, s, definitionsPath, nil)
			require.Equal(t, tc.code, r.status)
			require.Empty(t, r.header.Get("ETag"))
			if tc.wantJSON != nil {
				var got map[string]any
				require.NoError(t, json.Unmarshal([]byte(r.body), &got))
				require.Equal(t, tc.wantJSON, got)
			} else {
				require.Contains(t, r.body, tc.wantText)
			}

			s.SetDefinitionsStatus(0)
			r = getDefinitions(t, s, definitionsPath, map[string]string{"Authorization": "Bearer phx_key"})
			require.Equal(t, http.StatusOK, r.status)
			require.Equal(t, 2, s.DefinitionRequests())
		})
	}
}

func TestDefinitionsNeedToken(t *testing.T) {
	s := start(t, Options{})
	r := getDefinitions(t, s, "/flags/definitions", map[string]string{"Authorization": "Bearer phx_key"})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, r.body, "token")
}

func TestFlagsDefaultHandler(t *testing.T) {
	tests := []struct {
		name       string
		path       string
		body       func(t *testing.T) []byte
		header     map[string]string
		wantStatus int
		wantBody   string
	}{
		{
			name:       "v2 shape with no flags",
			path:       "/flags/?v=2",
			body:       func(*testing.T) []byte { return []byte(`{"api_key":"phc_a","distinct_id":"u1"}`) },
			wantStatus: http.StatusOK,
		},
		{
			name:       "gzip body",
			path:       "/flags?v=2",
			body:       func(t *testing.T) []byte { return gzipped(t, []byte(`{"token":"phc_a","distinct_id":"u1"}`)) },
			header:     map[string]string{"Content-Encoding": "gzip"},
			wantStatus: http.StatusOK,
		},
		{
			name:       "legacy /decide route",
			path:       "/decide/?v=4",
			body:       func(*testing.T) []byte { return []byte(`{"token":"phc_a","distinct_id":"u1"}`) },
			wantStatus: http.StatusOK,
		},
		{
			name:       "no token",
			path:       "/flags/?v=2",
			body:       func(*testing.T) []byte { return []byte(`{"distinct_id":"u1"}`) },
			wantStatus: http.StatusUnauthorized,
			wantBody:   "not_authenticated",
		},
		{
			name:       "no distinct_id",
			path:       "/flags/?v=2",
			body:       func(*testing.T) []byte { return []byte(`{"token":"phc_a"}`) },
			wantStatus: http.StatusBadRequest,
			wantBody:   "distinct_id",
		},
		{
			name:       "not JSON",
			path:       "/flags/?v=2",
			body:       func(*testing.T) []byte { return []byte(`{"token":`) },
			wantStatus: http.StatusBadRequest,
			wantBody:   "Failed to parse request",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := start(t, Options{})
			r := post(t, s, tc.path, tc.body(t), tc.header)
			require.Equal(t, tc.wantStatus, r.status, r.body)
			require.Contains(t, r.body, tc.wantBody)
			if tc.wantStatus != http.StatusOK {
				return
			}
			var got map[string]any
			require.NoError(t, json.Unmarshal([]byte(r.body), &got))
			require.Equal(t, map[string]any{}, got["flags"])
			require.Equal(t, false, got["errorsWhileComputingFlags"])
			require.True(t, validUUID(got["requestId"].(string)))
		})
	}
}

func TestSetFlagsHandler(t *testing.T) {
	s := start(t, Options{})
	var seen map[string]any
	s.SetFlagsHandler(func(body map[string]any) (int, any) {
		seen = body
		return http.StatusOK, json.RawMessage(`{"flags":{"beta":{"key":"beta","enabled":true,"variant":null}},"errorsWhileComputingFlags":false,"quotaLimited":["feature_flags"]}`)
	})

	r := post(t, s, "/flags/?v=2", []byte(`{"token":"phc_a","distinct_id":"u1","person_properties":{"email":"a@example.com"}}`),
		map[string]string{"User-Agent": "posthog-go/1.23.1"})
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `"quotaLimited":["feature_flags"]`)
	require.Equal(t, map[string]any{"email": "a@example.com"}, seen["person_properties"])

	reqs := s.FlagsRequests()
	require.Len(t, reqs, 1)
	require.Equal(t, "v=2", reqs[0].Query)
	require.Equal(t, "posthog-go/1.23.1", reqs[0].Header.Get("User-Agent"))

	s.SetFlagsHandler(func(map[string]any) (int, any) { return http.StatusServiceUnavailable, "try later" })
	r = post(t, s, "/flags/?v=2", []byte(`{"token":"phc_a","distinct_id":"u1"}`), nil)
	require.Equal(t, http.StatusServiceUnavailable, r.status)
	require.Equal(t, "try later", r.body)

	s.SetFlagsHandler(nil)
	r = post(t, s, "/flags/?v=2", []byte(`{"token":"phc_a","distinct_id":"u1"}`), nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Contains(t, r.body, `"flags":{}`)
}

// With no handler set, /flags answers from the served definitions, per
// distinct id, the way flags/eval evaluates them.
func TestFlagsAnswerFromTheDefinitions(t *testing.T) {
	s := start(t, Options{FlagDefinitions: SampleFlagDefinitions})
	ev, err := eval.Compile(SampleFlagDefinitions)
	require.NoError(t, err)
	variants := map[any]bool{}
	for i := range 40 {
		id := fmt.Sprintf("user-%d", i)
		r := post(t, s, "/flags/?v=2", []byte(`{"token":"phc_a","distinct_id":"`+id+`","person_properties":{"email":"a@example.com"}}`), nil)
		require.Equal(t, http.StatusOK, r.status, r.body)
		var got struct {
			Flags map[string]struct {
				Enabled bool    `json:"enabled"`
				Variant *string `json:"variant"`
			} `json:"flags"`
		}
		require.NoError(t, json.Unmarshal([]byte(r.body), &got))
		want, _ := ev.EvaluateAll(eval.Input{DistinctID: id, PersonProperties: map[string]any{"email": "a@example.com"}})
		require.Len(t, got.Flags, len(want))
		for k, w := range want {
			g := got.Flags[k]
			require.Equal(t, w.Enabled, g.Enabled, "%s for %s", k, id)
			if w.Variant != "" {
				require.Equal(t, w.Variant, *g.Variant)
				variants[w.Variant] = true
			}
		}
		require.True(t, got.Flags["internal-tools"].Enabled, "person properties are used")
	}
	require.Greater(t, len(variants), 1, "answers differ per distinct id")

	r := post(t, s, "/flags/?v=2", []byte(`{"token":"phc_a","distinct_id":"u1","flag_keys_to_evaluate":["new-onboarding"]}`), nil)
	var narrowed struct {
		Flags map[string]any `json:"flags"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &narrowed))
	require.Len(t, narrowed.Flags, 1, "flag_keys_to_evaluate narrows the answer")
	require.Equal(t, `{"token":"phc_a","distinct_id":"u1","flag_keys_to_evaluate":["new-onboarding"]}`, string(s.FlagsRequests()[40].Raw))
}
