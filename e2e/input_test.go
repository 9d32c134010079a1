package e2e

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type result struct {
	stdout, stderr string
	code           int
}

func run(t *testing.T, args ...string) result {
	t.Helper()
	stdout, stderr, code := runIn(t, "", args...)
	return result{stdout, stderr, code}
}

func TestBadInputGetsAPreciseErrorAndStoresNothing(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	cases := []struct {
		name, path string
		body       []byte
		header     map[string]string
		status     int
		msg        string
	}{
		{"malformed JSON", "/batch/", []byte(`{"api_key":"phc_x","batch":[{"event":`), nil, 400, "invalid JSON"},
		{"bad gzip", "/batch/", []byte{0x1f, 0x8b, 0x08, 0, 1, 2, 3}, map[string]string{"Content-Encoding": "gzip"}, 400, "gzip"},
		{"missing distinct_id names the index", "/batch/", []byte(`{"api_key":"phc_x","batch":[{"event":"a","distinct_id":"d"},{"event":"b"}]}`), nil, 400, "batch[1]"},
		{"missing event name", "/e/", []byte(`{"api_key":"phc_x","distinct_id":"d"}`), nil, 400, "event"},
		{"properties of the wrong type", "/e/", []byte(`{"api_key":"phc_x","event":"e","distinct_id":"d","properties":"x"}`), nil, 400, "properties"},
		{"personal key as token", "/batch/", []byte(`{"api_key":"phx_personal","batch":[{"event":"a","distinct_id":"d"}]}`), nil, 401, "personal"},
		{"oversized body on /e", "/e/", bytes.Repeat([]byte("a"), 3<<20), nil, 413, "limit"},
		{"oversized event", "/batch/", []byte(`{"api_key":"phc_x","batch":[{"event":"a","distinct_id":"d","properties":{"x":"` + strings.Repeat("y", 1_100_000) + `"}}]}`), nil, 413, "batch[0]"},
		{"empty batch", "/batch/", []byte(`{"api_key":"phc_x","batch":[]}`), nil, 400, "empty"},
		{"unknown endpoint", "/nope", []byte(`{}`), nil, 404, "unknown endpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ans := a.do(http.MethodPost, tc.path, tc.body, tc.header)
			require.Equal(t, tc.status, ans.status, ans.body)
			require.Contains(t, strings.ToLower(ans.body), strings.ToLower(tc.msg))
		})
	}
	require.Zero(t, a.spoolStat("pending_events"))
	require.Zero(t, a.status()["forwarder"].(map[string]any)["events_forwarded"])
}

func TestBadConfigIsRefusedNamingFileAndKey(t *testing.T) {
	cases := []struct{ name, body, want string }{
		{"unknown key", "[spool]\nmax_byte = 1\n", "unknown key spool.max_byte"},
		{"wrong type", "[forwarder]\nbatch_max_events = \"many\"\n", "batch_max_events"},
		{"bad value", "[posthog]\nhost = \"us.i.posthog.com\"\n", "[posthog] host"},
		{"syntax", "[listen\n", "line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := t.TempDir() + "/bad.toml"
			require.NoError(t, writeFile(path, tc.body))
			for _, cmd := range []string{"serve", "check-config"} {
				r := run(t, cmd, "--config", path)
				require.NotZero(t, r.code, cmd)
				require.Contains(t, r.stderr, path, cmd)
				require.Contains(t, r.stderr, tc.want, cmd)
			}
		})
	}
	r := run(t, "check-config", "--config", "../config.example.toml")
	require.Zero(t, r.code, r.stderr)
	require.Contains(t, r.stdout, "is valid")
}

func TestKeysNeverAppearInLogsStatusOrMetrics(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	evs, ids := mkEvents("secret", 2)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	a.cli("flags", "reload")
	out, _, _ := a.cli("status")
	jsonOut, _, _ := a.cli("status", "--json")
	metrics := a.do(http.MethodGet, "/metrics", nil, nil).body
	for _, where := range []string{a.Logs.String(), out, jsonOut, metrics} {
		require.NotContains(t, where, projectKey)
		require.NotContains(t, where, personalKey)
	}
}
