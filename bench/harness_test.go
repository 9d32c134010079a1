package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogrelay/hogrelay/internal/testagent"
)

// unreachableHost refuses connections at once (nothing listens on port 1),
// so the forwarder fails fast and then spends the run in backoff: ingest is
// measured without a forwarder competing for the CPU.
const unreachableHost = "http://127.0.0.1:1"

const benchToken = "phc_bench"

// startAgent starts a real agent (in-process, from a config file as serve
// reads it) on a unix socket in a temp dir, pointed at upstream. It is
// stopped by tb.Cleanup.
func startAgent(tb testing.TB, upstream string) *testagent.Agent {
	tb.Helper()
	return testagent.Start(tb, upstream,
		`posthog.api_key = "`+benchToken+`"`, `posthog.personal_api_key = "phx_bench"`,
		// Warnings only: per-request debug lines would be part of what is timed.
		`log.level = "warn"`,
		// Shutdown happens outside the timed region; do not let it sit in a
		// 10s final drain.
		`forwarder.shutdown_timeout = "50ms"`)
}

// unixClient is one producer's client: its own keep-alive connection to the
// agent's socket, like an SDK process would hold.
func unixClient(socket string) *http.Client {
	var d net.Dialer
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return d.DialContext(ctx, "unix", socket)
			},
			MaxIdleConnsPerHost: 1,
			DisableCompression:  true,
		},
	}
}

// post sends body and drains the answer; anything but 200 is an error,
// because for capture a 200 is the promise that the events are fsynced.
func post(c *http.Client, url, body string) error {
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// produce runs workers goroutines that share requests requests between
// them; do(worker, i) makes request i. It returns every request's latency
// and the wall time, or the first failure (after which workers stop early).
func produce(workers, requests int, do func(worker, i int) error) (lat []time.Duration, wall time.Duration, err error) {
	var (
		next     atomic.Int64
		failed   atomic.Bool
		firstErr error
		errOnce  sync.Once
		wg       sync.WaitGroup
	)
	perWorker := make([][]time.Duration, workers)
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, requests/workers+1)
			for !failed.Load() {
				i := int(next.Add(1)) - 1
				if i >= requests {
					break
				}
				t0 := time.Now()
				if err := do(w, i); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("producer %d, request %d: %w", w, i, err) })
					failed.Store(true)
					break
				}
				mine = append(mine, time.Since(t0))
			}
			perWorker[w] = mine
		}()
	}
	wg.Wait()
	wall = time.Since(start)
	for _, l := range perWorker {
		lat = append(lat, l...)
	}
	return lat, wall, firstErr
}

// percentile returns the q-quantile (0..1) of sorted latencies, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// latencyRecorder collects durations from many goroutines (for latencies
// measured where produce cannot, e.g. inside the forwarder's client).
type latencyRecorder struct {
	mu  sync.Mutex
	all []time.Duration
}

func (r *latencyRecorder) add(d time.Duration) {
	r.mu.Lock()
	r.all = append(r.all, d)
	r.mu.Unlock()
}

func (r *latencyRecorder) take() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.all
	r.all = nil
	return out
}

// timedTransport measures each round trip up to the response headers.
type timedTransport struct {
	next http.RoundTripper
	rec  *latencyRecorder
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t0 := time.Now()
	resp, err := t.next.RoundTrip(r)
	t.rec.add(time.Since(t0))
	return resp, err
}

// report publishes the figures every benchmark gives: rate (count per
// second under unit), p50/p99 latency and the heap in use afterwards.
// Outside a benchmark (the smoke test) it only logs.
func report(tb testing.TB, unit string, count int, wall time.Duration, lat []time.Duration) {
	tb.Helper()
	slices.Sort(lat)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rate := float64(count) / wall.Seconds()
	p50 := float64(percentile(lat, 0.50).Nanoseconds()) / 1e3
	p99 := float64(percentile(lat, 0.99).Nanoseconds()) / 1e3
	heap := float64(ms.HeapInuse) / 1e6
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(rate, unit)
		b.ReportMetric(p50, "p50-µs")
		b.ReportMetric(p99, "p99-µs")
		b.ReportMetric(heap, "MB-heap")
		return
	}
	tb.Logf("%.0f %s, p50 %.0fµs, p99 %.0fµs, heap %.1f MB (%d requests)", rate, unit, p50, p99, heap, len(lat))
}

// Timer control that works for both benchmarks and the smoke test.
func resetTimer(tb testing.TB) {
	if b, ok := tb.(*testing.B); ok {
		b.ReportAllocs()
		b.ResetTimer()
	}
}

func stopTimer(tb testing.TB) {
	if b, ok := tb.(*testing.B); ok {
		b.StopTimer()
	}
}

// event is a ~500-byte server-SDK event (posthog-python's shape, without a
// uuid: the agent assigns a v7 one).
func event(distinctID string, i int) string {
	return fmt.Sprintf(`{"event":"$pageview","distinct_id":%q,"timestamp":"2024-06-01T11:59:50.123456+00:00",`+
		`"properties":{"$lib":"posthog-python","$lib_version":"7.0.0","$current_url":"https://example.com/pricing?utm_source=newsletter&i=%d",`+
		`"$geoip_disable":true,"plan":"pro","seats":%d,"$groups":{"company":"acme-inc"},"feature_flags":["new-onboarding","beta-dashboard"],`+
		`"$session_id":"0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b","referrer":"https://news.ycombinator.com/","screen":{"w":1920,"h":1080}}}`,
		distinctID, i, i%50)
}

// batchBody is a /batch/ body of n events for producer p, variant v: every
// event has its own distinct_id.
func batchBody(p, v, n int) string {
	evs := make([]string, n)
	for i := range evs {
		evs[i] = event(fmt.Sprintf("user-%d-%d-%d", p, v, i), i)
	}
	return `{"api_key":"` + benchToken + `","batch":[` + strings.Join(evs, ",") + `]}`
}

// singleBody is an /i/v0/e/ body: one event object carrying its token.
func singleBody(p, v int) string {
	ev := event(fmt.Sprintf("user-%d-%d", p, v), v)
	return `{"api_key":"` + benchToken + `",` + ev[1:]
}

// waitFor polls cond every few milliseconds until it holds or timeout ends.
func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timed out")
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

func startTimer(tb testing.TB) {
	if b, ok := tb.(*testing.B); ok {
		b.StartTimer()
	}
}
