package e2e

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// PostHog comes back from an outage rate-limiting (429 with Retry-After):
// the agent stops probing with one-event requests (each would spend a
// request of PostHog's rate on one event), waits for the Retry-After, and
// sends whole batches again; nothing is lost.
func TestAfterAnOutageA429EndsProbing(t *testing.T) {
	type seen struct {
		events int
		at     time.Time
		status int
	}
	var (
		mu      sync.Mutex
		phase   = "down"
		limited int // 429s given since PostHog came back
		after   []seen
	)
	up := newUpstream(t)
	up.SetAnswer(func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		if r.Path != "/batch/" {
			return fakeposthog.Response{}, false
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case phase == "down":
			return fakeposthog.Response{Status: 503}, true
		case limited < 3:
			limited++
			after = append(after, seen{len(r.Events), time.Now(), 429})
			return fakeposthog.Response{Status: 429, RetryAfter: "1"}, true
		}
		after = append(after, seen{len(r.Events), time.Now(), 200})
		return fakeposthog.Response{}, false
	})
	a := startAgent(t, up, "forwarder.batch_max_events = 100")
	var all []string
	for b := 0; b < 10; b++ {
		evs, ids := mkEvents("ratelimit-"+string(rune('a'+b)), 100)
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		all = append(all, ids...)
	}
	// Probing: one-event requests while PostHog is down.
	require.Eventually(t, func() bool { return len(up.Requests()) >= 4 }, 30*time.Second, 10*time.Millisecond)
	mu.Lock()
	phase = "limited"
	mu.Unlock()

	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), all), "every acknowledged event arrives")
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, 1, after[0].events, "the first request after the outage is a probe, and meets the 429")
	require.Equal(t, 429, after[0].status)
	for i, s := range after[1:] {
		require.Equal(t, 100, s.events, "request %d after the first 429 is a whole batch, not a probe", i+2)
	}
	require.GreaterOrEqual(t, after[1].at.Sub(after[0].at), time.Second, "the Retry-After is waited for")
}
