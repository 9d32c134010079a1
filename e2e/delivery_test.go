package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// The headline promise: events acknowledged during an outage survive two
// kill -9s and arrive once the network is back, in order (max_in_flight = 1
// keeps strict spool order; with more, neighbouring batches may land out of
// order), with their original timestamps, and without sent_at.
func TestOutageAndKill9LoseNoAcknowledgedEvent(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, "forwarder.max_in_flight = 1")

	var all []string
	sent := map[string]map[string]any{}
	send := func(round string) {
		for b := 0; b < 5; b++ {
			evs, ids := mkEvents(round+"-"+string(rune('a'+b)), 40)
			ans := a.postJSON("/batch/", batchBody(evs))
			require.Equal(t, 200, ans.status, ans.body)
			require.JSONEq(t, `{"status":1}`, ans.body)
			all = append(all, ids...)
			for i, id := range ids {
				sent[id] = evs[i]
			}
		}
	}
	send("one")
	a.kill9()
	a.start()
	send("two")
	a.kill9()
	a.start()
	require.EqualValues(t, len(all), a.spoolStat("pending_events"))

	up.SetDefault(fakeposthog.Response{}) // the network is back
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), all))

	seen := map[string]bool{}
	var order []string
	for _, ev := range up.Events() {
		want := sent[ev.UUID]
		require.NotNil(t, want, "unexpected event %s", ev.UUID)
		require.Equal(t, want["timestamp"], ev.Timestamp, "timestamp must be the original one")
		require.Equal(t, want["distinct_id"], ev.DistinctID)
		if !seen[ev.UUID] {
			seen[ev.UUID] = true
			order = append(order, ev.UUID)
		}
	}
	require.Equal(t, all, order, "first arrivals keep the producer's order")
	for _, r := range up.Requests() {
		require.False(t, r.SentAt, "the agent must never send sent_at")
	}
}

func TestSIGTERMFlushesWithinShutdownTimeoutAndKeepsTheRest(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 500})
	a := startAgent(t, up)
	evs, ids := mkEvents("term", 50)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, a.stop(), "a clean stop exits 0")
	require.Contains(t, a.Logs.String(), `"events_left_in_spool":50`)
	_, err := os.Stat(a.Socket)
	require.True(t, os.IsNotExist(err), "the socket is removed on a clean stop")

	up.SetDefault(fakeposthog.Response{})
	a.start()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}

func TestBatchOverPostHogsLimitIsSplitOn413(t *testing.T) {
	up := newUpstream(t)
	up.SetMaxBatchEvents(7)
	a := startAgent(t, up)
	evs, ids := mkEvents("split", 95)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	require.Zero(t, a.spoolStat("dead_letter_events"))
	saw413 := false
	for _, r := range up.Requests() {
		saw413 = saw413 || r.Status == 413
	}
	require.True(t, saw413)
}

func TestPoisonEventIsDeadLetteredAndTheRestArrive(t *testing.T) {
	up := newUpstream(t)
	up.RejectEvent(func(e fakeposthog.Event) bool { return e.Properties["poison"] == true })
	a := startAgent(t, up)
	evs, ids := mkEvents("poison", 30)
	evs[4]["properties"].(map[string]any)["poison"] = true
	evs[21]["properties"].(map[string]any)["poison"] = true
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	var good []string
	for i, id := range ids {
		if i != 4 && i != 21 {
			good = append(good, id)
		}
	}
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), good))
	require.Eventually(t, func() bool { return a.spoolStat("dead_letter_events") == 2 }, 10*time.Second, 20*time.Millisecond)

	out, _, code := a.cli("spool", "dead-letters", "list")
	require.Zero(t, code)
	require.Contains(t, out, ids[4])
	require.Contains(t, out, ids[21])
	require.Contains(t, out, "400")

	// Fixed upstream: re-queue, and they arrive too.
	up.RejectEvent(nil)
	out, _, code = a.cli("spool", "dead-letters", "requeue")
	require.Zero(t, code, out)
	require.Contains(t, out, `"requeued": 2`)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), []string{ids[4], ids[21]}))
}

func TestRetryAfterIsAFloor(t *testing.T) {
	up := newUpstream(t)
	up.Script(fakeposthog.Response{Status: 429, RetryAfter: "2"})
	a := startAgent(t, up)
	evs, ids := mkEvents("retryafter", 3)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	reqs := up.Requests()
	require.GreaterOrEqual(t, len(reqs), 2)
	require.Equal(t, 429, reqs[0].Status)
	// backoff_max is 500ms in these tests, so only Retry-After explains this gap.
	require.GreaterOrEqual(t, reqs[1].Time.Sub(reqs[0].Time), 2*time.Second)
}

func TestDroppedAndHungConnectionsAreRetried(t *testing.T) {
	up := newUpstream(t)
	up.Script(
		fakeposthog.Response{Drop: true},
		fakeposthog.Response{DropAfterAccept: true}, // PostHog took it, the answer was lost
		fakeposthog.Response{Hang: true},            // outlives request_timeout
		fakeposthog.Response{Delay: 300 * time.Millisecond, Status: 503},
		fakeposthog.Response{Delay: 300 * time.Millisecond}, // slow but within the timeout: accepted
	)
	a := startAgent(t, up, `forwarder.request_timeout = "1s"`)
	evs, ids := mkEvents("flaky", 10)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 10*time.Second, 20*time.Millisecond)
	// The lost answer means a repeat; PostHog drops it by uuid.
	for _, n := range up.UniqueUUIDs() {
		require.LessOrEqual(t, n, 2)
	}
}

func TestSpoolFullPolicies(t *testing.T) {
	big := strings.Repeat("x", 50_000)
	fill := func(a *agentProc, n int) (acked []string, refused []answer) {
		for i := 0; i < n; i++ {
			evs, ids := mkEvents("full"+string(rune('A'+i%26))+string(rune('a'+i/26)), 5)
			for _, e := range evs {
				e["properties"].(map[string]any)["blob"] = big
			}
			ans := a.postJSON("/batch/", batchBody(evs))
			if ans.status == 200 {
				acked = append(acked, ids...)
			} else {
				refused = append(refused, ans)
			}
		}
		return acked, refused
	}
	t.Run("reject", func(t *testing.T) {
		up := newUpstream(t)
		up.SetDefault(fakeposthog.Response{Status: 503})
		a := startAgent(t, up, `spool.max_bytes = "1MiB"`)
		acked, refused := fill(a, 8)
		require.NotEmpty(t, acked)
		require.NotEmpty(t, refused)
		require.Equal(t, 503, refused[0].status)
		require.Equal(t, "5", refused[0].header.Get("Retry-After"))
		require.Contains(t, refused[0].body, "spool is full")
		up.SetDefault(fakeposthog.Response{})
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), acked), "every acknowledged event still arrives")
	})
	t.Run("drop_oldest", func(t *testing.T) {
		up := newUpstream(t)
		up.SetDefault(fakeposthog.Response{Status: 503})
		a := startAgent(t, up, `spool.max_bytes = "1MiB"`, `spool.when_full = "drop_oldest"`)
		acked, refused := fill(a, 8)
		require.Empty(t, refused)
		require.Len(t, acked, 40)
		dropped := a.spoolStat("dropped_events")
		require.Greater(t, dropped, 0.0)
		require.Contains(t, a.Logs.String(), "dropped the oldest pending events")
		metrics := a.do(http.MethodGet, "/metrics", nil, nil).body
		require.Contains(t, metrics, "hogrelay_spool_dropped_events_total")
		up.SetDefault(fakeposthog.Response{})
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), acked[len(acked)-5:]), "the newest survive")
	})
}

func TestCorruptSpoolFileIsMovedAsideAndAgentStarts(t *testing.T) {
	up := newUpstream(t)
	// Seed a garbage spool where the agent will look, then start it.
	a := startAgent(t, up)
	require.NoError(t, a.stop())
	spoolPath := filepath.Join(a.dir, "data", "spool.db")
	require.NoError(t, os.WriteFile(spoolPath, bytes.Repeat([]byte("not a bbolt file "), 4096), 0o600))
	a.start()
	logs := a.Logs.String()
	require.Contains(t, logs, "spool file is damaged")
	require.Contains(t, logs, spoolPath)
	matches, _ := filepath.Glob(spoolPath + ".corrupt-*")
	require.Len(t, matches, 1)
	evs, ids := mkEvents("aftercorrupt", 3)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}

func TestStaleSocketIsReplacedLiveOneIsNotStolen(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	// A second agent with the same data dir finds the spool locked.
	r := run(t, "serve", "--config", a.ConfigPath)
	require.NotZero(t, r.code)
	require.Contains(t, r.stderr, "locked by another process")
	// One with its own data dir but the same socket must not steal it.
	other := writeConfig(t, t.TempDir(), a.Socket, up.URL())
	r = run(t, "serve", "--config", other)
	require.NotZero(t, r.code)
	require.Contains(t, r.stderr, "socket "+a.Socket+" is in use")
	require.Equal(t, 200, a.do(http.MethodGet, "/healthz", nil, nil).status, "the live agent keeps its socket")

	a.kill9() // leaves the socket file behind
	_, err := os.Stat(a.Socket)
	require.NoError(t, err)
	a.start()
	require.Equal(t, 200, a.do(http.MethodGet, "/healthz", nil, nil).status)
}

func TestGzipAndEveryCaptureRoute(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	var ids []string
	for i, path := range []string{"/batch", "/batch/", "/e", "/e/", "/i/v0/e/", "/capture/", "/track", "/engage/"} {
		evs, id := mkEvents("route"+path, 1)
		body, _ := json.Marshal(batchBody(evs))
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		hdr := map[string]string{}
		if i%2 == 0 {
			hdr["Content-Encoding"] = "gzip" // else sniffed by magic bytes
		}
		ans := a.do(http.MethodPost, path, buf.Bytes(), hdr)
		require.Equal(t, 200, ans.status, "%s: %s", path, ans.body)
		ids = append(ids, id...)
	}
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}

func TestClockSkewIsCorrectedFromSentAt(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	// The producer's clock is an hour behind: its event happened 5s before it sent.
	producerNow := time.Now().Add(-time.Hour).UTC()
	body := map[string]any{
		"api_key": projectKey, "sent_at": producerNow.Format(time.RFC3339Nano),
		"batch": []map[string]any{{"event": "skewed", "distinct_id": "d", "uuid": "01937e5d-0000-7000-8000-000000000001",
			"timestamp": producerNow.Add(-5 * time.Second).Format(time.RFC3339Nano)}},
	}
	require.Equal(t, 200, a.postJSON("/batch/", body).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), []string{"01937e5d-0000-7000-8000-000000000001"}))
	ts, err := time.Parse(time.RFC3339Nano, up.Events()[0].Timestamp)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(-5*time.Second), ts, 30*time.Second, "timestamp moved onto the server's clock")
}
