package e2e

// The spool tools (stats, export, dead letters, compact) against the live
// agent and on a stopped agent's file.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

func TestOpsSpoolToolsAgainstLiveAgent(t *testing.T) {
	up := newUpstream(t)
	opsPoisoned(up)
	a := startAgent(t, up)

	// Two poison events become dead letters; then an outage holds a backlog.
	p1, _ := opsSeedDeadLetter(t, a, up, "live-dl-1", 3)
	p2, _ := opsSeedDeadLetter(t, a, up, "live-dl-2", 3)
	require.Eventually(t, func() bool { return a.spoolStat("dead_letter_events") == 2 }, 20*time.Second, 20*time.Millisecond)
	up.SetDefault(fakeposthog.Response{Status: 503})
	blob := strings.Repeat("b", 40_000)
	var stuck []string
	for i := 0; i < 40; i++ { // ~8 MB of backlog, so compaction has pages to give back
		stuck = append(stuck, a.opsSend(fmt.Sprintf("live-stuck-%02d", i), 5, func(_ int, ev map[string]any) {
			ev["properties"].(map[string]any)["blob"] = blob
		})...)
	}

	t.Run("stats", func(t *testing.T) {
		st := opsCLIJSON(t, a, "spool", "stats")
		require.EqualValues(t, len(stuck), st["pending_events"])
		require.Greater(t, st["pending_bytes"].(float64), float64(len(stuck)*len(blob)))
		require.EqualValues(t, 2, st["dead_letter_events"])
		require.Equal(t, filepath.Join(a.dir, "data", "spool.db"), st["path"])
		require.NotEmpty(t, st["oldest_received_at"])
	})
	t.Run("export", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "export")
		require.Zero(t, code, errOut)
		lines, ids := opsExport(t, out)
		require.Equal(t, stuck, ids, "every pending event, in spool order")
		for _, l := range lines {
			require.NotZero(t, l["seq"])
			require.NotEmpty(t, l["received_at"])
			require.Nil(t, l["dead_letter_reason"])
		}
		require.NotContains(t, out, projectKey, "keys never appear in tool output")
	})
	t.Run("export --dead-letters", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "export", "--dead-letters")
		require.Zero(t, code, errOut)
		lines, ids := opsExport(t, out)
		require.ElementsMatch(t, []string{p1, p2}, ids)
		for _, l := range lines {
			require.Contains(t, l["dead_letter_reason"], "400")
		}
	})
	t.Run("dead-letters list", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "dead-letters", "list")
		require.Zero(t, code, errOut)
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &list), out)
		require.Len(t, list, 2)
		var ids []string
		for _, d := range list {
			ids = append(ids, fmt.Sprint(d["event"].(map[string]any)["uuid"]))
			require.Contains(t, d["reason"], "400")
		}
		require.ElementsMatch(t, []string{p1, p2}, ids)
	})
	t.Run("dead-letters requeue", func(t *testing.T) {
		out := opsCLIJSON(t, a, "spool", "dead-letters", "requeue")
		require.EqualValues(t, 2, out["requeued"])
		st := opsCLIJSON(t, a, "spool", "stats")
		require.EqualValues(t, len(stuck)+2, st["pending_events"])
		require.EqualValues(t, 0, st["dead_letter_events"])
	})

	// The upstream is back but still refuses the poison: the backlog
	// drains and the two come back as dead letters.
	up.SetDefault(fakeposthog.Response{})
	a.opsWake()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), stuck))
	require.Eventually(t, func() bool {
		return a.spoolStat("pending_events") == 0 && a.spoolStat("dead_letter_events") == 2
	}, 30*time.Second, 20*time.Millisecond)

	t.Run("dead-letters drop", func(t *testing.T) {
		out := opsCLIJSON(t, a, "spool", "dead-letters", "drop")
		require.EqualValues(t, 2, out["dropped"])
		st := opsCLIJSON(t, a, "spool", "stats")
		require.EqualValues(t, 0, st["dead_letter_events"])
		require.EqualValues(t, 0, st["dead_letter_bytes"])
		out2, _, code := a.cli("spool", "export", "--dead-letters")
		require.Zero(t, code)
		require.Empty(t, strings.TrimSpace(out2))
		require.Contains(t, a.Logs.String(), "dead letters dropped by operator request")
	})
	t.Run("compact", func(t *testing.T) {
		before := opsCLIJSON(t, a, "spool", "stats")["file_bytes"].(float64)
		out := opsCLIJSON(t, a, "spool", "compact")
		require.EqualValues(t, before, out["before_bytes"])
		require.Less(t, out["after_bytes"].(float64), out["before_bytes"].(float64), "a drained spool's file shrinks")
		after := opsCLIJSON(t, a, "spool", "stats")["file_bytes"].(float64)
		require.Less(t, after, before)
		require.Less(t, after, float64(len(stuck)*len(blob)), "the drained backlog's pages are given back")
	})
	// The agent goes on working on the compacted file.
	ids := a.opsSend("live-after-compact", 3, nil)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}
func TestOpsSpoolToolsOnStoppedAgentsFile(t *testing.T) {
	for _, how := range []string{"SIGTERM", "kill -9"} {
		t.Run(how, func(t *testing.T) {
			up := newUpstream(t)
			opsPoisoned(up)
			a := startAgent(t, up)
			poison, _ := opsSeedDeadLetter(t, a, up, "file-dl-"+how, 3)
			up.SetDefault(fakeposthog.Response{Status: 503})
			stuck := a.opsSend("file-stuck-"+how, 20, nil)
			spoolPath := filepath.Join(a.dir, "data", "spool.db")
			if how == "SIGTERM" {
				require.NoError(t, a.stop())
				_, err := os.Stat(a.Socket)
				require.True(t, os.IsNotExist(err), "no socket after a clean stop")
			} else {
				a.kill9()
				_, err := os.Stat(a.Socket)
				require.NoError(t, err, "kill -9 leaves a stale socket")
			}

			st := opsCLIJSON(t, a, "spool", "stats")
			require.EqualValues(t, len(stuck), st["pending_events"])
			require.EqualValues(t, 1, st["dead_letter_events"])
			require.Equal(t, spoolPath, st["path"])

			// --file names the file explicitly, without the config.
			out, errOut, code := runIn(t, "", "spool", "stats", "--file", spoolPath)
			require.Zero(t, code, errOut)
			var st2 map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &st2))
			require.EqualValues(t, len(stuck), st2["pending_events"])

			out, errOut, code = a.cli("spool", "export")
			require.Zero(t, code, errOut)
			_, ids := opsExport(t, out)
			require.Equal(t, stuck, ids)
			require.NotContains(t, out, projectKey)

			out, errOut, code = a.cli("spool", "export", "--dead-letters")
			require.Zero(t, code, errOut)
			lines, ids := opsExport(t, out)
			require.Equal(t, []string{poison}, ids)
			require.Contains(t, lines[0]["dead_letter_reason"], "400")

			out, errOut, code = a.cli("spool", "dead-letters", "list")
			require.Zero(t, code, errOut)
			require.Contains(t, out, poison)

			req := opsCLIJSON(t, a, "spool", "dead-letters", "requeue")
			require.EqualValues(t, 1, req["requeued"])
			st = opsCLIJSON(t, a, "spool", "stats")
			require.EqualValues(t, len(stuck)+1, st["pending_events"])
			require.EqualValues(t, 0, st["dead_letter_events"])

			cmp := opsCLIJSON(t, a, "spool", "compact")
			require.Greater(t, cmp["before_bytes"].(float64), 0.0)
			require.Greater(t, cmp["after_bytes"].(float64), 0.0)
			require.LessOrEqual(t, cmp["after_bytes"].(float64), cmp["before_bytes"].(float64))
			// Nothing was lost by the tools.
			_, ids = opsExport(t, func() string { o, _, _ := a.cli("spool", "export"); return o }())
			require.ElementsMatch(t, append(append([]string{}, stuck...), poison), ids)

			// The next start sends everything, the requeued event included.
			up.RejectEvent(nil)
			up.SetDefault(fakeposthog.Response{})
			a.start()
			require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), append(stuck, poison)))
		})
	}
}

func TestOpsSpoolFileToolsRefuseWhileTheAgentRunsWithoutSocket(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up)
	a.opsSend("locked", 5, nil)
	require.NoError(t, os.Remove(a.Socket))
	require.NoError(t, os.Remove(a.adminSocket)) // admin commands use this one

	for _, args := range [][]string{
		{"spool", "stats"},
		{"spool", "export"},
		{"spool", "dead-letters", "list"},
		{"spool", "dead-letters", "requeue"},
		{"spool", "compact"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := a.cli(args...)
			require.NotZero(t, code, out)
			require.Contains(t, errOut, "locked")
			require.Contains(t, errOut, filepath.Join(a.dir, "data", "spool.db"), "the message names the file")
			require.Contains(t, errOut, "socket did not answer")
		})
	}
	require.True(t, a.Running(), "the agent keeps running")
	// ...and keeps its events: stop it and read the file.
	require.NoError(t, a.stop())
	st := opsCLIJSON(t, a, "spool", "stats")
	require.EqualValues(t, 5, st["pending_events"])
}
