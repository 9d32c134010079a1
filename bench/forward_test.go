package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/hogrelay/hogrelay/capture"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/forwarder"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testlog"
	"github.com/hogrelay/hogrelay/spool"
)

// storedChunks decodes distinct 100-event /batch/ bodies with the real
// capture code, so the spool holds exactly what the agent would store
// (normalised, v7 uuid, corrected timestamp). Chunks are reused round-robin
// when the spool needs more events than this.
func storedChunks(tb testing.TB, n int) [][][]byte {
	tb.Helper()
	out := make([][][]byte, n)
	for i := range out {
		b, err := capture.Decode(capture.Request{
			Method: http.MethodPost, Path: "/batch/", Header: http.Header{}, Query: url.Values{},
			Body: []byte(batchBody(1000+i, 0, 100)), Now: time.Now(),
		}, capture.Options{DefaultToken: benchToken})
		if err != nil || len(b.Events) != 100 {
			tb.Fatalf("decoding a bench batch: %v (%d events)", err, len(b.Events))
		}
		out[i] = b.Events
	}
	return out
}

// fillSpool appends events in requests of at most 100, from 8 goroutines so
// they share group commits as real producers would.
func fillSpool(tb testing.TB, sp *spool.Spool, chunks [][][]byte, events int) {
	tb.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	reqs := (events + 99) / 100
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := w; r < reqs; r += 8 {
				evs := chunks[r%len(chunks)]
				if last := events - r*100; last < 100 {
					evs = evs[:last]
				}
				if err := sp.Append(context.Background(), benchToken, false, evs); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatalf("filling the spool: %v", err)
	}
}

// runForward pre-fills a spool with events events, then times forwarder.Run
// draining it to upstream ("lean" or "fakeposthog").
func runForward(tb testing.TB, upstream string, events int) {
	tb.Helper()
	var host string
	var counted func() int
	switch upstream {
	case "lean":
		u := startLeanUpstream(tb)
		host, counted = u.URL, func() int { return int(u.events.Load()) }
	case "fakeposthog":
		fake, err := fakeposthog.New(fakeposthog.Options{})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = fake.Close() })
		host, counted = fake.URL(), func() int { return len(fake.Events()) }
	default:
		tb.Fatalf("unknown upstream %q", upstream)
	}

	// Warnings only: per-batch debug lines would be part of what is timed.
	log := testlog.New(tb).Level(zerolog.WarnLevel)
	sp, err := spool.Open(spool.Options{Path: filepath.Join(tb.TempDir(), "spool.db"), Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = sp.Close() })
	fillSpool(tb, sp, storedChunks(tb, 64), events)

	// The agent's own mapping of config.Default(), except: no compaction
	// after the drain (that is not forwarding), and the timing client.
	d := config.Default().Forwarder
	rec := &latencyRecorder{}
	fw := forwarder.New(sp, forwarder.Options{
		Host: host, BatchMaxEvents: d.BatchMaxEvents, BatchMaxBytes: int(d.BatchMaxBytes),
		RequestTimeout: d.RequestTimeout.D(), BackoffInitial: d.BackoffInitial.D(), BackoffMax: d.BackoffMax.D(),
		AuthRetryInterval: d.AuthRetryInterval.D(), UserAgent: "hogrelay/bench", Logger: log,
		HTTPClient: &http.Client{Transport: timedTransport{rec: rec, next: &http.Transport{
			MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second, DisableCompression: true,
		}}},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)

	resetTimer(tb)
	start := time.Now()
	go func() { done <- fw.Run(ctx) }()
	err = waitFor(10*time.Minute, func() bool {
		st, err := sp.Stats()
		return err == nil && st.PendingEvents == 0
	})
	wall := time.Since(start)
	stopTimer(tb)
	cancel()
	if rerr := <-done; rerr != nil {
		tb.Fatalf("forwarder.Run: %v", rerr)
	}
	if err != nil {
		st, _ := sp.Stats()
		tb.Fatalf("spool not drained: %d events still pending; forwarder %+v", st.PendingEvents, fw.Status())
	}
	if got := counted(); got < events {
		tb.Fatalf("spool drained but the upstream counted %d of %d events", got, events)
	}
	if s := fw.Status(); s.Retries != 0 || s.DeadLettered != 0 {
		tb.Fatalf("forwarder retried %d and dead-lettered %d batches against a healthy upstream", s.Retries, s.DeadLettered)
	}
	report(tb, "events/s", events, wall, rec.take())
}

// BenchmarkForward drains a pre-filled spool; op = one event. Target:
// >= 100,000 events/s. "lean" measures hogrelay; "fakeposthog" adds an
// upstream that JSON-decodes and keeps every event on the same two cores.
func BenchmarkForward(b *testing.B) {
	for _, up := range []string{"lean", "fakeposthog"} {
		b.Run(fmt.Sprintf("upstream=%s", up), func(b *testing.B) { runForward(b, up, b.N) })
	}
}
