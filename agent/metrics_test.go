package agent

import (
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/require"
)

// described lists every hogrelay metric the agent's collectors describe,
// with its variable labels: also the vectors that have no series yet.
func described(a *Agent) map[string][]string {
	ch := make(chan *prometheus.Desc)
	go func() {
		for _, c := range []prometheus.Collector{buildInfo(a.version), a.spool.Collector(), a.forwarder.Collector(), a.flags.Collector(), a.handler.Collector()} {
			c.Describe(ch)
		}
		close(ch)
	}()
	re := regexp.MustCompile(`fqName: "([^"]+)".*constLabels: \{([^}]*)\}, variableLabels: \{([^}]*)\}`)
	out := map[string][]string{}
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		var labels []string
		for _, kv := range strings.Split(m[2], ",") {
			if k, _, ok := strings.Cut(kv, "="); ok {
				labels = append(labels, k)
			}
		}
		for _, l := range strings.Split(m[3], ",") {
			if l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		out[m[1]] = labels
	}
	return out
}

// readmeMetrics parses the README's metric table: name -> labels.
func readmeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	row := regexp.MustCompile("^\\| `(hogrelay_[a-z_]+)` \\| [a-z]+ \\|([^|]*)\\|")
	label := regexp.MustCompile("`([a-z_]+)`")
	out := map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		m := row.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		labels := []string{}
		for _, l := range label.FindAllStringSubmatch(m[2], -1) {
			labels = append(labels, l[1])
		}
		slices.Sort(labels)
		out[m[1]] = labels
	}
	return out
}

func TestREADMEMetricTableMatchesTheRegistry(t *testing.T) {
	up := newUpstream(t)
	a, _ := newAgent(t, testConfig(t, up))
	defer a.closeListeners()
	defer a.spool.Close()
	got := described(a)
	for name, labels := range got {
		if labels == nil {
			got[name] = []string{}
		}
	}
	require.Equal(t, readmeMetrics(t), got, "README.md's metric table (name and labels) must list exactly what the agent exports")
}

// A scrape after some traffic: every family passes promlint, and each one
// the README lists is in the scrape (the vectors have series by then).
func TestMetricsPassPromlint(t *testing.T) {
	up := newUpstream(t)
	a, _ := newAgent(t, testConfig(t, up))
	stop := runAgent(t, a)
	delivered(t, up, postBatch(t, a, 2))
	require.Eventually(t, func() bool { st, err := a.spool.Stats(); return err == nil && st.PendingEvents == 0 }, 10*time.Second, 5*time.Millisecond)
	rec := httptest.NewRecorder()
	a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/flags/?v=2", strings.NewReader(`{"token":"phc_agenttest","distinct_id":"d"}`)))
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	mfs, err := a.registry.Gather()
	require.NoError(t, err)
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	require.NoError(t, err)
	require.Empty(t, problems)

	scraped := map[string]bool{}
	for _, mf := range mfs {
		scraped[mf.GetName()] = true
	}
	for name := range readmeMetrics(t) {
		if name == "hogrelay_flags_evaluations_total" || name == "hogrelay_flags_evaluation_failures_total" {
			continue // an empty project gives no flag values and no failure
		}
		require.True(t, scraped[name], "%s is not in a scrape", name)
	}
	require.NoError(t, stop())
}
