package agent

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hogrelay/hogrelay/internal/metricname"
)

// registerMetrics gathers every package's collector into the registry
// /metrics serves. The agent defines only hogrelay_build_info: the rest is
// defined where its state lives.
func (a *Agent) registerMetrics() {
	a.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(a.version),
		a.spool.Collector(),
		a.forwarder.Collector(),
		a.flags.Collector(),
		a.handler.Collector(),
	)
}

// buildInfo is the constant 1 with the version as labels, so dashboards can
// join on it and alert on a fleet running mixed versions.
func buildInfo(version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        prometheus.BuildFQName(metricname.Namespace, "", "build_info"),
		Help:        "Always 1; the labels say which hogrelay build is running.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version()},
	})
	g.Set(1)
	return g
}
