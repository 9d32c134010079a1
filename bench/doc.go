// Package bench holds hogrelay's end-to-end benchmarks: the real agent on a
// real unix socket, a real bbolt spool fsynced on the real disk, and a local
// upstream. It has no code of its own; everything is in _test.go files and
// runs with `make bench`.
//
// What each benchmark measures (op is what -benchmem divides by):
//
//   - BenchmarkIngestBatch100x8: 8 producers POST /batch/ bodies of 100
//     ~500-byte events; op = one request. Two upstreams: "unreachable"
//     (connection refused, so the forwarder sits in backoff and the figure
//     is the ingest path alone) and "lean" (a local server that only gunzips
//     and counts, so the forwarder drains concurrently and competes for the
//     same cores, as it does in production).
//   - BenchmarkIngestSingle64: 64 producers, one event per request to
//     /i/v0/e/; op = one request; same two upstreams.
//   - BenchmarkForward: a pre-filled spool drained by forwarder.Run; op = one
//     event. Upstreams "lean" and "fakeposthog" (which JSON-decodes and
//     records every event, so it is the bottleneck, not hogrelay).
//   - BenchmarkWANDrain: a 200,000-event spooled backlog drained by the
//     forwarder (default settings) to an upstream that answers each /batch/
//     after 0, 20 or 100 ms; op = one drain; reports events/s and the most
//     requests the upstream saw in flight.
//   - BenchmarkFleetRecovery: 20 in-process agents, each holding 20,000
//     events spooled during a 30 s outage; PostHog then accepts 40
//     requests/s at 50 ms and answers 429 + Retry-After above; op = one
//     recovery; reports the time to each agent's first delivery (p50/p99),
//     drain time, drain/ideal and the share of requests refused.
//   - BenchmarkFlagsRoundTrip50: POST /flags/?v=2 with person_properties
//     against 50 locally evaluated definitions; op = one request.
//
// Every benchmark reports events/s (or req/s), p50-µs and p99-µs of
// per-request latency, and MB-heap (runtime.MemStats.HeapInuse after the
// run, for the whole process: agent, producers and upstream together).
// Speed is measured here and never asserted; TestBenchHarnessSmoke runs each
// body once at a tiny size so the harness cannot rot unnoticed.
//
// Run it as `make bench` does:
//
//	go test -run '^$' -bench . -benchmem -benchtime=2s -count=3 ./bench/ ./capture/ ./flags/eval/
//
// The spools live under $TMPDIR (b.TempDir): point it at the disk you mean
// to measure. On tmpfs fsync is free and the ingest figures mean nothing.
// Producers, agent and upstream share the machine's cores, so anything else
// running (a build, a fuzzer) shows up as stalls of hundreds of ms; compare
// runs with -count and benchstat, not single lines.
package bench
