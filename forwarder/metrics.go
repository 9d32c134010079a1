package forwarder

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	requests     *prometheus.HistogramVec
	events       prometheus.Counter
	retries      prometheus.Counter
	deadLettered prometheus.Counter
	batchEvents  *prometheus.CounterVec
	inFlight     prometheus.Gauge
	limit        prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, l *limiter) *metrics {
	m := &metrics{
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hogrelay_forward_requests_in_flight",
			Help: "/batch/ requests to PostHog waiting for their answer now.",
		}),
		limit: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hogrelay_forward_concurrency_limit",
			Help: "The adaptive limit on /batch/ requests in flight (below 1: one request, paced); at most [forwarder] max_in_flight.",
		}, func() float64 { _, limit, _ := l.snapshot(); return limit }),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hogrelay_forward_request_duration_seconds",
			Help:    "Time of each /batch/ request to PostHog, by HTTP status (network_error when there was none).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 10),
		}, []string{"status"}),
		events: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hogrelay_forward_events_total",
			Help: "Events PostHog accepted (2xx).",
		}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hogrelay_forward_retries_total",
			Help: "Batches that failed with a retryable error (408, 429, 5xx, network) and were retried.",
		}),
		deadLettered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hogrelay_forward_dead_lettered_total",
			Help: "Events PostHog refused for good (400/413 alone) and moved to the dead-letter bucket.",
		}),
		batchEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogrelay_forward_batch_events_total",
			Help: "Events carried by /batch/ requests, by HTTP status (retries count again).",
		}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.events, m.retries, m.deadLettered, m.batchEvents, m.inFlight, m.limit)
	}
	return m
}

func (m *metrics) observe(status string, took time.Duration, events int) {
	m.requests.WithLabelValues(status).Observe(took.Seconds())
	m.batchEvents.WithLabelValues(status).Add(float64(events))
}
