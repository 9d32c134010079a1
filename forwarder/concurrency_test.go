package forwarder

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/spool"
)

// appendRecords stores records of per events each (event numbers from 0),
// one Append per record, and returns every event in order.
func (h *harness) appendRecords(t *testing.T, records, per int) []string {
	t.Helper()
	var all []string
	for r := 0; r < records; r++ {
		var evs [][]byte
		for i := r * per; i < (r+1)*per; i++ {
			evs = append(evs, event(i))
			all = append(all, string(event(i)))
		}
		require.NoError(t, h.sp.Append(context.Background(), "phc_test", false, evs))
	}
	return all
}

// start runs the forwarder with its concurrency limit preset (as if it had
// already grown) until the test ends.
func (h *harness) start(t *testing.T, limit float64) {
	t.Helper()
	h.f.limiter.c.limit = limit
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.f.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (h *harness) pending(t *testing.T) int64 {
	t.Helper()
	st, err := h.sp.Stats()
	require.NoError(t, err)
	return st.PendingEvents
}

func (h *harness) waitEmpty(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return h.pending(t) == 0 }, 30*time.Second, 5*time.Millisecond)
}

// Batches finish out of order; a record leaves the spool only when the
// request carrying it got its 2xx, never because a later one did.
func TestOutOfOrderCompletionNeverRemovesAnUnacknowledgedRecord(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.BatchMaxEvents = 10 })
	// The head batch hangs until the test lets it go.
	release := h.up.Hold(func(r *fakeposthog.Request) bool { return has(r, 0) })
	h.appendRecords(t, 5, 10)
	h.start(t, 4)

	// Everything behind the head is accepted and removed...
	require.Eventually(t, func() bool { return len(acceptedEvents(h.up)) == 40 }, 30*time.Second, 5*time.Millisecond)
	require.Eventually(t, func() bool { return h.pending(t) == 10 }, 30*time.Second, 5*time.Millisecond)
	// ...and the head record, still unanswered, stays: it is what a crash now
	// would send again.
	head, err := h.sp.Next(1000, 5<<20)
	require.NoError(t, err)
	require.Len(t, head, 1)
	require.Equal(t, string(event(0)), string(head[0].Events[0]))
	require.Equal(t, 1, h.f.Status().InFlight)

	release()
	h.waitEmpty(t)
	require.Len(t, acceptedEvents(h.up), 50)
}

// A record split over several chunks (batch_max_events lowered after it was
// stored) is removed only after its last chunk is accepted, whichever lane
// finishes last.
func TestRecordSplitOverLanesIsRemovedAfterItsLastChunk(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.BatchMaxEvents = 5 })
	release := h.up.Hold(func(r *fakeposthog.Request) bool { return has(r, 0) })
	// One record of 20 events: four chunks of 5.
	var evs [][]byte
	for i := 0; i < 20; i++ {
		evs = append(evs, event(i))
	}
	require.NoError(t, h.sp.Append(context.Background(), "phc_test", false, evs))
	h.start(t, 4)
	require.Eventually(t, func() bool { return len(acceptedEvents(h.up)) == 15 }, 30*time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond) // give a wrong removal the time to happen
	require.EqualValues(t, 20, h.pending(t), "three of four chunks accepted: the record stays")
	release()
	h.waitEmpty(t)
}

func TestSeveralInFlightWhenTheLimitAllows(t *testing.T) {
	// Each request takes 20ms, so the lanes' requests overlap.
	h := newHarness(t, func(*fakeposthog.Request) (fakeposthog.Response, bool) {
		return fakeposthog.Response{Delay: 20 * time.Millisecond}, true
	}, func(o *Options) { o.BatchMaxEvents = 10; o.MaxInFlight = 4 })
	want := h.appendRecords(t, 20, 10)
	h.start(t, 4)
	h.waitEmpty(t)
	require.ElementsMatch(t, want, acceptedEvents(h.up), "every event exactly once")
	require.Equal(t, 4, h.up.PeakCaptureInFlight(), "four lanes, never more than max_in_flight")
}

// Batches of very large events are bounded by bytes held, not only by the
// limit: read-ahead and in flight together stay near maxHeldBytes.
func TestBytesHeldBoundTheLanes(t *testing.T) {
	h := newHarness(t, func(*fakeposthog.Request) (fakeposthog.Response, bool) {
		return fakeposthog.Response{Delay: 20 * time.Millisecond}, true
	}, func(o *Options) { o.BatchMaxEvents = 5; o.MaxInFlight = 16 })
	h.f.limiter.maxHeld = 2 * 5 * len(event(0)) // two batches' worth
	want := h.appendRecords(t, 20, 5)
	h.start(t, 16)
	h.waitEmpty(t)
	require.ElementsMatch(t, want, acceptedEvents(h.up), "every event exactly once")
	require.Equal(t, 2, h.up.PeakCaptureInFlight(), "two batches fill the byte bound, limit or not")
}

// 413 splitting, 400 bisection and 401 behave with four lanes as with one.
func TestRefusalsWithSeveralInFlight(t *testing.T) {
	t.Run("413 splits", func(t *testing.T) {
		h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
			return status(413, ""), len(r.Events) > 3
		}, func(o *Options) { o.BatchMaxEvents = 10 })
		want := h.appendRecords(t, 8, 10)
		h.start(t, 4)
		h.waitEmpty(t)
		require.ElementsMatch(t, want, acceptedEvents(h.up))
		st, _ := h.sp.Stats()
		require.Zero(t, st.DeadEvents)
	})
	t.Run("400 bisects to exactly the poison events", func(t *testing.T) {
		poison := map[int]bool{3: true, 27: true, 55: true, 56: true}
		h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
			for p := range poison {
				if has(r, p) {
					return status(400, ""), true
				}
			}
			return fakeposthog.Response{}, false
		}, func(o *Options) { o.BatchMaxEvents = 10 })
		all := h.appendRecords(t, 8, 10)
		h.start(t, 4)
		h.waitEmpty(t)
		var good, bad []string
		for i, e := range all {
			if poison[i] {
				bad = append(bad, e)
			} else {
				good = append(good, e)
			}
		}
		require.ElementsMatch(t, good, acceptedEvents(h.up))
		var dead []string
		require.NoError(t, h.sp.Each(spool.DeadLetters, func(r spool.Record) error {
			dead = append(dead, string(r.Events[0]))
			return nil
		}))
		require.ElementsMatch(t, bad, dead)
		require.False(t, h.f.Status().RefusingAll)
	})
	t.Run("401 holds every lane and keeps everything", func(t *testing.T) {
		var mu sync.Mutex
		authed := false
		h := newHarness(t, func(*fakeposthog.Request) (fakeposthog.Response, bool) {
			mu.Lock()
			defer mu.Unlock()
			return status(401, ""), !authed
		}, func(o *Options) { o.BatchMaxEvents = 10 })
		h.f.clk.after = func(time.Duration) <-chan time.Time { return nil } // waits never end by themselves
		want := h.appendRecords(t, 8, 10)
		h.start(t, 4)
		require.Eventually(t, func() bool { return h.f.Status().State == StateAuthFailed }, 30*time.Second, 5*time.Millisecond)
		time.Sleep(50 * time.Millisecond)
		n := len(h.up.Requests())
		require.LessOrEqual(t, n, 4, "only the requests already in flight, no new ones while the key is refused")
		require.EqualValues(t, 80, h.pending(t))
		mu.Lock()
		authed = true
		mu.Unlock()
		h.f.Wake() // what a reload with the fixed key does
		h.waitEmpty(t)
		require.ElementsMatch(t, want, acceptedEvents(h.up))
	})
}

// After a long outage the agent still probes every few seconds (bounded by
// backoff_max, jittered), each probe one event, and all lanes wait.
func TestProbingStaysBoundedAndSmallThroughALongOutage(t *testing.T) {
	var mu sync.Mutex
	down := true
	var whileDown []int // events per request while PostHog was down
	h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		mu.Lock()
		defer mu.Unlock()
		if down {
			whileDown = append(whileDown, len(r.Events))
		}
		return status(503, ""), down
	}, func(o *Options) {
		o.BatchMaxEvents = 10
		o.BackoffInitial = time.Second
		o.BackoffMax = 5 * time.Second
	})
	want := h.appendRecords(t, 8, 10)
	h.start(t, 4)
	// An hour of simulated outage.
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		var total time.Duration
		for _, w := range h.waits {
			total += w
		}
		return total > time.Hour
	}, 30*time.Second, time.Millisecond)
	mu.Lock()
	down = false
	mu.Unlock()
	h.waitEmpty(t)
	require.ElementsMatch(t, want, acceptedEvents(h.up))

	h.mu.Lock()
	defer h.mu.Unlock()
	for i, w := range h.waits {
		require.LessOrEqual(t, w, 5*time.Second, "wait %d", i)
	}
	mu.Lock()
	defer mu.Unlock()
	full := 0
	for _, n := range whileDown {
		if n > 1 {
			full++
		}
	}
	require.Greater(t, len(whileDown), 500, "it kept probing")
	require.LessOrEqual(t, full, 4, "only the four batches already on their way when PostHog went down were sent whole; every other request was a one-event probe")
}

// An upstream that refuses every event, even alone, with the same answer
// (a broken proxy, a wrong host) is an upstream problem: nothing is
// dead-lettered, everything is kept, status says so.
func TestRefusingEverythingIsNotPoison(t *testing.T) {
	var mu sync.Mutex
	broken := true
	h := newHarness(t, func(*fakeposthog.Request) (fakeposthog.Response, bool) {
		mu.Lock()
		defer mu.Unlock()
		return status(400, ""), broken
	}, func(o *Options) { o.BatchMaxEvents = 100 })
	want := h.appendRecords(t, 10, 100)
	h.start(t, 4)
	require.Eventually(t, func() bool { return h.f.Status().RefusingAll }, 30*time.Second, time.Millisecond)
	require.Eventually(t, func() bool {
		return len(h.up.Requests()) > 60
	}, 30*time.Second, time.Millisecond, "it keeps retrying")
	st, _ := h.sp.Stats()
	require.Zero(t, st.DeadEvents, "nothing dead-lettered")
	require.EqualValues(t, 1000, st.PendingEvents)
	s := h.f.Status()
	require.Equal(t, StateBackingOff, s.State)
	require.Contains(t, s.LastError, "refuses every event")

	mu.Lock()
	broken = false
	mu.Unlock()
	h.waitEmpty(t)
	require.ElementsMatch(t, want, acceptedEvents(h.up))
	require.False(t, h.f.Status().RefusingAll)
	st, _ = h.sp.Stats()
	require.Zero(t, st.DeadEvents)
}

// A 429 to a probe means PostHog is back but rate-limiting: probing stops
// (a one-event probe spends a request of PostHog's rate on one event), and
// every wait after a 429 is the Retry-After PostHog gave, spread by at
// most a quarter, not a backoff that keeps growing on top of it.
func TestA429EndsProbingAndWaitsForRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var sizes []int
	h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		mu.Lock()
		defer mu.Unlock()
		sizes = append(sizes, len(r.Events))
		switch {
		case r.N <= 3:
			return status(503, ""), true
		case r.N <= 6:
			return status(429, "2"), true
		}
		return fakeposthog.Response{}, false
	}, func(o *Options) { o.BatchMaxEvents = 10 })
	want := h.appendRecords(t, 3, 10)
	h.start(t, 1)
	h.waitEmpty(t)
	require.ElementsMatch(t, want, acceptedEvents(h.up))

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, 1}, sizes[1:3], "while PostHog fails, one-event probes")
	require.Equal(t, 1, sizes[3], "the probe that meets the 429")
	require.Equal(t, []int{10, 10}, sizes[4:6], "after a 429, whole batches again: PostHog is up")
	h.mu.Lock()
	defer h.mu.Unlock()
	// Three waits after the 503s, three after the 429s; later ones are the
	// pacing of a limit the 429s cut below one.
	require.GreaterOrEqual(t, len(h.waits), 6)
	for i, w := range h.waits[3:6] {
		require.GreaterOrEqual(t, w, 2*time.Second, "wait after 429 number %d", i+1)
		require.LessOrEqual(t, w, 2500*time.Millisecond, "wait after 429 number %d", i+1)
	}
}
