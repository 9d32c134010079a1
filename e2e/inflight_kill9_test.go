package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// kill -9 while several batches are in flight (PostHog slow to answer,
// some of them already ingested): every acknowledged event still arrives
// after the restart, and the repeats are bounded by what was in flight.
func TestKill9WithSeveralRequestsInFlightLosesNothing(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Delay: 400 * time.Millisecond})
	a := startAgent(t, up, "forwarder.batch_max_events = 200", "forwarder.max_in_flight = 8")
	var all []string
	for b := 0; b < 40; b++ {
		evs, ids := mkEvents("inflight-"+string(rune('A'+b%26))+string(rune('a'+b/26)), 200)
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		all = append(all, ids...)
	}
	require.Eventually(t, func() bool {
		return a.status()["forwarder"].(map[string]any)["in_flight"].(float64) >= 3
	}, 30*time.Second, 10*time.Millisecond, "the limit grows to several requests in flight against a slow but healthy PostHog")
	a.kill9()

	up.SetDefault(fakeposthog.Response{})
	a.start()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), all), "every acknowledged event arrives")
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 10*time.Second, 20*time.Millisecond)
	for id, n := range up.UniqueUUIDs() {
		require.LessOrEqual(t, n, 2, "%s: sent again at most once, because it was in flight at the kill", id)
	}
}
