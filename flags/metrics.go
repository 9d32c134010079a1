package flags

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hogrelay/hogrelay/internal/metricname"
)

// metrics counts the answers the service gives, whoever asks (the SDK
// /flags endpoints, the admin evaluate endpoint, capture's
// send_feature_flags), with one rule: one evaluation per flag value given,
// one failure per question that could not be answered in full.
type metrics struct {
	evaluations *prometheus.CounterVec
	failures    prometheus.Counter

	definitions, fetched, quotaLimited, polls, pollErrors              *prometheus.Desc
	answerEntries, answerBytes, answerOfflineHits, answerOfflineMisses *prometheus.Desc
}

func newMetrics() *metrics {
	name := func(n string) string { return prometheus.BuildFQName(metricname.Namespace, "flags", n) }
	d := func(n, help string) *prometheus.Desc { return prometheus.NewDesc(name(n), help, nil, nil) }
	return &metrics{
		evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: name("evaluations_total"),
			Help: "Flag values given, one per flag per answer, by where the value came from (local evaluation, PostHog's /flags, or cached: PostHog's last answer, given because PostHog could not be reached).",
		}, []string{"source"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: name("evaluation_failures_total"),
			Help: "Questions (one flag, or all flags for a subject) that could not be answered in full: no definitions, inconclusive and remote not allowed or failed, quota limited.",
		}),
		definitions:   d("definitions", "Flag definitions loaded."),
		fetched:       d("definitions_fetched_timestamp_seconds", "Unix time PostHog last confirmed the flag definitions in use, or the time saved in the cache file when they came from disk (0 when none)."),
		quotaLimited:  d("quota_limited", "1 while PostHog reports the flags quota exceeded (flags are not evaluated)."),
		polls:         d("polls_total", "Definition polls made."),
		pollErrors:    d("poll_errors_total", "Definition polls that failed."),
		answerEntries: d("answer_cache_entries", "Evaluation contexts whose last PostHog /flags answer is kept for offline use."),
		answerBytes:   d("answer_cache_bytes", "Bytes of the kept /flags answers (the file may be larger; see status)."),
		answerOfflineHits: d("answer_cache_offline_hits_total",
			"Questions PostHog could not be asked that the answer cache answered."),
		answerOfflineMisses: d("answer_cache_offline_misses_total",
			"Questions PostHog could not be asked that the answer cache could not answer (a context never seen, or too old)."),
	}
}

func (m *metrics) countFlag(src Source, err error) {
	if err != nil {
		m.failures.Inc()
		return
	}
	m.evaluations.WithLabelValues(string(src)).Inc()
}

func (m *metrics) countAll(all All, err error) {
	n := map[Source]int{}
	for k := range all.Flags {
		n[all.Source[k]]++
	}
	for src, c := range n {
		m.evaluations.WithLabelValues(string(src)).Add(float64(c))
	}
	if err != nil || all.ErrorsWhileComputing || all.QuotaLimited {
		m.failures.Inc()
	}
}

// Collector returns the flag cache's metrics (hogrelay_flags_*); the
// definitions and polling figures come from one Status snapshot per scrape.
func (s *Service) Collector() prometheus.Collector { return (*collector)(s) }

type collector Service

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	m := c.metrics
	m.evaluations.Describe(ch)
	m.failures.Describe(ch)
	for _, d := range []*prometheus.Desc{m.definitions, m.fetched, m.quotaLimited, m.polls, m.pollErrors,
		m.answerEntries, m.answerBytes, m.answerOfflineHits, m.answerOfflineMisses} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.metrics
	m.evaluations.Collect(ch)
	m.failures.Collect(ch)
	st := (*Service)(c).Status()
	fetched, quota := 0.0, 0.0
	if !st.FetchedAt.IsZero() {
		fetched = float64(st.FetchedAt.UnixNano()) / 1e9
	}
	if st.QuotaLimited {
		quota = 1
	}
	ch <- prometheus.MustNewConstMetric(m.definitions, prometheus.GaugeValue, float64(st.FlagCount))
	ch <- prometheus.MustNewConstMetric(m.fetched, prometheus.GaugeValue, fetched)
	ch <- prometheus.MustNewConstMetric(m.quotaLimited, prometheus.GaugeValue, quota)
	ch <- prometheus.MustNewConstMetric(m.polls, prometheus.CounterValue, float64(st.Polls))
	ch <- prometheus.MustNewConstMetric(m.pollErrors, prometheus.CounterValue, float64(st.PollErrors))
	var cs AnswerCacheStats
	if st.AnswerCache != nil {
		cs = *st.AnswerCache
	}
	ch <- prometheus.MustNewConstMetric(m.answerEntries, prometheus.GaugeValue, float64(cs.Entries))
	ch <- prometheus.MustNewConstMetric(m.answerBytes, prometheus.GaugeValue, float64(cs.Bytes))
	ch <- prometheus.MustNewConstMetric(m.answerOfflineHits, prometheus.CounterValue, float64(cs.Hits))
	ch <- prometheus.MustNewConstMetric(m.answerOfflineMisses, prometheus.CounterValue, float64(cs.Misses))
}
