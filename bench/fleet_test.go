package bench

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hogrelay/hogrelay/internal/testagent"
)

// fleetUpstream is a PostHog with a fixed capacity: while down it answers
// 503; once up it accepts rate requests per wall-clock second, each after
// delay, and answers 429 with Retry-After: 1 above that. It records, per
// project token (one per agent), when the first request was accepted.
type fleetUpstream struct {
	*httptest.Server
	rate  int
	delay time.Duration

	down     atomic.Bool
	events   atomic.Int64
	accepted atomic.Int64
	refused  atomic.Int64

	mu     sync.Mutex
	second int64
	used   int
	first  map[string]time.Time
}

func startFleetUpstream(tb testing.TB, rate int, delay time.Duration) *fleetUpstream {
	tb.Helper()
	u := &fleetUpstream{rate: rate, delay: delay, first: map[string]time.Time{}}
	u.down.Store(true)
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	tb.Cleanup(u.Close)
	return u
}

func (u *fleetUpstream) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if u.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	now := time.Now()
	u.mu.Lock()
	if s := now.Unix(); s != u.second {
		u.second, u.used = s, 0
	}
	ok := u.used < u.rate
	if ok {
		u.used++
	}
	u.mu.Unlock()
	if !ok {
		u.refused.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "rate limited", http.StatusTooManyRequests)
		return
	}
	time.Sleep(u.delay)
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		http.Error(w, "bad gzip", http.StatusBadRequest)
		return
	}
	raw, _ := io.ReadAll(zr)
	n := countBatch(raw)
	token := string(raw[len(`{"api_key":"`) : bytes.IndexByte(raw[len(`{"api_key":"`):], '"')+len(`{"api_key":"`)])
	u.mu.Lock()
	if _, seen := u.first[token]; !seen {
		u.first[token] = time.Now()
	}
	u.mu.Unlock()
	u.events.Add(int64(n))
	u.accepted.Add(1)
	_, _ = io.WriteString(w, `{"status":1}`)
}

type fleetCase struct {
	agents, perAgent, rate int
	delay, outage          time.Duration
}

type fleetResult struct {
	firstP50, firstP99, drain, ideal time.Duration
	refusedShare                     float64
}

// runFleet starts agents real agents (each its own spool, socket and
// project token, default forwarder settings), spools perAgent events into
// each while PostHog is down for outage, then brings PostHog back with its
// fixed capacity and times the recovery.
func runFleet(tb testing.TB, c fleetCase) fleetResult {
	tb.Helper()
	up := startFleetUpstream(tb, c.rate, c.delay)
	var wg sync.WaitGroup
	errs := make(chan error, c.agents)
	for i := range c.agents {
		token := "phc_fleet" + strconv.Itoa(i)
		a := testagent.Start(tb, up.URL, `posthog.api_key = "`+token+`"`, `posthog.personal_api_key = ""`,
			`log.level = "error"`, `forwarder.shutdown_timeout = "50ms"`)
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := unixClient(a.Socket)
			for r := 0; r < c.perAgent/100; r++ {
				body := bytes.ReplaceAll([]byte(batchBody(i, r, 100)), []byte(benchToken), []byte(token))
				if err := post(cl, "http://hogrelay/batch/", string(body)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatalf("spooling the backlog: %v", err)
	}
	time.Sleep(c.outage) // the agents back off as far as they will

	total := int64(c.agents * c.perAgent)
	up.down.Store(false)
	recovered := time.Now()
	if err := waitFor(10*time.Minute, func() bool { return up.events.Load() >= total }); err != nil {
		tb.Fatalf("fleet did not drain: %d of %d events", up.events.Load(), total)
	}
	drain := time.Since(recovered)

	up.mu.Lock()
	var firsts []time.Duration
	for _, t := range up.first {
		firsts = append(firsts, t.Sub(recovered))
	}
	up.mu.Unlock()
	slices.Sort(firsts)
	batches := c.agents * ((c.perAgent + 999) / 1000)
	res := fleetResult{
		firstP50: percentile(firsts, 0.5), firstP99: percentile(firsts, 0.99), drain: drain,
		ideal:        time.Duration(float64(batches) / float64(c.rate) * float64(time.Second)),
		refusedShare: float64(up.refused.Load()) / float64(up.refused.Load()+up.accepted.Load()),
	}
	return res
}

// BenchmarkFleetRecovery: 20 agents each hold 20,000 events spooled during
// a 30 s outage; PostHog then accepts 40 requests/s at 50 ms each and
// answers 429 + Retry-After above that. op = one whole recovery. Reports
// the time from recovery to each agent's first delivery (p50, p99), the
// drain time against the ideal the capacity allows (400 batches / 40 per
// s = 10 s), and the share of requests refused. Targets: p99 <= 15 s,
// drain <= 1.5x ideal, <= 25 % refused.
func BenchmarkFleetRecovery(b *testing.B) {
	c := fleetCase{agents: 20, perAgent: 20_000, rate: 40, delay: 50 * time.Millisecond, outage: 30 * time.Second}
	var worst fleetResult
	for range b.N {
		r := runFleet(b, c)
		worst.firstP50 = max(worst.firstP50, r.firstP50)
		worst.firstP99 = max(worst.firstP99, r.firstP99)
		worst.drain = max(worst.drain, r.drain)
		worst.ideal = r.ideal
		worst.refusedShare = max(worst.refusedShare, r.refusedShare)
	}
	b.ReportMetric(worst.firstP50.Seconds(), "first-p50-s")
	b.ReportMetric(worst.firstP99.Seconds(), "first-p99-s")
	b.ReportMetric(worst.drain.Seconds(), "drain-s")
	b.ReportMetric(worst.drain.Seconds()/worst.ideal.Seconds(), "drain/ideal")
	b.ReportMetric(100*worst.refusedShare, "%refused")
}

func (r fleetResult) String() string {
	return fmt.Sprintf("first delivery p50 %.1fs p99 %.1fs; drain %.1fs = %.2fx ideal %.1fs; %.0f%% refused",
		r.firstP50.Seconds(), r.firstP99.Seconds(), r.drain.Seconds(), r.drain.Seconds()/r.ideal.Seconds(), r.ideal.Seconds(), 100*r.refusedShare)
}
