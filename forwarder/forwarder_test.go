package forwarder

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testclock"
	"github.com/hogrelay/hogrelay/internal/testlog"
	"github.com/hogrelay/hogrelay/spool"
)

// has reports whether the request carries event number i.
func has(r *fakeposthog.Request, i int) bool {
	for _, e := range r.Events {
		if strings.Contains(string(e.Raw), fmt.Sprintf(`"i":%d}`, i)) {
			return true
		}
	}
	return false
}

// acceptedEvents is every event PostHog accepted, as sent, in order.
func acceptedEvents(up *fakeposthog.Server) []string {
	var out []string
	for _, e := range up.Events() {
		out = append(out, string(e.Raw))
	}
	return out
}

type harness struct {
	sp    *spool.Spool
	f     *Forwarder
	up    *fakeposthog.Server
	mu    sync.Mutex
	waits []time.Duration
}

// newHarness runs a forwarder against a fake PostHog whose answer per
// capture request ans chooses; nil leaves every request to the fake's
// PostHog-like default (200 for a valid batch).
func newHarness(t *testing.T, ans fakeposthog.Answer, mut ...func(*Options)) *harness {
	t.Helper()
	log := testlog.New(t)
	sp, err := spool.Open(spool.Options{Path: filepath.Join(t.TempDir(), "spool.db"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	up, err := fakeposthog.New(fakeposthog.Options{Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	up.SetAnswer(ans)
	o := Options{
		Host: up.URL() + "/", BatchMaxEvents: 1000, BatchMaxBytes: 5 << 20,
		RequestTimeout: 5 * time.Second, BackoffInitial: time.Second, BackoffMax: time.Minute,
		AuthRetryInterval: 5 * time.Minute, Logger: log,
	}
	for _, m := range mut {
		m(&o)
	}
	h := &harness{sp: sp, up: up, f: New(sp, o)}
	// A manual clock: every wait is recorded and passes at once.
	clk := testclock.New(time.Now())
	h.f.clk.now = clk.Now
	h.f.clk.after = func(d time.Duration) <-chan time.Time {
		h.mu.Lock()
		h.waits = append(h.waits, d)
		h.mu.Unlock()
		return clk.After(d)
	}
	return h
}

// status is a scripted answer: code, with Retry-After ra when it is set.
func status(code int, ra string) fakeposthog.Response {
	return fakeposthog.Response{Status: code, RetryAfter: ra}
}

func event(i int) []byte {
	return []byte(fmt.Sprintf(`{"uuid":"0190a0b0-0000-7000-8000-%012d","event":"e","distinct_id":"d","timestamp":"2026-01-01T00:00:00.000Z","properties":{"i":%d}}`, i, i))
}

// run appends n events, runs the forwarder until the spool is empty and
// returns the stored events in order.
func (h *harness) run(t *testing.T, n int) []string {
	t.Helper()
	var want []string
	var evs [][]byte
	for i := 0; i < n; i++ {
		evs = append(evs, event(i))
		want = append(want, string(event(i)))
	}
	require.NoError(t, h.sp.Append(context.Background(), "phc_test", false, evs))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.f.Run(ctx) }()
	require.Eventually(t, func() bool {
		st, err := h.sp.Stats()
		return err == nil && st.PendingEvents == 0
	}, 10*time.Second, 5*time.Millisecond)
	cancel()
	<-done
	return want
}

func TestDeliversEveryEventByteIdenticalWithoutSentAt(t *testing.T) {
	h := newHarness(t, nil)
	want := h.run(t, 25)
	require.Equal(t, want, acceptedEvents(h.up))
	req := h.up.Requests()[0]
	require.True(t, req.Gzipped)
	require.Equal(t, "phc_test", req.Token)
	require.False(t, req.SentAt, "sent_at would make PostHog shift spooled events")
	require.EqualValues(t, 25, h.f.Status().EventsForwarded)
}

func TestRetryableFailuresAreRetriedWithBackoffAndRetryAfterFloor(t *testing.T) {
	cases := []struct {
		name    string
		resp    fakeposthog.Response
		minWait time.Duration
	}{
		{"429 with Retry-After seconds", status(429, "7"), 7 * time.Second},
		{"503", status(503, ""), 500 * time.Millisecond},
		{"500", status(500, ""), 500 * time.Millisecond},
		{"408", status(408, ""), 500 * time.Millisecond},
		{"502 with Retry-After date", status(502, time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat)), 80 * time.Second},
		{"dropped connection", fakeposthog.Response{Drop: true}, 500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
				return tc.resp, r.N <= 3 // the first three fail, then PostHog accepts
			})
			want := h.run(t, 10)
			require.Equal(t, want, acceptedEvents(h.up), "each event accepted exactly once")
			require.Len(t, h.waits, 3)
			for _, w := range h.waits {
				require.GreaterOrEqual(t, w, tc.minWait)
			}
			require.EqualValues(t, 3, h.f.Status().Retries)
			require.NotEmpty(t, h.f.Status().LastError)
		})
	}
}

func TestBackoffGrowsButStaysUnderCap(t *testing.T) {
	h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		return status(503, ""), r.N <= 12
	}, func(o *Options) { o.BackoffInitial = time.Second; o.BackoffMax = 8 * time.Second })
	h.run(t, 1)
	require.Len(t, h.waits, 12)
	for i, w := range h.waits {
		require.GreaterOrEqual(t, w, 500*time.Millisecond, "wait %d", i)
		require.LessOrEqual(t, w, 8*time.Second, "wait %d", i)
	}
}

func Test413SplitsTheBatch(t *testing.T) {
	h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		return status(413, ""), len(r.Events) > 3
	})
	want := h.run(t, 20)
	require.Equal(t, want, acceptedEvents(h.up))
	st, _ := h.sp.Stats()
	require.Zero(t, st.DeadEvents)
}

func Test400BisectsToThePoisonEvents(t *testing.T) {
	poison := map[int]bool{7: true, 30: true}
	h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		for p := range poison {
			if has(r, p) {
				return status(400, ""), true
			}
		}
		return fakeposthog.Response{}, false
	})
	want := h.run(t, 40)
	var good []string
	for i, e := range want {
		if !poison[i] {
			good = append(good, e)
		}
	}
	require.Equal(t, good, acceptedEvents(h.up), "every event behind the poison ones still arrives")
	var dead []string
	require.NoError(t, h.sp.Each(spool.DeadLetters, func(r spool.Record) error {
		dead = append(dead, string(r.Events[0]))
		require.Contains(t, r.Reason, "400")
		return nil
	}))
	require.Equal(t, []string{want[7], want[30]}, dead)
	require.EqualValues(t, 2, h.f.Status().DeadLettered)
}

func TestAuthFailureKeepsEverythingAndRetriesRarely(t *testing.T) {
	h := newHarness(t, func(r *fakeposthog.Request) (fakeposthog.Response, bool) {
		return status(401, ""), r.N <= 2
	})
	want := h.run(t, 5)
	require.Equal(t, want, acceptedEvents(h.up))
	require.Equal(t, []time.Duration{5 * time.Minute, 5 * time.Minute}, h.waits)
	st, _ := h.sp.Stats()
	require.Zero(t, st.DeadEvents)
}

func TestBatchesRespectCountAndTokens(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.BatchMaxEvents = 4 })
	require.NoError(t, h.sp.Append(context.Background(), "phc_other", true, [][]byte{event(100)}))
	h.run(t, 10)
	// Several are in flight, so they may arrive in any order.
	var sizes []int
	for _, r := range h.up.Requests() {
		sizes = append(sizes, r.Events)
		if r.Token == "phc_other" {
			require.Equal(t, 1, r.Events, "a batch never mixes tokens")
			require.True(t, r.HistoricalMigration)
		} else {
			require.False(t, r.HistoricalMigration, "nor historical and live events")
		}
	}
	require.ElementsMatch(t, []int{1, 4, 4, 2}, sizes)
}
