package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Dead letters cannot be compacted away. Once they alone fill the file past
// compact_above, the agent used to rewrite the whole file after every batch
// that emptied the queue (140 compactions a minute in the field). Now it
// compacts only when that gives back a meaningful share of the file.
func TestDeadLettersOverCompactAboveDoNotCauseACompactionLoop(t *testing.T) {
	up := newUpstream(t)
	opsPoisoned(up)
	a := startAgent(t, up, `spool.compact_above = "256KiB"`)

	// Poison events among good ones are dead-lettered one by one.
	blob := strings.Repeat("p", 25_000)
	const poisoned = 16
	for i := 0; i < poisoned; i++ {
		ids := a.opsSend(fmt.Sprintf("dl%02d", i), 3, func(j int, ev map[string]any) {
			opsPoison(j, ev)
			ev["properties"].(map[string]any)["blob"] = blob
		})
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids[1:]))
		require.Eventually(t, func() bool { return a.spoolStat("dead_letter_events") == float64(i+1) }, 30*time.Second, 20*time.Millisecond)
	}
	require.Greater(t, a.spoolStat("file_bytes"), float64(256<<10), "dead letters alone are over compact_above")
	before := strings.Count(a.Logs.String(), "spool compacted")

	// Twenty small batches, each delivered before the next: each empties the
	// queue.
	for i := 0; i < 20; i++ {
		evs, ids := mkEvents(fmt.Sprintf("live%02d", i), 5)
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
		require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 30*time.Second, 20*time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	after := strings.Count(a.Logs.String(), "spool compacted")
	require.LessOrEqual(t, after-before, 1, "compactions while only dead letters fill the file")
	require.EqualValues(t, poisoned, a.spoolStat("dead_letter_events"), "dead letters are kept")
}
