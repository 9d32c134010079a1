package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// The CLI's event commands produce the shapes PostHog keys on.
func TestCLIEventCommandsArriveInPostHogsShapes(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	cases := []struct {
		name  string
		args  []string
		check func(t *testing.T, e fakeposthog.Event)
	}{
		{"capture with everything", []string{"capture", "--distinct-id", "u1", "--event", "clicked",
			"--property", "n=3", "--property", "ok=true", "--property", "plan=pro", "--property", `tags=["a","b"]`,
			"--set", "email=ann@example.com", "--set-once", "first=web", "--group", "company=acme",
			"--timestamp", "2026-11-01T10:00:00Z"},
			func(t *testing.T, e fakeposthog.Event) {
				require.Equal(t, "clicked", e.Event)
				require.Equal(t, "u1", e.DistinctID)
				require.Equal(t, "2026-11-01T10:00:00.000Z", e.Timestamp)
				require.Equal(t, 3.0, e.Properties["n"])
				require.Equal(t, true, e.Properties["ok"])
				require.Equal(t, "pro", e.Properties["plan"])
				require.Equal(t, []any{"a", "b"}, e.Properties["tags"])
				require.Equal(t, map[string]any{"company": "acme"}, e.Properties["$groups"])
				require.Equal(t, "hogrelay-cli", e.Properties["$lib"])
				require.Contains(t, string(e.Raw), `"$set":{"email":"ann@example.com"}`)
				require.Contains(t, string(e.Raw), `"$set_once":{"first":"web"}`)
			}},
		{"identify", []string{"identify", "--distinct-id", "u2", "--set", "email=b@example.com"},
			func(t *testing.T, e fakeposthog.Event) {
				require.Equal(t, "$identify", e.Event)
				require.Contains(t, string(e.Raw), `"$set":{"email":"b@example.com"}`)
			}},
		{"alias", []string{"alias", "--distinct-id", "u3", "--alias", "anon-3"},
			func(t *testing.T, e fakeposthog.Event) {
				require.Equal(t, "$create_alias", e.Event)
				require.Equal(t, "anon-3", e.Properties["alias"])
				require.Equal(t, "u3", e.Properties["distinct_id"])
			}},
		{"group-identify", []string{"group-identify", "--type", "company", "--key", "acme", "--property", "seats=40"},
			func(t *testing.T, e fakeposthog.Event) {
				require.Equal(t, "$groupidentify", e.Event)
				require.Equal(t, "$company_acme", e.DistinctID)
				require.Equal(t, "company", e.Properties["$group_type"])
				require.Equal(t, "acme", e.Properties["$group_key"])
				require.Equal(t, map[string]any{"seats": 40.0}, e.Properties["$group_set"])
			}},
		{"pageview", []string{"pageview", "--distinct-id", "u4", "--url", "https://example.com/pricing"},
			func(t *testing.T, e fakeposthog.Event) {
				require.Equal(t, "$pageview", e.Event)
				require.Equal(t, "https://example.com/pricing", e.Properties["$current_url"])
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := a.cli(tc.args...)
			require.Zero(t, code, stderr)
			id := strings.TrimSpace(out)
			require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), []string{id}))
			for _, e := range up.Events() {
				if e.UUID == id {
					require.Equal(t, projectKey, e.Token)
					tc.check(t, e)
				}
			}
		})
	}
}

func TestCLIReportsTheAgentsRefusal(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `ingest.allowed_tokens = ["phc_someotherproject"]`)
	_, stderr, code := a.cli("capture", "--distinct-id", "u1", "--event", "e")
	require.NotZero(t, code)
	require.Contains(t, stderr, "401")
	require.Contains(t, stderr, "allowed_tokens")

	r := run(t, "capture", "--socket", "/nonexistent/hogrelay.sock", "--distinct-id", "u1", "--event", "e")
	require.NotZero(t, r.code)
	require.Contains(t, r.stderr, "/nonexistent/hogrelay.sock")
}
