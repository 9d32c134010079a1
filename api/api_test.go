package api

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/flags"
	"github.com/hogrelay/hogrelay/flags/eval"
	"github.com/hogrelay/hogrelay/internal/testlog"
	"github.com/hogrelay/hogrelay/spool"
)

func newHandler(t *testing.T, maxBytes int64) (*Handler, *spool.Spool) {
	t.Helper()
	log := testlog.New(t)
	sp, err := spool.Open(spool.Options{Path: filepath.Join(t.TempDir(), "spool.db"), MaxBytes: maxBytes, Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	h := New(Deps{Spool: sp, Registry: prometheus.NewRegistry(), Logger: log}, capture.Options{DefaultToken: "phc_default"})
	return h, sp
}

func TestCaptureAnswers(t *testing.T) {
	h, sp := newHandler(t, 1<<20)
	big := `{"event":"e","distinct_id":"d","properties":{"x":"` + strings.Repeat("y", 600_000) + `"}}`
	cases := []struct {
		name, method, path, body string
		status                   int
		bodyHas                  string
		retryAfter               string
	}{
		{"stored", "POST", "/batch/", `{"api_key":"phc_a","batch":[{"event":"e","distinct_id":"d"}]}`, 200, `{"status":1}`, ""},
		{"default token", "POST", "/i/v0/e/", `{"event":"e","distinct_id":"d"}`, 200, `{"status":1}`, ""},
		{"beacon", "POST", "/e/?beacon=1", `{"event":"e","distinct_id":"d"}`, 204, "", ""},
		{"wrong method", "PUT", "/batch/", `{}`, 405, "PUT is not allowed", ""},
		{"preflight", "OPTIONS", "/batch/", ``, 204, "", ""},
		{"refused by capture", "POST", "/batch/", `{"api_key":"phc_a","batch":[{"event":"e"}]}`, 400, "batch[0]: missing distinct_id", ""},
		{"body over the route limit", "POST", "/e/", strings.Repeat(" ", 3<<20), 413, "over the 2 MiB limit", ""},
		{"spool full", "POST", "/batch/", `{"api_key":"phc_a","batch":[` + big + `,` + big + `]}`, 503, "spool is full", "5"},
		{"unknown endpoint", "POST", "/nope", `{}`, 404, "unknown endpoint POST /nope", ""},
		{"unknown endpoint names Capture v1 too", "POST", "/nope", `{}`, 404, "/i/v1/analytics/events", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.bodyHas)
			require.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
		})
	}
	st, err := sp.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 3, st.PendingEvents, "only the three accepted requests stored events")
}

func TestFlagsResponseVersionMatrix(t *testing.T) {
	idx := 0
	all := flags.All{Flags: map[string]eval.Result{
		"on":    {Key: "on", Enabled: true, Payload: json.RawMessage(`{"a":1}`), Reason: eval.Reason{Code: "condition_match", ConditionIndex: &idx}, ID: 1, Version: 2},
		"off":   {Key: "off", Enabled: false},
		"multi": {Key: "multi", Enabled: true, Variant: "red"},
	}}
	const v2Want = `"flags":{"multi":{"key":"multi","enabled":true,"variant":"red","reason":{"code":"","condition_index":null,"description":""},"metadata":{"id":0,"version":0,"description":null,"payload":null}},"off":{"key":"off","enabled":false,"variant":null,"reason":{"code":"","condition_index":null,"description":""},"metadata":{"id":0,"version":0,"description":null,"payload":null}},"on":{"key":"on","enabled":true,"variant":null,"reason":{"code":"condition_match","condition_index":0,"description":""},"metadata":{"id":1,"version":2,"description":null,"payload":"{\"a\":1}"}}}`
	const legacyWant = `"featureFlags":{"multi":"red","off":false,"on":true},"featureFlagPayloads":{"on":"{\"a\":1}"}`
	// The query strings and what endpoint.rs (get_versioned_response and
	// the defaulting in flags()) answers for them.
	cases := []struct {
		name string
		path string
		want string // the featureFlags/flags part
	}{
		{"flags without v or config is v2 (the service's default)", "/flags/", v2Want},
		{"flags with config but no v is v1", "/flags/?config=true", legacyWant},
		{"flags v1 is legacy", "/flags/?v=1", legacyWant},
		{"flags with a v that is not a number is v1", "/flags/?v=x", legacyWant},
		{"flags v2", "/flags/?v=2", v2Want},
		{"flags v3 is v2", "/flags/?v=3", v2Want},
		{"decide without v lists active keys", "/decide/", `"featureFlags":["multi","on"]`},
		{"decide v1 lists active keys", "/decide/?v=1", `"featureFlags":["multi","on"]`},
		{"decide v2 maps enabled only", "/decide/?v=2", `"featureFlags":{"multi":"red","on":true}`},
		{"decide v3 is legacy", "/decide/?v=3", legacyWant},
		{"decide v4 is v2", "/decide/?v=4", v2Want},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.path)
			require.NoError(t, err)
			decide := strings.HasPrefix(u.Path, "/decide")
			b, err := json.Marshal(shapeFlagsResponse(all, decide, responseVersion(u.Query(), decide)))
			require.NoError(t, err)
			require.Contains(t, string(b), tc.want)
			require.Contains(t, string(b), `"errorsWhileComputingFlags":false`)
		})
	}
	b, _ := json.Marshal(shapeFlagsResponse(flags.All{QuotaLimited: true}, false, 2))
	require.Contains(t, string(b), `"quotaLimited":["feature_flags"]`)
	b, _ = json.Marshal(shapeFlagsResponse(flags.All{}, false, 2))
	require.Contains(t, string(b), `"flags":{}`, "an empty v2 answer still has its flags object")
}

func TestDefinitionsNeedABearerKey(t *testing.T) {
	h, _ := newHandler(t, 1<<20)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/flags/definitions?token=phc_a", nil))
	require.Equal(t, 401, rec.Code)
	require.Contains(t, rec.Body.String(), "no_authentication")
}

// /flags bodies come in the encodings capture takes; each reaches the
// request parser, and a broken one is refused with the reason.
func TestFlagsBodyEncodings(t *testing.T) {
	log := testlog.New(t)
	sp, err := spool.Open(spool.Options{Path: filepath.Join(t.TempDir(), "spool.db"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	fl, err := flags.New(flags.Options{Dir: t.TempDir(), Logger: log})
	require.NoError(t, err)
	h := New(Deps{Spool: sp, Flags: fl, Logger: log}, capture.Options{})

	const body = `{"token":"phc_a","distinct_id":"u1"}`
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(body))
	require.NoError(t, zw.Close())
	cases := []struct {
		name, body, encoding string
		status               int
		has                  string
	}{
		{"json", body, "", 200, `"flags":{}`},
		{"gzip by header", gz.String(), "gzip", 200, `"flags":{}`},
		{"gzip by magic bytes", gz.String(), "", 200, `"flags":{}`},
		{"base64", base64.StdEncoding.EncodeToString([]byte(body)), "", 200, `"flags":{}`},
		{"broken gzip", "\x1f\x8b\x08\x00garbage", "gzip", 400, "gzip"},
		{"no token", `{"distinct_id":"u1"}`, "", 401, "missing token"},
		{"no distinct_id", `{"token":"phc_a"}`, "", 400, "missing distinct_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/flags/?v=2", strings.NewReader(tc.body))
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			require.Contains(t, rec.Body.String(), tc.has)
		})
	}
}
