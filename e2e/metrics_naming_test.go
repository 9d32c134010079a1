package e2e

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// The real binary's /metrics, scraped during a routine outage: names pass
// promlint, each subsystem has one prefix, the build is labelled, and the
// forwarder reports backing_off as a state rather than "down".
func TestMetricsScrapeIsLintCleanAndBackoffIsAStateNotDown(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up)
	evs, _ := mkEvents("metrics-naming", 3)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.Eventually(t, func() bool {
		return a.status()["forwarder"].(map[string]any)["state"] == "backing_off"
	}, 20*time.Second, 20*time.Millisecond)

	ans := a.do(http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, 200, ans.status)
	problems, err := promlint.New(strings.NewReader(ans.body)).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)

	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(ans.body))
	require.NoError(t, err)
	prefix := regexp.MustCompile(`^hogrelay_(build_info$|spool_|forwarder_|flags_|http_)`)
	for name := range families {
		if strings.HasPrefix(name, "hogrelay_") {
			require.Regexp(t, prefix, name, "one prefix per subsystem")
		}
	}
	require.NotContains(t, families, "hogrelay_forwarder_up")
	require.NotContains(t, families, "hogrelay_forwarder_auth_failed")

	state := map[string]float64{}
	for _, m := range families["hogrelay_forwarder_state"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "state" {
				state[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	// The forwarder may be mid-retry at the scrape instant; either way it
	// is one state at a time, and never "auth_failed" or "stopped".
	require.Equal(t, 1.0, state["backing_off"]+state["sending"], "state: %v", state)
	require.Equal(t, 0.0, state["idle"]+state["auth_failed"]+state["stopped"], "state: %v", state)

	info := families["hogrelay_build_info"].GetMetric()
	require.Len(t, info, 1)
	require.Equal(t, 1.0, info[0].GetGauge().GetValue())
	labels := map[string]string{}
	for _, l := range info[0].GetLabel() {
		labels[l.GetName()] = l.GetValue()
	}
	require.NotEmpty(t, labels["version"])
	require.True(t, strings.HasPrefix(labels["goversion"], "go"), labels)
}
