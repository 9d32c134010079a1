package e2e

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Two events with one uuid in one v0 batch are one event to PostHog: the
// agent keeps the first and forwards it once (v1 refuses such a batch).
func TestDuplicateUUIDInAV0BatchIsForwardedOnce(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	evs, ids := mkEvents("dupuuid", 3)
	evs[2]["uuid"] = ids[0]
	evs[2]["event"] = "dupuuid-second"
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids[:2]))
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 10*time.Second, 20*time.Millisecond)
	got := 0
	for _, ev := range up.Events() {
		if ev.UUID == ids[0] {
			got++
			require.Equal(t, "dupuuid", ev.Event, "the first event of the uuid is the one kept")
		}
	}
	require.Equal(t, 1, got)
}
