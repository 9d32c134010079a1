package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// Under drop_oldest the spool file stays within max_bytes too: dropping
// used to make room only in the pages in use, and bbolt's copy-on-write
// grew the file past the bound by the free pages it needed (about twice the
// bound with large events). Sampled all through an outage's fill, the file
// never passes max_bytes; after recovery every event not counted as dropped
// arrives.
func TestDropOldestSpoolFileStaysWithinMaxBytes(t *testing.T) {
	const maxBytes = 2 << 20
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, `spool.max_bytes = "2MiB"`, `spool.when_full = "drop_oldest"`)
	spoolPath := filepath.Join(a.dir, "data", "spool.db")

	var largest atomic.Int64
	sample := func() {
		if fi, err := os.Stat(spoolPath); err == nil && fi.Size() > largest.Load() {
			largest.Store(fi.Size())
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
				sample()
			}
		}
	}()

	big := strings.Repeat("L", 100_000)
	var acked []string
	for i := 0; i < 120; i++ {
		var evs []map[string]any
		var ids []string
		if i%3 == 0 {
			evs, ids = mkEvents(fmt.Sprintf("small%03d", i), 100)
		} else {
			evs, ids = mkEvents(fmt.Sprintf("large%03d", i), 1)
			evs[0]["properties"].(map[string]any)["blob"] = big
		}
		ans := a.postJSON("/batch/", batchBody(evs))
		require.Equal(t, 200, ans.status, "drop_oldest makes room instead of refusing: %s", ans.body)
		acked = append(acked, ids...)
		sample()
	}
	close(stop)
	wg.Wait()
	t.Logf("largest spool file during the fill: %d bytes (max_bytes %d)", largest.Load(), maxBytes)
	require.Positive(t, a.spoolStat("dropped_events"), "the fill went past the bound, so drop_oldest dropped")
	require.LessOrEqual(t, largest.Load(), int64(maxBytes), "the spool file stays within max_bytes under drop_oldest")

	up.SetDefault(fakeposthog.Response{})
	require.Eventually(t, func() bool {
		return a.spoolStat("pending_events") == 0 &&
			a.status()["forwarder"].(map[string]any)["in_flight"].(float64) == 0
	}, 90*time.Second, 50*time.Millisecond)
	fi, err := os.Stat(spoolPath)
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(maxBytes), "delivering (removals) kept the file within max_bytes")
	got := up.UniqueUUIDs()
	lost := 0
	for _, id := range acked {
		if got[id] == 0 {
			lost++
		}
	}
	require.Less(t, lost, len(acked))
	require.EqualValues(t, lost, a.spoolStat("dropped_events"), "every event not counted as dropped arrived")
}
