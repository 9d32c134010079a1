package e2e

// `hogrelay status` and /hogrelay/v1/status through an outage and after it.

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

func TestOpsStatusDuringOutageAndAfterRecovery(t *testing.T) {
	up := newUpstream(t)
	up.SetFlagDefinitions(fakeposthog.SampleFlagDefinitions)
	opsPoisoned(up)
	// A long backoff keeps the forwarder visibly in backing_off; opsWake
	// ends it once the upstream is back.
	a := startAgent(t, up, `forwarder.backoff_initial = "4s"`, `forwarder.backoff_max = "8s"`)

	_, good := opsSeedDeadLetter(t, a, up, "status-good", 3)

	up.SetDefault(fakeposthog.Response{Status: 503})
	stuck := append(a.opsSend("status-stuck-a", 25, nil), a.opsSend("status-stuck-b", 25, nil)...)
	require.Eventually(t, func() bool {
		st := a.status()
		return st["forwarder"].(map[string]any)["state"] == "backing_off" && st["oldest_event_age_seconds"].(float64) > 0
	}, 20*time.Second, 20*time.Millisecond, "forwarder never showed backing_off with an aged spool")

	verOut, _, code := runIn(t, "", "version")
	require.Zero(t, code)
	version := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(verOut), "hogrelay"))
	require.NotEmpty(t, version)

	st := opsCLIJSON(t, a, "status", "--json")
	now := time.Now()
	t.Run("json", func(t *testing.T) {
		require.Equal(t, version, st["version"])
		require.GreaterOrEqual(t, st["uptime_seconds"].(float64), 1.0)
		require.WithinDuration(t, now.Add(-time.Duration(st["uptime_seconds"].(float64))*time.Second), opsTime(t, st["started_at"]), 5*time.Second)
		require.Equal(t, []string{"unix:" + a.Socket}, opsStrings(st["listeners"]))
		require.Equal(t, up.URL(), st["posthog_host"])
		require.Greater(t, st["oldest_event_age_seconds"].(float64), 0.0)
		require.NotContains(t, fmt.Sprint(st), projectKey, "the status carries no key")
		require.NotContains(t, fmt.Sprint(st), personalKey, "the status carries no key")

		sp := st["spool"].(map[string]any)
		require.EqualValues(t, len(stuck), sp["pending_events"])
		require.Greater(t, sp["pending_bytes"].(float64), float64(len(stuck)*50), "pending bytes are bytes, not events")
		require.EqualValues(t, 1, sp["dead_letter_events"])
		require.Greater(t, sp["dead_letter_bytes"].(float64), 0.0)
		require.Greater(t, sp["file_bytes"].(float64), 0.0)
		require.EqualValues(t, 2<<30, sp["max_bytes"])
		require.Equal(t, filepath.Join(a.dir, "data", "spool.db"), sp["path"])
		require.True(t, opsTime(t, sp["oldest_received_at"]).Before(now))

		fw := st["forwarder"].(map[string]any)
		require.Equal(t, "backing_off", fw["state"])
		errAt := opsTime(t, fw["last_error_at"])
		require.WithinDuration(t, now, errAt, 30*time.Second)
		require.True(t, opsTime(t, fw["until"]).After(errAt), "until is the end of the wait that followed the error")
		require.EqualValues(t, 503, fw["last_error_status"])
		require.NotEmpty(t, fw["last_error"])
		require.GreaterOrEqual(t, fw["retries"].(float64), 1.0)
		require.GreaterOrEqual(t, fw["consecutive_failures"].(float64), 1.0)
		require.EqualValues(t, 1, fw["dead_lettered"])
		require.EqualValues(t, len(good), fw["events_forwarded"])
		require.NotEmpty(t, fw["last_success"])

		fl := st["flags"].(map[string]any)
		require.Equal(t, "network", fl["source"])
		require.EqualValues(t, 5, fl["flag_count"])
		require.WithinDuration(t, now, opsTime(t, fl["fetched_at"]), time.Minute)
		require.Equal(t, false, fl["quota_limited"])
		require.Equal(t, true, fl["polling_enabled"])
		require.GreaterOrEqual(t, fl["polls"].(float64), 1.0)
	})

	t.Run("table", func(t *testing.T) {
		var table string
		// The "until" part is shown only while the wait has not ended yet.
		require.Eventually(t, func() bool {
			out, _, code := a.cli("status")
			table = out
			return code == 0 && strings.Contains(out, "backing_off until ")
		}, 20*time.Second, 50*time.Millisecond, "status table never showed the backoff")
		rows := []struct {
			key  string
			want []string
		}{
			{"version", []string{version, "(up "}},
			{"listening", []string{"unix:" + a.Socket}},
			{"posthog", []string{up.URL()}},
			{"spool", []string{fmt.Sprintf("%d events,", len(stuck)), "file ", "bound 2.0 GiB"}},
			{"oldest event", []string{"s old"}},
			{"dead letters", []string{"1 events"}},
			{"forwarder", []string{"backing_off until "}},
			{"forwarded", []string{fmt.Sprintf("%d events in", len(good)), "retries)"}},
			{"last success", nil},
			{"last error", []string{" at "}},
			{"flags", []string{"5 definitions from network", " old"}},
		}
		for _, r := range rows {
			t.Run(r.key, func(t *testing.T) {
				v, ok := opsTableRow(table, r.key)
				require.True(t, ok, "no %q row in:\n%s", r.key, table)
				for _, w := range r.want {
					require.Contains(t, v, w, "row %q", r.key)
				}
			})
		}
	})

	up.SetDefault(fakeposthog.Response{})
	a.opsWake()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), stuck))
	require.Eventually(t, func() bool {
		st := a.status()
		return st["spool"].(map[string]any)["pending_events"] == 0.0 && st["forwarder"].(map[string]any)["state"] == "idle"
	}, 20*time.Second, 20*time.Millisecond, "the forwarder never went idle on an empty spool")

	t.Run("after recovery", func(t *testing.T) {
		st := opsCLIJSON(t, a, "status", "--json")
		fw := st["forwarder"].(map[string]any)
		require.EqualValues(t, len(good)+len(stuck), fw["events_forwarded"])
		require.Equal(t, "idle", fw["state"])
		require.Zero(t, st["oldest_event_age_seconds"])
		require.EqualValues(t, 0, fw["consecutive_failures"])
		require.True(t, opsTime(t, fw["last_success"]).After(opsTime(t, fw["last_error_at"])))
		require.EqualValues(t, 1, st["spool"].(map[string]any)["dead_letter_events"], "dead letters stay until an operator acts")

		out, _, code := a.cli("status")
		require.Zero(t, code)
		v, ok := opsTableRow(out, "forwarded")
		require.True(t, ok, out)
		require.Contains(t, v, fmt.Sprintf("%d events in", len(good)+len(stuck)))
		v, ok = opsTableRow(out, "forwarder")
		require.True(t, ok, out)
		require.Equal(t, "idle", strings.TrimSpace(v))
		_, ok = opsTableRow(out, "oldest event")
		require.False(t, ok, "no oldest-event row for an empty spool:\n%s", out)
	})
}
