package forwarder

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/testlog"
	"github.com/hogrelay/hogrelay/spool"
)

// upstream is a minimal PostHog /batch/ edge whose answer per request is
// decided by the test.
type upstream struct {
	mu       sync.Mutex
	requests []received
	answer   func(n int, r received) (status int, retryAfter string)
	accepted []string
	// hold, when set, runs before the request is counted, outside the lock,
	// so a test can keep one request waiting while others complete.
	hold func(r received)
}

type received struct {
	APIKey     string            `json:"api_key"`
	Historical bool              `json:"historical_migration"`
	SentAt     *string           `json:"sent_at"`
	Batch      []json.RawMessage `json:"batch"`
	gzipped    bool
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/batch/" {
		http.Error(w, "not found", 404)
		return
	}
	var body io.Reader = r.Body
	rec := received{gzipped: r.Header.Get("Content-Encoding") == "gzip"}
	if rec.gzipped {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, "bad gzip", 400)
			return
		}
		body = zr
	}
	if err := json.NewDecoder(body).Decode(&rec); err != nil {
		http.Error(w, "bad json", 400)
		return
	}
	if u.hold != nil {
		u.hold(rec)
	}
	u.mu.Lock()
	n := len(u.requests)
	u.requests = append(u.requests, rec)
	status, ra := 200, ""
	if u.answer != nil {
		status, ra = u.answer(n, rec)
	}
	if status == 200 {
		for _, e := range rec.Batch {
			u.accepted = append(u.accepted, string(e))
		}
	}
	u.mu.Unlock()
	if ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	if status == -1 { // drop the connection
		c, _, _ := w.(http.Hijacker).Hijack()
		_ = c.Close()
		return
	}
	w.WriteHeader(status)
	if status == 200 {
		_, _ = w.Write([]byte(`{"status":1}`))
	} else {
		_, _ = w.Write([]byte("refused by test"))
	}
}

func (u *upstream) acceptedEvents() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.accepted...)
}

type harness struct {
	sp    *spool.Spool
	f     *Forwarder
	up    *upstream
	mu    sync.Mutex
	waits []time.Duration
}

func newHarness(t *testing.T, answer func(int, received) (int, string), mut ...func(*Options)) *harness {
	t.Helper()
	log := testlog.New(t)
	sp, err := spool.Open(spool.Options{Path: filepath.Join(t.TempDir(), "spool.db"), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sp.Close() })
	up := &upstream{answer: answer}
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	o := Options{
		Host: srv.URL + "/", BatchMaxEvents: 1000, BatchMaxBytes: 5 << 20,
		RequestTimeout: 5 * time.Second, BackoffInitial: time.Second, BackoffMax: time.Minute,
		AuthRetryInterval: 5 * time.Minute, Logger: log,
	}
	for _, m := range mut {
		m(&o)
	}
	h := &harness{sp: sp, up: up, f: New(sp, o)}
	// A fake clock: every wait is recorded and passes at once.
	clk := &fakeClock{t: time.Now()}
	h.f.clk.now = clk.now
	h.f.clk.after = func(d time.Duration) <-chan time.Time {
		h.mu.Lock()
		h.waits = append(h.waits, d)
		h.mu.Unlock()
		return clk.advance(d)
	}
	return h
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.t = c.t.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.t
	c.mu.Unlock()
	return ch
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
	require.Equal(t, want, h.up.acceptedEvents())
	req := h.up.requests[0]
	require.True(t, req.gzipped)
	require.Equal(t, "phc_test", req.APIKey)
	require.Nil(t, req.SentAt, "sent_at would make PostHog shift spooled events")
	require.EqualValues(t, 25, h.f.Status().EventsForwarded)
}

func TestRetryableFailuresAreRetriedWithBackoffAndRetryAfterFloor(t *testing.T) {
	cases := []struct {
		name       string
		status     int
		retryAfter string
		minWait    time.Duration
	}{
		{"429 with Retry-After seconds", 429, "7", 7 * time.Second},
		{"503", 503, "", 500 * time.Millisecond},
		{"500", 500, "", 500 * time.Millisecond},
		{"408", 408, "", 500 * time.Millisecond},
		{"502 with Retry-After date", 502, time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat), 80 * time.Second},
		{"dropped connection", -1, "", 500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(n int, _ received) (int, string) {
				if n < 3 {
					return tc.status, tc.retryAfter
				}
				return 200, ""
			})
			want := h.run(t, 10)
			require.Equal(t, want, h.up.acceptedEvents(), "each event accepted exactly once")
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
	h := newHarness(t, func(n int, _ received) (int, string) {
		if n < 12 {
			return 503, ""
		}
		return 200, ""
	}, func(o *Options) { o.BackoffInitial = time.Second; o.BackoffMax = 8 * time.Second })
	h.run(t, 1)
	require.Len(t, h.waits, 12)
	for i, w := range h.waits {
		require.GreaterOrEqual(t, w, 500*time.Millisecond, "wait %d", i)
		require.LessOrEqual(t, w, 8*time.Second, "wait %d", i)
	}
}

func Test413SplitsTheBatch(t *testing.T) {
	h := newHarness(t, func(_ int, r received) (int, string) {
		if len(r.Batch) > 3 {
			return 413, ""
		}
		return 200, ""
	})
	want := h.run(t, 20)
	require.Equal(t, want, h.up.acceptedEvents())
	st, _ := h.sp.Stats()
	require.Zero(t, st.DeadEvents)
}

func Test400BisectsToThePoisonEvents(t *testing.T) {
	poison := map[int]bool{7: true, 30: true}
	h := newHarness(t, func(_ int, r received) (int, string) {
		for _, e := range r.Batch {
			for p := range poison {
				if strings.Contains(string(e), fmt.Sprintf(`"i":%d}`, p)) {
					return 400, ""
				}
			}
		}
		return 200, ""
	})
	want := h.run(t, 40)
	var good []string
	for i, e := range want {
		if !poison[i] {
			good = append(good, e)
		}
	}
	require.Equal(t, good, h.up.acceptedEvents(), "every event behind the poison ones still arrives")
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
	h := newHarness(t, func(n int, _ received) (int, string) {
		if n < 2 {
			return 401, ""
		}
		return 200, ""
	})
	want := h.run(t, 5)
	require.Equal(t, want, h.up.acceptedEvents())
	require.Equal(t, []time.Duration{5 * time.Minute, 5 * time.Minute}, h.waits)
	st, _ := h.sp.Stats()
	require.Zero(t, st.DeadEvents)
}

func TestBatchesRespectCountAndTokens(t *testing.T) {
	h := newHarness(t, nil, func(o *Options) { o.BatchMaxEvents = 4 })
	require.NoError(t, h.sp.Append(context.Background(), "phc_other", true, [][]byte{event(100)}))
	h.run(t, 10)
	var sizes []int
	for _, r := range h.up.requests {
		sizes = append(sizes, len(r.Batch))
	}
	require.Equal(t, []int{1, 4, 4, 2}, sizes)
	require.Equal(t, "phc_other", h.up.requests[0].APIKey)
	require.True(t, h.up.requests[0].Historical)
	require.False(t, h.up.requests[1].Historical)
}
