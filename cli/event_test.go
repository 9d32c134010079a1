package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// delivered waits for the event with this uuid at the fake PostHog.
func (a *testAgent) delivered(id string) fakeposthog.Event {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(a.t, a.up.WaitForUUIDs(ctx, []string{id}))
	for _, ev := range a.up.Events() {
		if ev.UUID == id {
			return ev
		}
	}
	a.t.Fatalf("event %s not found", id)
	return fakeposthog.Event{}
}

func TestEventCommandsSendPostHogsShapes(t *testing.T) {
	a := startAgent(t)
	cases := []struct {
		args  []string
		check func(t *testing.T, ev fakeposthog.Event)
	}{
		{[]string{"capture", "--distinct-id", "u1", "--event", "clicked", "--property", "price=9.5", "--set", "plan=pro", "--group", "company=acme"},
			func(t *testing.T, ev fakeposthog.Event) {
				require.Equal(t, "clicked", ev.Event)
				require.Equal(t, 9.5, ev.Properties["price"])
				require.Equal(t, map[string]any{"company": "acme"}, ev.Properties["$groups"])
				require.Contains(t, string(ev.Raw), `"$set":{"plan":"pro"}`)
			}},
		{[]string{"identify", "--distinct-id", "u1", "--set-once", "first=1"},
			func(t *testing.T, ev fakeposthog.Event) {
				require.Equal(t, "$identify", ev.Event)
				require.Contains(t, string(ev.Raw), `"$set_once":{"first":1}`)
			}},
		{[]string{"alias", "--distinct-id", "u1", "--alias", "anon-7"},
			func(t *testing.T, ev fakeposthog.Event) {
				require.Equal(t, "$create_alias", ev.Event)
				require.Equal(t, "anon-7", ev.Properties["alias"])
			}},
		{[]string{"group-identify", "--type", "company", "--key", "acme", "--property", "seats=40"},
			func(t *testing.T, ev fakeposthog.Event) {
				require.Equal(t, "$groupidentify", ev.Event)
				require.Equal(t, "$company_acme", ev.DistinctID)
				require.Equal(t, map[string]any{"seats": 40.0}, ev.Properties["$group_set"])
			}},
		{[]string{"pageview", "--distinct-id", "u1", "--url", "https://example.com/a"},
			func(t *testing.T, ev fakeposthog.Event) {
				require.Equal(t, "$pageview", ev.Event)
				require.Equal(t, "https://example.com/a", ev.Properties["$current_url"])
			}},
	}
	for _, tc := range cases {
		t.Run(tc.args[0], func(t *testing.T) {
			out, errOut, code := a.cli(tc.args...)
			require.Zero(t, code, errOut)
			ev := a.delivered(strings.TrimSpace(out))
			require.Equal(t, "hogrelay-cli", ev.Properties["$lib"])
			require.Equal(t, testProjectKey, ev.Token)
			tc.check(t, ev)
		})
	}
}

func TestEventCommandsNeedTheirRequiredFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"capture", "--event", "e"}, "capture needs --distinct-id and --event"},
		{[]string{"identify"}, "identify needs --distinct-id"},
		{[]string{"alias", "--distinct-id", "u"}, "alias needs --distinct-id and --alias"},
		{[]string{"group-identify", "--type", "company"}, "group-identify needs --type and --key"},
		{[]string{"pageview", "--distinct-id", "u"}, "pageview needs --distinct-id and --url"},
		{[]string{"capture", "--distinct-id", "u", "--event", "e", "--timestamp", "yesterday"}, `--timestamp "yesterday" is not RFC3339`},
	} {
		_, errOut, code := runCLI(t, nil, append(tc.args, "--socket", "/nonexistent/hogrelay.sock")...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, tc.want)
	}
}

func TestCaptureTokenForAnAgentWithoutAPIKey(t *testing.T) {
	a := startAgent(t, `posthog.api_key = ""`)

	_, errOut, code := a.cli("capture", "--distinct-id", "u1", "--event", "no-token")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "401", "without a token the agent refuses the event")

	out, errOut, code := a.cli("capture", "--distinct-id", "u1", "--event", "with-token", "--token", "phc_other_project")
	require.Zero(t, code, errOut)
	ev := a.delivered(strings.TrimSpace(out))
	require.Equal(t, "phc_other_project", ev.Token)
	require.Equal(t, "with-token", ev.Event)
}
