package e2e

// /metrics through an outage and its recovery.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

func TestOpsMetricsThroughOutageAndRecovery(t *testing.T) {
	up := newUpstream(t)
	up.SetFlagDefinitions(fakeposthog.SampleFlagDefinitions)
	opsPoisoned(up)
	a := startAgent(t, up)

	_, good := opsSeedDeadLetter(t, a, up, "metrics-good", 4) // 1 /batch request
	up.SetDefault(fakeposthog.Response{Status: 503})
	var stuck []string
	for i := 0; i < 3; i++ { // 3 more /batch requests
		stuck = append(stuck, a.opsSend(fmt.Sprintf("metrics-stuck-%d", i), 10, nil)...)
	}
	// Refused requests are counted by status, not as ok.
	require.Equal(t, 400, a.do(http.MethodPost, "/batch/", []byte(`{"api_key":"phc_x","batch":[{"event":`), nil).status)
	// Another endpoint gets its own label.
	require.Equal(t, 200, a.postJSON("/e/", map[string]any{"api_key": projectKey, "event": "single", "distinct_id": "d",
		"uuid": "0193e5d0-0000-7000-8000-000000000099"}).status)
	stuck = append(stuck, "0193e5d0-0000-7000-8000-000000000099")

	require.Eventually(t, func() bool {
		m := a.opsMetrics()
		retries, _ := opsMetric(m, "hogrelay_forwarder_retries_total")
		oldest, _ := opsMetric(m, "hogrelay_spool_oldest_event_timestamp_seconds")
		return retries > 0 && oldest > 0
	}, 20*time.Second, 50*time.Millisecond, "no retries or no aged spool in /metrics")

	during := a.opsMetrics()
	t.Run("during the outage", func(t *testing.T) {
		cases := []struct {
			name   string
			labels []string
			check  func(t *testing.T, v float64)
		}{
			{"hogrelay_http_capture_requests_total", []string{"endpoint=/batch", "code=200"}, func(t *testing.T, v float64) { require.EqualValues(t, 4, v) }},
			{"hogrelay_http_capture_requests_total", []string{"endpoint=/batch", "code=400"}, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_http_capture_requests_total", []string{"endpoint=/e", "code=200"}, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_http_captured_events_total", []string{"endpoint=/batch"}, func(t *testing.T, v float64) { require.EqualValues(t, 34, v) }},
			{"hogrelay_http_captured_events_total", []string{"endpoint=/e"}, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_spool_events", nil, func(t *testing.T, v float64) { require.EqualValues(t, len(stuck), v) }},
			{"hogrelay_spool_bytes", nil, func(t *testing.T, v float64) { require.Greater(t, v, float64(len(stuck)*50)) }},
			{"hogrelay_spool_oldest_event_timestamp_seconds", nil, func(t *testing.T, v float64) { require.Greater(t, v, 0.0) }},
			{"hogrelay_spool_dead_letter_events", nil, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_forwarder_request_duration_seconds_count", []string{"code=503"}, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_forwarder_request_duration_seconds_count", []string{"code=400"}, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_forwarder_request_duration_seconds_bucket", []string{"code=503", "le=+Inf"}, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_forwarder_retries_total", nil, func(t *testing.T, v float64) { require.Greater(t, v, 0.0) }},
			{"hogrelay_forwarder_dead_lettered_events_total", nil, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_forwarder_events_total", nil, func(t *testing.T, v float64) { require.EqualValues(t, len(good), v) }},
			{"hogrelay_forwarder_state", []string{"state=backing_off"}, nil}, // 0 or 1 depending on the instant: every state is always present
			{"hogrelay_flags_definitions_fetched_timestamp_seconds", nil, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 0.0) }},
			{"hogrelay_flags_polls_total", nil, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_flags_definitions", nil, func(t *testing.T, v float64) { require.EqualValues(t, 5, v) }},
		}
		for _, c := range cases {
			t.Run(c.name+"{"+strings.Join(c.labels, ",")+"}", func(t *testing.T) {
				v, ok := opsMetric(during, c.name, c.labels...)
				require.True(t, ok, "metric missing")
				if c.check != nil {
					c.check(t, v)
				}
			})
		}
		_, ok := opsMetric(during, "hogrelay_forwarder_request_duration_seconds_count", "code=200")
		require.True(t, ok, "the first, successful round was observed with status 200")
	})

	up.SetDefault(fakeposthog.Response{})
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), stuck))
	require.Eventually(t, func() bool { return a.opsMustMetric("hogrelay_spool_events") == 0 }, 20*time.Second, 20*time.Millisecond)

	after := a.opsMetrics()
	t.Run("after recovery", func(t *testing.T) {
		ok200, ok := opsMetric(after, "hogrelay_forwarder_request_duration_seconds_count", "code=200")
		require.True(t, ok)
		before200, _ := opsMetric(during, "hogrelay_forwarder_request_duration_seconds_count", "code=200")
		require.Greater(t, ok200, before200, "the recovery's requests are observed with status 200")
		n503, _ := opsMetric(after, "hogrelay_forwarder_request_duration_seconds_count", "code=503")
		require.GreaterOrEqual(t, n503, 1.0)
		fwd, _ := opsMetric(after, "hogrelay_forwarder_events_total")
		require.EqualValues(t, len(good)+len(stuck), fwd)
		oldest, _ := opsMetric(after, "hogrelay_spool_oldest_event_timestamp_seconds")
		require.Zero(t, oldest, "0 when the spool is empty")
		idle, _ := opsMetric(after, "hogrelay_forwarder_state", "state=idle")
		sending, _ := opsMetric(after, "hogrelay_forwarder_state", "state=sending")
		require.EqualValues(t, 1, idle+sending, "idle or sending once PostHog is back")
		last, _ := opsMetric(after, "hogrelay_forwarder_last_success_timestamp_seconds")
		require.InDelta(t, float64(time.Now().Unix()), last, 60)
		req, _ := opsMetric(after, "hogrelay_http_capture_requests_total", "endpoint=/batch", "code=200")
		require.EqualValues(t, 4, req, "counters do not move without traffic")
	})
}
