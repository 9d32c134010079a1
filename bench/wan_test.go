package bench

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/forwarder"
	"github.com/hogrelay/hogrelay/internal/testlog"
	"github.com/hogrelay/hogrelay/spool"
)

// wanBacklog is the spooled backlog each WAN drain run empties.
const wanBacklog = 200_000

// slowUpstream is the lean upstream answering each /batch/ after delay, as
// PostHog's cloud does from a VM (a round trip of ~100 ms), and counting the
// most requests it had in flight at once.
type slowUpstream struct {
	*leanUpstream
	inFlight, most atomic.Int64
}

func startSlowUpstream(tb testing.TB, delay time.Duration) *slowUpstream {
	tb.Helper()
	u := &slowUpstream{leanUpstream: startLeanUpstream(tb)}
	lean := u.Config.Handler
	u.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := u.inFlight.Add(1)
		defer u.inFlight.Add(-1)
		for m := u.most.Load(); n > m && !u.most.CompareAndSwap(m, n); m = u.most.Load() {
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		lean.ServeHTTP(w, r)
	})
	return u
}

// runWANDrain drains a pre-filled spool of wanBacklog events with the
// forwarder configured as config.Default() configures the agent, to an
// upstream delay away; op = one drain of the whole backlog.
func runWANDrain(tb testing.TB, delay time.Duration, backlog, maxInFlight int) {
	tb.Helper()
	log := testlog.New(tb).Level(zerolog.WarnLevel)
	chunks := storedChunks(tb, 64)
	d := config.Default().Forwarder
	var total int
	var wall time.Duration
	var most int64
	iterations := 1
	if b, ok := tb.(*testing.B); ok {
		iterations = b.N
	}
	resetTimer(tb)
	for range iterations {
		stopTimer(tb)
		up := startSlowUpstream(tb, delay)
		sp, err := spool.Open(spool.Options{Path: filepath.Join(tb.TempDir(), "spool.db"), Logger: log})
		if err != nil {
			tb.Fatal(err)
		}
		fillSpool(tb, sp, chunks, backlog)
		fw := forwarder.New(sp, forwarder.Options{
			Host: up.URL, BatchMaxEvents: d.BatchMaxEvents, BatchMaxBytes: int(d.BatchMaxBytes), MaxInFlight: maxInFlight,
			RequestTimeout: d.RequestTimeout.D(), BackoffInitial: d.BackoffInitial.D(), BackoffMax: d.BackoffMax.D(),
			AuthRetryInterval: d.AuthRetryInterval.D(), UserAgent: "hogrelay/bench", Logger: log,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		startTimer(tb)
		start := time.Now()
		go func() { done <- fw.Run(ctx) }()
		err = waitFor(10*time.Minute, func() bool {
			st, err := sp.Stats()
			return err == nil && st.PendingEvents == 0
		})
		wall += time.Since(start)
		stopTimer(tb)
		cancel()
		<-done
		if err != nil {
			tb.Fatalf("spool not drained: forwarder %+v", fw.Status())
		}
		if got := int(up.events.Load()); got < backlog {
			tb.Fatalf("spool drained but the upstream counted %d of %d events", got, backlog)
		}
		total += backlog
		most = max(most, up.most.Load())
		_ = sp.Close()
		up.Close()
	}
	rate := float64(total) / wall.Seconds()
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(rate, "events/s")
		b.ReportMetric(float64(most), "max-in-flight")
		return
	}
	tb.Logf("WAN drain, %v away: %.0f events/s, at most %d requests in flight", delay, rate, most)
}

// BenchmarkWANDrain: a backlog of 200,000 spooled events drained to an
// upstream that answers each /batch/ after 0, 20 or 100 ms; op = one drain.
// Target: >= 100,000 events/s at 100 ms. The strict case (max_in_flight =
// 1, one batch at a time as before adaptive concurrency) is the baseline;
// half and twice the default max_in_flight show what the default gains
// and what it leaves on the table.
func BenchmarkWANDrain(b *testing.B) {
	def := config.Default().Forwarder.MaxInFlight
	for _, delay := range []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond} {
		b.Run(fmt.Sprintf("delay=%dms", delay.Milliseconds()), func(b *testing.B) { runWANDrain(b, delay, wanBacklog, def) })
	}
	for _, n := range []int{1, def / 2, 2 * def} {
		b.Run(fmt.Sprintf("delay=100ms/max_in_flight=%d", n), func(b *testing.B) { runWANDrain(b, 100*time.Millisecond, wanBacklog, n) })
	}
}
