package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// A timestamp the agent cannot parse is not a 400: the event is stored and
// sent with the time the agent received it, as PostHog's ingestion does
// (README, "Sending events").
func TestUnparseableTimestampBecomesTheReceiveTime(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	evs, ids := mkEvents("bad-ts", 2)
	evs[0]["timestamp"] = "not a date"
	evs[1]["timestamp"] = "2026-13-45T99:00:00Z"
	before := time.Now()
	ans := a.postJSON("/batch/", batchBody(evs))
	require.Equal(t, 200, ans.status, ans.body)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 20*time.Second), ids))
	for _, ev := range up.Events() {
		ts, err := time.Parse(time.RFC3339Nano, ev.Timestamp)
		require.NoError(t, err, "the agent sends a timestamp PostHog reads: %q", ev.Timestamp)
		require.WithinDuration(t, before, ts, 10*time.Second, "the receive time, not the unparseable text")
	}
}
