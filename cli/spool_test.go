package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// jsonCLI runs a command that prints one JSON object and decodes it.
func jsonCLI(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, errOut, code := runCLI(t, nil, args...)
	require.Zero(t, code, errOut)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m), out)
	return m
}

// seed sends one event PostHog refuses (a dead letter) and n it holds back
// (pending, the upstream answers 503 from then on), and returns their uuids.
func (a *testAgent) seed(n int) (dead string, pending []string) {
	a.t.Helper()
	a.up.RejectEvent(func(ev fakeposthog.Event) bool { return ev.Event == "poison" })
	out, errOut, code := a.cli("capture", "--distinct-id", "u", "--event", "poison")
	require.Zero(a.t, code, errOut)
	dead = strings.TrimSpace(out)
	require.Eventually(a.t, func() bool {
		st := jsonCLI(a.t, "spool", "stats", "--config", a.ConfigPath)
		return st["dead_letter_events"] == 1.0
	}, 20*time.Second, 20*time.Millisecond, "the refused event never became a dead letter")
	a.up.SetDefault(fakeposthog.Response{Status: 503})
	for i := 0; i < n; i++ {
		out, errOut, code := a.cli("capture", "--distinct-id", "u", "--event", "held")
		require.Zero(a.t, code, errOut)
		pending = append(pending, strings.TrimSpace(out))
	}
	return dead, pending
}

func exportIDs(t *testing.T, out string) []string {
	var ids []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var ev map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &ev), l)
		ids = append(ids, ev["event"].(map[string]any)["uuid"].(string))
	}
	return ids
}

func TestSpoolCommandsOnTheLiveAgent(t *testing.T) {
	a := startAgent(t)
	dead, pending := a.seed(3)

	st := jsonCLI(t, "spool", "stats", "--config", a.ConfigPath)
	require.EqualValues(t, 3, st["pending_events"])

	out, errOut, code := a.cli("spool", "export")
	require.Zero(t, code, errOut)
	require.Equal(t, pending, exportIDs(t, out))
	out, errOut, code = a.cli("spool", "export", "--dead-letters")
	require.Zero(t, code, errOut)
	require.Equal(t, []string{dead}, exportIDs(t, out))

	out, errOut, code = a.cli("spool", "dead-letters", "list")
	require.Zero(t, code, errOut)
	require.Contains(t, out, dead)

	require.EqualValues(t, 1, jsonCLI(t, "spool", "dead-letters", "requeue", "--config", a.ConfigPath)["requeued"])
	a.up.RejectEvent(nil)
	a.up.SetDefault(fakeposthog.Response{Status: 400})
	require.Eventually(t, func() bool {
		return jsonCLI(t, "spool", "stats", "--config", a.ConfigPath)["dead_letter_events"] == 4.0
	}, 20*time.Second, 20*time.Millisecond, "every event should be a dead letter after 400s")
	require.EqualValues(t, 4, jsonCLI(t, "spool", "dead-letters", "drop", "--config", a.ConfigPath)["dropped"])

	cmp := jsonCLI(t, "spool", "compact", "--config", a.ConfigPath)
	require.Greater(t, cmp["before_bytes"], 0.0)
	require.LessOrEqual(t, cmp["after_bytes"], cmp["before_bytes"])
}

func TestSpoolCommandsOnAStoppedAgentsFile(t *testing.T) {
	a := startAgent(t, `spool.max_bytes = "64MiB"`)
	dead, pending := a.seed(2)
	require.NoError(t, a.Stop())
	file := filepath.Join(a.Config.DataDir, agent.SpoolFile)

	// Through the config (the socket does not answer) and by --file.
	for _, how := range [][]string{{"--config", a.ConfigPath}, {"--file", file, "--config", filepath.Join(t.TempDir(), "none.toml")}} {
		t.Run(how[0], func(t *testing.T) {
			st := jsonCLI(t, append([]string{"spool", "stats"}, how...)...)
			require.EqualValues(t, 2, st["pending_events"])
			require.EqualValues(t, 1, st["dead_letter_events"])
			require.Equal(t, file, st["path"])
			want := float64(64 << 20)
			if how[0] == "--file" {
				want = float64(config.Default().Spool.MaxBytes) // no config to read it from
			}
			require.Equal(t, want, st["max_bytes"], "the bound the agent uses, not a placeholder")

			out, errOut, code := runCLI(t, nil, append([]string{"spool", "export"}, how...)...)
			require.Zero(t, code, errOut)
			require.Equal(t, pending, exportIDs(t, out))
			out, errOut, code = runCLI(t, nil, append([]string{"spool", "dead-letters", "list"}, how...)...)
			require.Zero(t, code, errOut)
			require.Contains(t, out, dead)
			cmp := jsonCLI(t, append([]string{"spool", "compact"}, how...)...)
			require.Greater(t, cmp["before_bytes"], 0.0)
		})
	}
	require.EqualValues(t, 1, jsonCLI(t, "spool", "dead-letters", "requeue", "--file", file)["requeued"])
	require.EqualValues(t, 0, jsonCLI(t, "spool", "dead-letters", "drop", "--file", file)["dropped"])
	out, _, _ := runCLI(t, nil, "spool", "export", "--file", file)
	require.ElementsMatch(t, append(pending, dead), exportIDs(t, out), "nothing lost by the tools")
}

func TestSpoolFileOfARunningAgentSaysItIsLocked(t *testing.T) {
	a := startAgent(t)
	file := filepath.Join(a.Config.DataDir, agent.SpoolFile)
	for _, args := range [][]string{
		{"spool", "stats"}, {"spool", "export"}, {"spool", "dead-letters", "list"},
		{"spool", "dead-letters", "requeue"}, {"spool", "dead-letters", "drop"}, {"spool", "compact"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := a.cli(append(args, "--file", file)...)
			require.Equal(t, 1, code, out)
			require.Contains(t, errOut, "locked")
			require.Contains(t, errOut, file)
			require.Contains(t, errOut, "--file works only on a stopped agent's file")
			require.NotContains(t, errOut, "socket did not answer", "the socket was not asked")
		})
	}
}
