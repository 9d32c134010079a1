package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// An upstream that answers 400 to everything (a broken proxy, a wrong host)
// must not dead-letter the spool: when single events keep being refused
// with the same answer, that is an upstream problem. The events stay
// pending, the agent backs off and says so in the log and in status, and
// they arrive once the upstream is fixed.
func TestUpstreamRefusingEverythingDoesNotDeadLetterTheSpool(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 400, Body: "bad request"})
	a := startAgent(t, up)
	var all []string
	for b := 0; b < 4; b++ {
		evs, ids := mkEvents("refused-"+string(rune('a'+b)), 250)
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		all = append(all, ids...)
	}
	require.Eventually(t, func() bool {
		v, _ := a.status()["forwarder"].(map[string]any)["upstream_refuses_everything"].(bool)
		return v
	}, 30*time.Second, 20*time.Millisecond, "status says PostHog refuses everything")
	// Let it keep trying for a while: still nothing dead-lettered.
	require.NoError(t, up.WaitForRequests(waitCtx(t, 30*time.Second), len(up.Requests())+10))
	require.Zero(t, a.spoolStat("dead_letter_events"), "nothing is dead-lettered")
	require.EqualValues(t, len(all), a.spoolStat("pending_events"), "everything is kept")
	fw := a.status()["forwarder"].(map[string]any)
	require.Equal(t, "backing_off", fw["state"])
	require.Contains(t, fw["last_error"], "refuses every event")
	var loud bool
	for _, l := range strings.Split(a.Logs.String(), "\n") {
		loud = loud || strings.Contains(l, `"level":"error"`) && strings.Contains(l, "refuses every event")
	}
	require.True(t, loud, "logged at error")
	out, _, code := a.cli("status")
	require.Zero(t, code)
	require.Contains(t, out, "refuses every event")

	up.SetDefault(fakeposthog.Response{}) // the proxy is fixed
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), all))
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Zero(t, a.spoolStat("dead_letter_events"))
}
