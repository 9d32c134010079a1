package spool

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
)

func TestCollectorReportsStatsWithOneReadPerScrape(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), func(o *Options) { o.MaxBytes = 1 << 30 })
	before := time.Now()
	require.NoError(t, s.Append(context.Background(), "phc_t", false, evs(0, 3)))
	c := s.Collector()

	txBefore := s.db.Stats().TxN
	n := testutil.CollectAndCount(c)
	require.Equal(t, 7, n)
	require.Equal(t, 1, s.db.Stats().TxN-txBefore, "one scrape is one bbolt read transaction")

	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP hogrelay_spool_events Events waiting in the spool to be forwarded.
# TYPE hogrelay_spool_events gauge
hogrelay_spool_events 3
# HELP hogrelay_spool_max_bytes The spool's size bound ([spool] max_bytes).
# TYPE hogrelay_spool_max_bytes gauge
hogrelay_spool_max_bytes 1.073741824e+09
# HELP hogrelay_spool_dead_letter_events Events PostHog refused for good, kept in the dead-letter bucket.
# TYPE hogrelay_spool_dead_letter_events gauge
hogrelay_spool_dead_letter_events 0
`), "hogrelay_spool_events", "hogrelay_spool_max_bytes", "hogrelay_spool_dead_letter_events"))

	// The oldest event is a timestamp, not an age: it does not grow by itself.
	oldest := gathered(t, c, "hogrelay_spool_oldest_event_timestamp_seconds")
	require.InDelta(t, float64(before.Unix()), oldest, 5)
}

// gathered returns the value of the one unlabelled metric name that c reports.
func gathered(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	require.NoError(t, reg.Register(c))
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			require.Len(t, mf.GetMetric(), 1)
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("%s not reported", name)
	return 0
}
