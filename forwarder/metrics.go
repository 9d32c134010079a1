package forwarder

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hogrelay/hogrelay/internal/metricname"
)

const subsystem = "forwarder"

// states are the values of hogrelay_forwarder_state's state label, every
// one reported on each scrape (1 for the current state, 0 for the others),
// so a query never depends on a series appearing.
var states = []State{StateIdle, StateSending, StateBackingOff, StateAuthFailed, StateStopped}

type metrics struct {
	requests     *prometheus.HistogramVec
	events       prometheus.Counter
	retries      prometheus.Counter
	deadLettered prometheus.Counter
	batchEvents  *prometheus.CounterVec

	state, lastSuccess, inFlight, limit *prometheus.Desc
}

func newMetrics() *metrics {
	name := func(n string) string { return prometheus.BuildFQName(metricname.Namespace, subsystem, n) }
	return &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    name("request_duration_seconds"),
			Help:    "Time of each /batch/ request to PostHog, by HTTP status code (network_error when there was no response).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"code"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("events_total"),
			Help: "Events PostHog accepted (2xx).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("retries_total"),
			Help: "Batches that failed with a retryable error (408, 429, 5xx, network) and were retried.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("dead_lettered_events_total"),
			Help: "Events PostHog refused for good (400/413 alone) and moved to the dead-letter bucket.",
		}),
		batchEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("batch_events_total"),
			Help: "Events carried by /batch/ requests, by HTTP status code (retries count again).",
		}, []string{"code"}),
		state: prometheus.NewDesc(name("state"),
			"What the forwarder is doing: 1 for the current state (idle, sending, backing_off, auth_failed, stopped), 0 for the others. Routine backoff is backing_off, not down.",
			[]string{"state"}, nil),
		lastSuccess: prometheus.NewDesc(name("last_success_timestamp_seconds"),
			"Unix time of the last batch PostHog accepted (0 before the first).", nil, nil),
		inFlight: prometheus.NewDesc(name("requests_in_flight"),
			"/batch/ requests being sent now (a request being retried counts until it is done).", nil, nil),
		limit: prometheus.NewDesc(name("concurrency_limit"),
			"The adaptive limit on /batch/ requests in flight, at most [forwarder] max_in_flight (below 1: one request, paced).", nil, nil),
	}
}

func (m *metrics) observe(code string, took time.Duration, events int) {
	m.requests.WithLabelValues(code).Observe(took.Seconds())
	m.batchEvents.WithLabelValues(code).Add(float64(events))
}

// Collector returns the forwarder's metrics (hogrelay_forwarder_*). The
// state and last success come from one Status snapshot per scrape.
func (f *Forwarder) Collector() prometheus.Collector { return (*collector)(f) }

type collector Forwarder

func (c *collector) counters() []prometheus.Collector {
	m := c.metrics
	return []prometheus.Collector{m.requests, m.events, m.retries, m.deadLettered, m.batchEvents}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.counters() {
		m.Describe(ch)
	}
	ch <- c.metrics.state
	ch <- c.metrics.lastSuccess
	ch <- c.metrics.inFlight
	ch <- c.metrics.limit
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.counters() {
		m.Collect(ch)
	}
	st := (*Forwarder)(c).snapshot() // no EmptyIn: the metrics do not show it
	for _, s := range states {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.metrics.state, prometheus.GaugeValue, v, string(s))
	}
	last := 0.0
	if !st.LastSuccess.IsZero() {
		last = float64(st.LastSuccess.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(c.metrics.lastSuccess, prometheus.GaugeValue, last)
	ch <- prometheus.MustNewConstMetric(c.metrics.inFlight, prometheus.GaugeValue, float64(st.InFlight))
	ch <- prometheus.MustNewConstMetric(c.metrics.limit, prometheus.GaugeValue, st.Limit)
}
