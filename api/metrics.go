package api

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hogrelay/hogrelay/spool"
)

type metrics struct {
	requests *prometheus.CounterVec
	events   *prometheus.CounterVec
	flagEval *prometheus.CounterVec
	// browserRefused counts TCP requests refused as browser-originated.
	browserRefused prometheus.Counter
}

func newMetrics(reg *prometheus.Registry, sp *spool.Spool) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogrelay_ingest_requests_total",
			Help: "Capture requests from producers, by endpoint and result (ok, or the HTTP status refused with).",
		}, []string{"endpoint", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogrelay_ingest_events_total",
			Help: "Events stored in the spool (acknowledged to producers), by endpoint.",
		}, []string{"endpoint"}),
		flagEval: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hogrelay_flag_evaluations_total",
			Help: "Flag answers given, by how they were found (local, remote, none).",
		}, []string{"source"}),
		browserRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hogrelay_tcp_browser_requests_refused_total",
			Help: "Requests on the TCP listener refused because a web page could have sent them (Host not loopback, Origin not allowed).",
		}),
	}
	if reg == nil {
		return m
	}
	reg.MustRegister(m.requests, m.events, m.flagEval, m.browserRefused)
	if sp != nil {
		stat := func(f func(spool.Stats) float64) func() float64 {
			return func() float64 {
				st, err := sp.Stats()
				if err != nil {
					return 0
				}
				return f(st)
			}
		}
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_spool_events", Help: "Events waiting in the spool to be forwarded."},
				stat(func(s spool.Stats) float64 { return float64(s.PendingEvents) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_spool_bytes", Help: "Bytes of events waiting in the spool."},
				stat(func(s spool.Stats) float64 { return float64(s.PendingBytes) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_spool_max_bytes", Help: "The spool's size bound ([spool] max_bytes)."},
				stat(func(s spool.Stats) float64 { return float64(s.MaxBytes) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_spool_file_bytes", Help: "Size of the spool file on disk."},
				stat(func(s spool.Stats) float64 { return float64(s.FileBytes) })),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_spool_oldest_event_age_seconds", Help: "Age of the oldest event waiting (0 when empty). Alert when this grows."},
				stat(func(s spool.Stats) float64 {
					if s.Oldest.IsZero() {
						return 0
					}
					return time.Since(s.Oldest).Seconds()
				})),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_spool_dead_letter_events", Help: "Events PostHog refused for good, kept in the dead-letter bucket."},
				stat(func(s spool.Stats) float64 { return float64(s.DeadEvents) })),
			prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "hogrelay_spool_dropped_events_total", Help: "Events deleted by the drop_oldest policy since start."},
				stat(func(s spool.Stats) float64 { return float64(s.DroppedEvents) })),
		)
	}
	return m
}

func (m *metrics) ingested(endpoint string, events int) {
	m.requests.WithLabelValues(endpoint, "ok").Inc()
	m.events.WithLabelValues(endpoint).Add(float64(events))
}

func (m *metrics) refused(endpoint string, status int) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status)).Inc()
}

func (m *metrics) registerBudget(reg *prometheus.Registry, b *decodeBudget) {
	if reg == nil {
		return
	}
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_ingest_decode_bytes", Help: "Bytes of request bodies being read and decoded now (bounded by [ingest] max_decode_bytes)."},
			func() float64 { return float64(b.inUse()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hogrelay_ingest_decode_max_bytes", Help: "The decode budget ([ingest] max_decode_bytes)."},
			func() float64 { return float64(b.size) }),
	)
}
