package e2e

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// A [forwarder] shutdown_timeout changed by SIGHUP is the one the next stop
// uses. Before the fix the reload reported it "applied" while Run kept the
// value it started with: with PostHog hanging, a stop waited out the old
// 5-minute budget instead of the new 1 second.
func TestReloadedShutdownTimeoutIsTheOneStopUses(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Hang: true}) // a stalled load balancer: forwarding never finishes
	a := startAgent(t, up, `forwarder.shutdown_timeout = "5m"`, `forwarder.request_timeout = "10m"`)

	evs, ids := mkEvents("shutdown-timeout", 3)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)

	writeConfig(t, a.dir, a.socket, up.URL(), `forwarder.shutdown_timeout = "1s"`, `forwarder.request_timeout = "10m"`)
	from := len(a.logs.String())
	require.NoError(t, a.cmd.Process.Signal(syscall.SIGHUP))
	var reload map[string]any
	require.Eventually(t, func() bool {
		reload = logLine(a.logs.String()[from:], "configuration reloaded")
		return reload != nil
	}, 10*time.Second, 20*time.Millisecond, "no \"configuration reloaded\" log line")
	require.Equal(t, []any{"[forwarder] shutdown_timeout"}, reload["applied_keys"])

	// a.stop fails the test if the agent takes 60s, far below the old 5m
	// budget and far above the new 1s one.
	require.NoError(t, a.stop())
	flush := logLine(a.logs.String(), "forwarding what is spooled before stopping")
	require.NotNil(t, flush, "the stop phase names the budget it uses")
	require.Equal(t, "1s", flush["shutdown_timeout"])

	// Nothing acknowledged was lost: the three events wait for the next start.
	out, errOut, code := a.cli("spool", "stats")
	require.Zero(t, code, errOut)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.EqualValues(t, len(ids), st["pending_events"])
}

// logLine returns the first JSON log line in logs whose message is msg.
func logLine(logs, msg string) map[string]any {
	for _, l := range strings.Split(logs, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["message"] == msg {
			return m
		}
	}
	return nil
}
