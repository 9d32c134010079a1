package e2e

import (
	"encoding/json"
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

	writeConfig(t, a.dir, a.Socket, up.URL(), `forwarder.shutdown_timeout = "1s"`, `forwarder.request_timeout = "10m"`)
	require.NoError(t, a.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return len(a.Logs.Lines("configuration reloaded")) > 0 },
		10*time.Second, 20*time.Millisecond, "no \"configuration reloaded\" log line")
	require.Equal(t, []any{"[forwarder] shutdown_timeout"}, a.Logs.Lines("configuration reloaded")[0]["applied_keys"])

	// a.stop fails the test if the agent takes 60s, far below the old 5m
	// budget and far above the new 1s one.
	require.NoError(t, a.stop())
	flush := a.Logs.Lines("forwarding what is spooled before stopping")
	require.Len(t, flush, 1, "the stop phase names the budget it uses")
	require.Equal(t, "1s", flush[0]["shutdown_timeout"])

	// Nothing acknowledged was lost: the three events wait for the next start.
	out, errOut, code := a.cli("spool", "stats")
	require.Zero(t, code, errOut)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.EqualValues(t, len(ids), st["pending_events"])
}
