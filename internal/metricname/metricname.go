// Package metricname holds what every hogrelay metric shares: its namespace.
//
// Each package defines the metrics of the state it owns (spool, forwarder,
// flags, api's HTTP surface) in a prometheus.Collector of its own, as
// node_exporter's collectors do, and names them with
// prometheus.BuildFQName(metricname.Namespace, subsystem, name). The agent
// registers those collectors; README.md lists every metric and a test
// checks the list against the registry.
package metricname

// Namespace prefixes every metric: hogrelay_<subsystem>_<name>.
const Namespace = "hogrelay"
