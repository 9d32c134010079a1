package bench

import (
	"net/http"
	"testing"
)

// ingestCase is one shape of durable ingest: producers POSTing requests of
// eventsPerReq events each to path.
type ingestCase struct {
	producers    int
	eventsPerReq int
	// live: forward to a lean local upstream during the run; otherwise the
	// upstream is unreachable and the forwarder stays in backoff.
	live bool
}

// bodyVariants per producer: enough that distinct_ids vary request to
// request, few enough that building them stays out of the measurement.
const bodyVariants = 16

func (c ingestCase) path() string {
	if c.eventsPerReq == 1 {
		return "/i/v0/e/"
	}
	return "/batch/"
}

func (c ingestCase) bodies() [][]string {
	out := make([][]string, c.producers)
	for p := range out {
		out[p] = make([]string, bodyVariants)
		for v := range out[p] {
			if c.eventsPerReq == 1 {
				out[p][v] = singleBody(p, v)
			} else {
				out[p][v] = batchBody(p, v, c.eventsPerReq)
			}
		}
	}
	return out
}

// runIngest makes requests requests through a fresh agent and checks that
// every acknowledged event is in the spool (or already upstream).
func runIngest(tb testing.TB, c ingestCase, requests int) {
	tb.Helper()
	upstream := unreachableHost
	var lean *leanUpstream
	if c.live {
		lean = startLeanUpstream(tb)
		upstream = lean.URL
	}
	a := startAgent(tb, upstream)
	bodies := c.bodies()
	clients := make([]*http.Client, c.producers)
	for p := range clients {
		clients[p] = unixClient(a.Socket)
		tb.Cleanup(clients[p].CloseIdleConnections)
	}
	url := "http://hogrelay" + c.path()

	resetTimer(tb)
	lat, wall, err := produce(c.producers, requests, func(p, i int) error {
		return post(clients[p], url, bodies[p][i%bodyVariants])
	})
	stopTimer(tb)
	var fwdAtStop int64 // for the rate: what was forwarded within the timed window
	if lean != nil {
		fwdAtStop = lean.events.Load()
	}
	if err != nil {
		tb.Fatalf("ingest: %v (every request must get 200: a 2xx means fsynced)", err)
	}
	total := int64(requests * c.eventsPerReq)
	report(tb, "events/s", int(total), wall, lat)

	// Read the spool before the upstream's count: an event gone from the
	// spool was counted upstream before its 2xx, so pending-then-forwarded
	// can only overcount (a batch in flight), never undercount.
	pending := a.Status().Spool.PendingEvents
	var forwarded int64
	if lean != nil {
		forwarded = lean.events.Load()
	}
	if lean == nil {
		if pending != total {
			tb.Fatalf("spool holds %d pending events after %d were acknowledged", pending, total)
		}
		return
	}
	// Forwarded-and-not-yet-removed events are counted twice for a moment,
	// hence >=.
	if forwarded+pending < total {
		tb.Fatalf("%d events acknowledged but only %d pending + %d forwarded", total, pending, forwarded)
	}
	if b, ok := tb.(*testing.B); ok {
		b.ReportMetric(float64(fwdAtStop)/wall.Seconds(), "fwd-events/s")
	}
}

func benchIngest(b *testing.B, c ingestCase) {
	for _, live := range []bool{false, true} {
		c.live = live
		name := "upstream=unreachable"
		if live {
			name = "upstream=lean"
		}
		b.Run(name, func(b *testing.B) { runIngest(b, c, b.N) })
	}
}

// BenchmarkIngestBatch100x8: 8 producers, /batch/ of 100 events; op = one
// request. Target: >= 100,000 events/s with the forwarder paused.
func BenchmarkIngestBatch100x8(b *testing.B) {
	benchIngest(b, ingestCase{producers: 8, eventsPerReq: 100})
}

// BenchmarkIngestSingle64: 64 producers, one event per /i/v0/e/ request;
// op = one request. Target: >= 15,000 events/s with the forwarder paused.
func BenchmarkIngestSingle64(b *testing.B) {
	benchIngest(b, ingestCase{producers: 64, eventsPerReq: 1})
}
