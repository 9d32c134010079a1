package spool

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hogrelay/hogrelay/internal/metricname"
)

// collector reports the spool's state: one Stats call (one bbolt read
// transaction, one stat of the file) per scrape, however many metrics.
type collector struct {
	sp                                               *Spool
	events, bytes, maxBytes, fileBytes, oldest, dead *prometheus.Desc
	dropped                                          *prometheus.Desc
}

// Collector returns the spool's metrics (hogrelay_spool_*). A scrape during
// which Stats fails reports none of them rather than zeros that look real.
func (s *Spool) Collector() prometheus.Collector {
	d := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricname.Namespace, "spool", name), help, nil, nil)
	}
	return &collector{
		sp:        s,
		events:    d("events", "Events waiting in the spool to be forwarded."),
		bytes:     d("bytes", "Bytes of events waiting in the spool."),
		maxBytes:  d("max_bytes", "The spool's size bound ([spool] max_bytes)."),
		fileBytes: d("file_bytes", "Size of the spool file on disk."),
		oldest:    d("oldest_event_timestamp_seconds", "Unix time the oldest waiting event was received (0 when the spool is empty). Alert on time() minus this."),
		dead:      d("dead_letter_events", "Events PostHog refused for good, kept in the dead-letter bucket."),
		dropped:   d("dropped_events_total", "Events deleted by the drop_oldest policy since start."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.events, c.bytes, c.maxBytes, c.fileBytes, c.oldest, c.dead, c.dropped} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.sp.Stats()
	if err != nil {
		return
	}
	oldest := 0.0
	if !st.Oldest.IsZero() {
		oldest = float64(st.Oldest.UnixNano()) / 1e9
	}
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	gauge(c.events, float64(st.PendingEvents))
	gauge(c.bytes, float64(st.PendingBytes))
	gauge(c.maxBytes, float64(st.MaxBytes))
	gauge(c.fileBytes, float64(st.FileBytes))
	gauge(c.oldest, oldest)
	gauge(c.dead, float64(st.DeadEvents))
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(st.DroppedEvents))
}
