package api

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hogrelay/hogrelay/internal/metricname"
)

// metrics are the HTTP surface's own (hogrelay_http_*): what producers sent
// and how it was answered. The spool, forwarder and flag metrics belong to
// those packages.
type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	// browserRefused counts TCP requests refused as browser-originated.
	browserRefused prometheus.Counter
	// budget is the decode budget, read once per scrape.
	budget                   *decodeBudget
	decodeBytes, decodeLimit *prometheus.Desc
}

func newMetrics(budget *decodeBudget) *metrics {
	name := func(n string) string { return prometheus.BuildFQName(metricname.Namespace, "http", n) }
	return &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("capture_requests_total"),
			Help: "Capture requests from producers, by endpoint and the HTTP status code answered.",
		}, []string{"endpoint", "code"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("captured_events_total"),
			Help: "Events stored in the spool (acknowledged to producers), by endpoint.",
		}, []string{"endpoint"}),
		browserRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("browser_requests_refused_total"),
			Help: "Requests on the TCP listener refused because a web page could have sent them (Host not loopback, Origin not allowed).",
		}),
		decodeBytes: prometheus.NewDesc(name("decode_bytes"), "Bytes of request bodies being read and decoded now, bounded by [ingest] max_decode_bytes.", nil, nil),
		decodeLimit: prometheus.NewDesc(name("decode_limit_bytes"), "The decode budget, [ingest] max_decode_bytes.", nil, nil),
		budget:      budget,
	}
}

// Collector returns the HTTP surface's metrics.
func (h *Handler) Collector() prometheus.Collector { return h.metrics }

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.requests.Describe(ch)
	m.events.Describe(ch)
	m.browserRefused.Describe(ch)
	ch <- m.decodeBytes
	ch <- m.decodeLimit
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.requests.Collect(ch)
	m.events.Collect(ch)
	m.browserRefused.Collect(ch)
	ch <- prometheus.MustNewConstMetric(m.decodeBytes, prometheus.GaugeValue, float64(m.budget.inUse()))
	ch <- prometheus.MustNewConstMetric(m.decodeLimit, prometheus.GaugeValue, float64(m.budget.size))
}

func (m *metrics) ingested(endpoint string, code, events int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	m.events.WithLabelValues(endpoint).Add(float64(events))
}

func (m *metrics) refused(endpoint string, status int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}
