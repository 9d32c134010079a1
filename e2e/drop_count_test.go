package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// drop_oldest's counter says how many events were lost: events deleted
// while they were being sent, and then delivered, are not counted (they
// used to be: 453,400 counted for 453,380 lost).
func TestDropOldestCountsOnlyWhatWasLost(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Delay: 1500 * time.Millisecond})
	a := startAgent(t, up, `spool.max_bytes = "1MiB"`, `spool.when_full = "drop_oldest"`)
	big := strings.Repeat("d", 50_000)
	var acked []string
	for i := 0; i < 10; i++ {
		evs, ids := mkEvents(fmt.Sprintf("drop%02d", i), 5)
		for _, e := range evs {
			e["properties"].(map[string]any)["blob"] = big
		}
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		acked = append(acked, ids...)
		if i == 0 {
			time.Sleep(300 * time.Millisecond) // the first batch is in flight
		}
	}
	// Records dropped while in flight leave the spool before their request
	// ends, so an empty spool is not yet the end: wait for the forwarder too.
	require.Eventually(t, func() bool {
		return a.spoolStat("pending_events") == 0 &&
			a.status()["forwarder"].(map[string]any)["in_flight"].(float64) == 0
	}, 60*time.Second, 50*time.Millisecond)
	got := up.UniqueUUIDs()
	lost := 0
	for _, id := range acked {
		if got[id] == 0 {
			lost++
		}
	}
	require.Positive(t, lost, "the bound made drop_oldest drop")
	require.Less(t, lost, len(acked))
	require.EqualValues(t, lost, a.spoolStat("dropped_events"), "dropped_events counts exactly the events that never arrived")
}
