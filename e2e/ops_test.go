package e2e

// End-to-end tests of the operator tooling: `hogrelay status`, the health
// and metrics endpoints, the spool tools (live and on a stopped agent's
// file), SIGHUP reloads, `hogrelay dev` and the CLI's exit codes. Every
// helper here is prefixed with ops so it cannot collide with other files of
// the package.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testlog"
)

// ---------------------------------------------------------------- helpers

// opsCLIJSON runs a subcommand against the agent, requires exit 0 and
// decodes its JSON output.
func opsCLIJSON(t *testing.T, a *agentProc, args ...string) map[string]any {
	t.Helper()
	out, errOut, code := a.cli(args...)
	require.Zero(t, code, "hogrelay %v: %s", args, errOut)
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &m), "hogrelay %v printed %q", args, out)
	return m
}

// opsExport decodes `spool export` JSON lines and returns them with the
// events' uuids in order.
func opsExport(t *testing.T, out string) ([]map[string]any, []string) {
	t.Helper()
	var lines []map[string]any
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var l map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &l), "export line %q", sc.Text())
		lines = append(lines, l)
		if ev, ok := l["event"].(map[string]any); ok {
			ids = append(ids, fmt.Sprint(ev["uuid"]))
		}
	}
	require.NoError(t, sc.Err())
	return lines, ids
}

// opsLogLines decodes the agent's JSON log lines in s.
func opsLogLines(s string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(s, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func opsStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
	}
	return out
}

func opsTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	require.True(t, ok, "%v is not a time string", v)
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return tm
}

// opsSample is one line of the Prometheus text format.
type opsSample struct {
	name   string
	labels map[string]string
	value  float64
}

var opsSampleRE = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)(\s+\d+)?$`)

// opsParseMetrics is a small parser for the Prometheus text exposition
// format (enough for what client_golang writes).
func opsParseMetrics(t *testing.T, body string) []opsSample {
	t.Helper()
	var out []opsSample
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := opsSampleRE.FindStringSubmatch(line)
		require.NotNil(t, m, "not a Prometheus sample line: %q", line)
		v, err := strconv.ParseFloat(m[3], 64)
		require.NoError(t, err, "value of %q", line)
		s := opsSample{name: m[1], labels: map[string]string{}, value: v}
		if m[2] != "" {
			s.labels = opsParseLabels(t, m[2][1:len(m[2])-1])
		}
		out = append(out, s)
	}
	return out
}

func opsParseLabels(t *testing.T, s string) map[string]string {
	t.Helper()
	labels := map[string]string{}
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		require.True(t, eq > 0 && eq+1 < len(s) && s[eq+1] == '"', "bad labels %q", s)
		name := strings.TrimSpace(s[:eq])
		var val strings.Builder
		i := eq + 2
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
				switch s[i] {
				case 'n':
					val.WriteByte('\n')
				default:
					val.WriteByte(s[i])
				}
				continue
			}
			val.WriteByte(s[i])
		}
		require.Less(t, i, len(s), "unterminated label value in %q", s)
		labels[name] = val.String()
		s = strings.TrimLeft(s[i+1:], ", ")
	}
	return labels
}

// opsMetric returns the value of the sample called name whose labels
// include every "k=v" given; ok is false when there is none.
func opsMetric(samples []opsSample, name string, labels ...string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name {
			continue
		}
		for _, kv := range labels {
			k, v, _ := strings.Cut(kv, "=")
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func (a *agentProc) opsMetrics() []opsSample {
	a.t.Helper()
	ans := a.do(http.MethodGet, "/metrics", nil, nil)
	require.Equal(a.t, 200, ans.status, ans.body)
	require.True(a.t, strings.HasPrefix(ans.header.Get("Content-Type"), "text/plain"), "Content-Type %q", ans.header.Get("Content-Type"))
	return opsParseMetrics(a.t, ans.body)
}

func (a *agentProc) opsMustMetric(name string, labels ...string) float64 {
	a.t.Helper()
	v, ok := opsMetric(a.opsMetrics(), name, labels...)
	require.True(a.t, ok, "metric %s%v is missing", name, labels)
	return v
}

// opsWake cuts the forwarder's current backoff short (what the tests use
// after the upstream recovers, instead of waiting out a long backoff).
func (a *agentProc) opsWake() {
	a.t.Helper()
	require.Equal(a.t, 200, a.do(http.MethodPost, "/hogrelay/v1/forwarder/retry", nil, nil).status)
}

func (a *agentProc) opsSend(prefix string, n int, mutate func(i int, ev map[string]any)) []string {
	a.t.Helper()
	evs, ids := mkEvents(prefix, n)
	if mutate != nil {
		for i, ev := range evs {
			mutate(i, ev)
		}
	}
	ans := a.postJSON("/batch/", batchBody(evs))
	require.Equal(a.t, 200, ans.status, ans.body)
	return ids
}

// opsSighup sends SIGHUP to the running agent.
func (a *agentProc) opsSighup() {
	a.t.Helper()
	require.NoError(a.t, a.Signal(syscall.SIGHUP))
}

// opsPoisoned makes the upstream refuse (400) events with properties.poison.
func opsPoisoned(up *fakeposthog.Server) {
	up.RejectEvent(func(e fakeposthog.Event) bool { return e.Properties["poison"] == true })
}

func opsPoison(i int, ev map[string]any) {
	if i == 0 {
		ev["properties"].(map[string]any)["poison"] = true
	}
}

// opsSeedDeadLetter sends n events of which the first is poison, waits
// until the rest arrived and the poison one is dead-lettered, and returns
// the poison uuid and the good ones.
func opsSeedDeadLetter(t *testing.T, a *agentProc, up *fakeposthog.Server, prefix string, n int) (string, []string) {
	t.Helper()
	ids := a.opsSend(prefix, n, opsPoison)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids[1:]))
	require.Eventually(t, func() bool { return a.spoolStat("dead_letter_events") >= 1 }, 20*time.Second, 20*time.Millisecond)
	return ids[0], ids[1:]
}

// opsTableRow finds the value of a `hogrelay status` table row by its key.
func opsTableRow(table, key string) (string, bool) {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(key) + `\s{2,}(.*)$`)
	m := re.FindStringSubmatch(table)
	if m == nil {
		return "", false
	}
	return m[1], true
}

// ---------------------------------------------------------------- status

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
		require.Equal(t, []string{"unix:" + a.socket}, opsStrings(st["listeners"]))
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
			{"listening", []string{"unix:" + a.socket}},
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

// ---------------------------------------------------------------- health

func TestOpsHealthAndReadinessOnSocketAndTCP(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `listen.http = "127.0.0.1:0"`)

	listeners := opsStrings(a.status()["listeners"])
	require.Len(t, listeners, 2)
	require.Equal(t, "unix:"+a.socket, listeners[0])
	require.True(t, strings.HasPrefix(listeners[1], "tcp:127.0.0.1:"), "listeners %v", listeners)
	addr := strings.TrimPrefix(listeners[1], "tcp:")
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.NotEqual(t, "0", port, "port 0 must be resolved to the bound port")

	tcp := &http.Client{Timeout: 10 * time.Second}
	get := map[string]func(path string) (int, string){
		"socket": func(path string) (int, string) {
			ans := a.do(http.MethodGet, path, nil, nil)
			return ans.status, ans.body
		},
		"tcp": func(path string) (int, string) {
			resp, err := tcp.Get("http://" + addr + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		},
	}
	cases := []struct {
		listener, path string
		status         int
		body           string
	}{
		{"socket", "/healthz", 200, "ok"},
		{"socket", "/readyz", 200, "ready"},
		{"tcp", "/healthz", 200, "ok"},
		{"tcp", "/readyz", 200, "ready"},
		{"socket", "/metrics", 200, "hogrelay_spool_events"},
		{"tcp", "/metrics", 403, "not served on the TCP listener"},
	}
	for _, c := range cases {
		t.Run(c.listener+c.path, func(t *testing.T) {
			status, body := get[c.listener](c.path)
			require.Equal(t, c.status, status, body)
			require.Contains(t, body, c.body)
		})
	}

	// The table lists both listeners too.
	out, _, code := a.cli("status")
	require.Zero(t, code)
	require.Contains(t, out, "unix:"+a.socket)
	require.Contains(t, out, listeners[1])

	// Events taken on TCP are spooled and forwarded like the socket's.
	evs, ids := mkEvents("tcp-ingest", 3)
	body, _ := json.Marshal(batchBody(evs))
	resp, err := tcp.Post("http://"+addr+"/batch/", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}

// ---------------------------------------------------------------- metrics

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
		retries, _ := opsMetric(m, "hogrelay_forward_retries_total")
		age, _ := opsMetric(m, "hogrelay_spool_oldest_event_age_seconds")
		return retries > 0 && age > 0
	}, 20*time.Second, 50*time.Millisecond, "no retries or no aged spool in /metrics")

	during := a.opsMetrics()
	t.Run("during the outage", func(t *testing.T) {
		cases := []struct {
			name   string
			labels []string
			check  func(t *testing.T, v float64)
		}{
			{"hogrelay_ingest_requests_total", []string{"endpoint=/batch", "result=ok"}, func(t *testing.T, v float64) { require.EqualValues(t, 4, v) }},
			{"hogrelay_ingest_requests_total", []string{"endpoint=/batch", "result=400"}, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_ingest_requests_total", []string{"endpoint=/e", "result=ok"}, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_ingest_events_total", []string{"endpoint=/batch"}, func(t *testing.T, v float64) { require.EqualValues(t, 34, v) }},
			{"hogrelay_ingest_events_total", []string{"endpoint=/e"}, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_spool_events", nil, func(t *testing.T, v float64) { require.EqualValues(t, len(stuck), v) }},
			{"hogrelay_spool_bytes", nil, func(t *testing.T, v float64) { require.Greater(t, v, float64(len(stuck)*50)) }},
			{"hogrelay_spool_oldest_event_age_seconds", nil, func(t *testing.T, v float64) { require.Greater(t, v, 0.0) }},
			{"hogrelay_spool_dead_letter_events", nil, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_forward_request_duration_seconds_count", []string{"status=503"}, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_forward_request_duration_seconds_count", []string{"status=400"}, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_forward_request_duration_seconds_bucket", []string{"status=503", "le=+Inf"}, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 1.0) }},
			{"hogrelay_forward_retries_total", nil, func(t *testing.T, v float64) { require.Greater(t, v, 0.0) }},
			{"hogrelay_forward_dead_lettered_total", nil, func(t *testing.T, v float64) { require.EqualValues(t, 1, v) }},
			{"hogrelay_forward_events_total", nil, func(t *testing.T, v float64) { require.EqualValues(t, len(good), v) }},
			{"hogrelay_forwarder_up", nil, nil}, // 0 or 1 depending on the instant: only present
			{"hogrelay_flags_cache_age_seconds", nil, func(t *testing.T, v float64) { require.GreaterOrEqual(t, v, 0.0) }},
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
		_, ok := opsMetric(during, "hogrelay_forward_request_duration_seconds_count", "status=200")
		require.True(t, ok, "the first, successful round was observed with status 200")
	})

	up.SetDefault(fakeposthog.Response{})
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), stuck))
	require.Eventually(t, func() bool { return a.opsMustMetric("hogrelay_spool_events") == 0 }, 20*time.Second, 20*time.Millisecond)

	after := a.opsMetrics()
	t.Run("after recovery", func(t *testing.T) {
		ok200, ok := opsMetric(after, "hogrelay_forward_request_duration_seconds_count", "status=200")
		require.True(t, ok)
		before200, _ := opsMetric(during, "hogrelay_forward_request_duration_seconds_count", "status=200")
		require.Greater(t, ok200, before200, "the recovery's requests are observed with status 200")
		n503, _ := opsMetric(after, "hogrelay_forward_request_duration_seconds_count", "status=503")
		require.GreaterOrEqual(t, n503, 1.0)
		fwd, _ := opsMetric(after, "hogrelay_forward_events_total")
		require.EqualValues(t, len(good)+len(stuck), fwd)
		age, _ := opsMetric(after, "hogrelay_spool_oldest_event_age_seconds")
		require.Zero(t, age)
		up1, _ := opsMetric(after, "hogrelay_forwarder_up")
		require.EqualValues(t, 1, up1)
		last, _ := opsMetric(after, "hogrelay_forwarder_last_success_timestamp_seconds")
		require.InDelta(t, float64(time.Now().Unix()), last, 60)
		req, _ := opsMetric(after, "hogrelay_ingest_requests_total", "endpoint=/batch", "result=ok")
		require.EqualValues(t, 4, req, "counters do not move without traffic")
	})
}

// ---------------------------------------------------------------- spool tools, live

func TestOpsSpoolToolsAgainstLiveAgent(t *testing.T) {
	up := newUpstream(t)
	opsPoisoned(up)
	a := startAgent(t, up)

	// Two poison events become dead letters; then an outage holds a backlog.
	p1, _ := opsSeedDeadLetter(t, a, up, "live-dl-1", 3)
	p2, _ := opsSeedDeadLetter(t, a, up, "live-dl-2", 3)
	require.Eventually(t, func() bool { return a.spoolStat("dead_letter_events") == 2 }, 20*time.Second, 20*time.Millisecond)
	up.SetDefault(fakeposthog.Response{Status: 503})
	blob := strings.Repeat("b", 40_000)
	var stuck []string
	for i := 0; i < 40; i++ { // ~8 MB of backlog, so compaction has pages to give back
		stuck = append(stuck, a.opsSend(fmt.Sprintf("live-stuck-%02d", i), 5, func(_ int, ev map[string]any) {
			ev["properties"].(map[string]any)["blob"] = blob
		})...)
	}

	t.Run("stats", func(t *testing.T) {
		st := opsCLIJSON(t, a, "spool", "stats")
		require.EqualValues(t, len(stuck), st["pending_events"])
		require.Greater(t, st["pending_bytes"].(float64), float64(len(stuck)*len(blob)))
		require.EqualValues(t, 2, st["dead_letter_events"])
		require.Equal(t, filepath.Join(a.dir, "data", "spool.db"), st["path"])
		require.NotEmpty(t, st["oldest_received_at"])
	})
	t.Run("export", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "export")
		require.Zero(t, code, errOut)
		lines, ids := opsExport(t, out)
		require.Equal(t, stuck, ids, "every pending event, in spool order")
		for _, l := range lines {
			require.NotZero(t, l["seq"])
			require.NotEmpty(t, l["received_at"])
			require.Nil(t, l["dead_letter_reason"])
		}
		require.NotContains(t, out, projectKey, "keys never appear in tool output")
	})
	t.Run("export --dead-letters", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "export", "--dead-letters")
		require.Zero(t, code, errOut)
		lines, ids := opsExport(t, out)
		require.ElementsMatch(t, []string{p1, p2}, ids)
		for _, l := range lines {
			require.Contains(t, l["dead_letter_reason"], "400")
		}
	})
	t.Run("dead-letters list", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "dead-letters", "list")
		require.Zero(t, code, errOut)
		var list []map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &list), out)
		require.Len(t, list, 2)
		var ids []string
		for _, d := range list {
			ids = append(ids, fmt.Sprint(d["event"].(map[string]any)["uuid"]))
			require.Contains(t, d["reason"], "400")
		}
		require.ElementsMatch(t, []string{p1, p2}, ids)
	})
	t.Run("dead-letters requeue", func(t *testing.T) {
		out := opsCLIJSON(t, a, "spool", "dead-letters", "requeue")
		require.EqualValues(t, 2, out["requeued"])
		st := opsCLIJSON(t, a, "spool", "stats")
		require.EqualValues(t, len(stuck)+2, st["pending_events"])
		require.EqualValues(t, 0, st["dead_letter_events"])
	})

	// The upstream is back but still refuses the poison: the backlog
	// drains and the two come back as dead letters.
	up.SetDefault(fakeposthog.Response{})
	a.opsWake()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), stuck))
	require.Eventually(t, func() bool {
		return a.spoolStat("pending_events") == 0 && a.spoolStat("dead_letter_events") == 2
	}, 30*time.Second, 20*time.Millisecond)

	t.Run("dead-letters drop", func(t *testing.T) {
		out := opsCLIJSON(t, a, "spool", "dead-letters", "drop")
		require.EqualValues(t, 2, out["dropped"])
		st := opsCLIJSON(t, a, "spool", "stats")
		require.EqualValues(t, 0, st["dead_letter_events"])
		require.EqualValues(t, 0, st["dead_letter_bytes"])
		out2, _, code := a.cli("spool", "export", "--dead-letters")
		require.Zero(t, code)
		require.Empty(t, strings.TrimSpace(out2))
		require.Contains(t, a.logs.String(), "dead letters dropped by operator request")
	})
	t.Run("compact", func(t *testing.T) {
		before := opsCLIJSON(t, a, "spool", "stats")["file_bytes"].(float64)
		out := opsCLIJSON(t, a, "spool", "compact")
		require.EqualValues(t, before, out["before_bytes"])
		require.Less(t, out["after_bytes"].(float64), out["before_bytes"].(float64), "a drained spool's file shrinks")
		after := opsCLIJSON(t, a, "spool", "stats")["file_bytes"].(float64)
		require.Less(t, after, before)
		require.Less(t, after, float64(len(stuck)*len(blob)), "the drained backlog's pages are given back")
	})
	// The agent goes on working on the compacted file.
	ids := a.opsSend("live-after-compact", 3, nil)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}

// ---------------------------------------------------------------- spool tools, stopped agent

func TestOpsSpoolToolsOnStoppedAgentsFile(t *testing.T) {
	for _, how := range []string{"SIGTERM", "kill -9"} {
		t.Run(how, func(t *testing.T) {
			up := newUpstream(t)
			opsPoisoned(up)
			a := startAgent(t, up)
			poison, _ := opsSeedDeadLetter(t, a, up, "file-dl-"+how, 3)
			up.SetDefault(fakeposthog.Response{Status: 503})
			stuck := a.opsSend("file-stuck-"+how, 20, nil)
			spoolPath := filepath.Join(a.dir, "data", "spool.db")
			if how == "SIGTERM" {
				require.NoError(t, a.stop())
				_, err := os.Stat(a.socket)
				require.True(t, os.IsNotExist(err), "no socket after a clean stop")
			} else {
				a.kill9()
				_, err := os.Stat(a.socket)
				require.NoError(t, err, "kill -9 leaves a stale socket")
			}

			st := opsCLIJSON(t, a, "spool", "stats")
			require.EqualValues(t, len(stuck), st["pending_events"])
			require.EqualValues(t, 1, st["dead_letter_events"])
			require.Equal(t, spoolPath, st["path"])

			// --file names the file explicitly, without the config.
			out, errOut, code := runIn(t, "", "spool", "stats", "--file", spoolPath)
			require.Zero(t, code, errOut)
			var st2 map[string]any
			require.NoError(t, json.Unmarshal([]byte(out), &st2))
			require.EqualValues(t, len(stuck), st2["pending_events"])

			out, errOut, code = a.cli("spool", "export")
			require.Zero(t, code, errOut)
			_, ids := opsExport(t, out)
			require.Equal(t, stuck, ids)
			require.NotContains(t, out, projectKey)

			out, errOut, code = a.cli("spool", "export", "--dead-letters")
			require.Zero(t, code, errOut)
			lines, ids := opsExport(t, out)
			require.Equal(t, []string{poison}, ids)
			require.Contains(t, lines[0]["dead_letter_reason"], "400")

			out, errOut, code = a.cli("spool", "dead-letters", "list")
			require.Zero(t, code, errOut)
			require.Contains(t, out, poison)

			req := opsCLIJSON(t, a, "spool", "dead-letters", "requeue")
			require.EqualValues(t, 1, req["requeued"])
			st = opsCLIJSON(t, a, "spool", "stats")
			require.EqualValues(t, len(stuck)+1, st["pending_events"])
			require.EqualValues(t, 0, st["dead_letter_events"])

			cmp := opsCLIJSON(t, a, "spool", "compact")
			require.Greater(t, cmp["before_bytes"].(float64), 0.0)
			require.Greater(t, cmp["after_bytes"].(float64), 0.0)
			require.LessOrEqual(t, cmp["after_bytes"].(float64), cmp["before_bytes"].(float64))
			// Nothing was lost by the tools.
			_, ids = opsExport(t, func() string { o, _, _ := a.cli("spool", "export"); return o }())
			require.ElementsMatch(t, append(append([]string{}, stuck...), poison), ids)

			// The next start sends everything, the requeued event included.
			up.RejectEvent(nil)
			up.SetDefault(fakeposthog.Response{})
			a.start()
			require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), append(stuck, poison)))
		})
	}
}

func TestOpsSpoolFileToolsRefuseWhileTheAgentRunsWithoutSocket(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up)
	a.opsSend("locked", 5, nil)
	require.NoError(t, os.Remove(a.socket))
	require.NoError(t, os.Remove(a.adminSocket)) // admin commands use this one

	for _, args := range [][]string{
		{"spool", "stats"},
		{"spool", "export"},
		{"spool", "dead-letters", "list"},
		{"spool", "dead-letters", "requeue"},
		{"spool", "compact"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := a.cli(args...)
			require.NotZero(t, code, out)
			require.Contains(t, errOut, "locked")
			require.Contains(t, errOut, filepath.Join(a.dir, "data", "spool.db"), "the message names the file")
			require.Contains(t, errOut, "socket did not answer")
		})
	}
	require.True(t, a.Running(), "the agent keeps running")
	// ...and keeps its events: stop it and read the file.
	require.NoError(t, a.stop())
	st := opsCLIJSON(t, a, "spool", "stats")
	require.EqualValues(t, 5, st["pending_events"])
}

// ---------------------------------------------------------------- SIGHUP

func TestOpsSIGHUPAppliesLiveSettingsAndNamesRestartOnes(t *testing.T) {
	up := newUpstream(t)
	other := newUpstream(t)
	a := startAgent(t, up, `forwarder.batch_max_events = 100`)

	ids := a.opsSend("hup-before", 10, nil)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	reqsBefore := len(up.Requests())
	require.Equal(t, 10, up.Requests()[reqsBefore-1].Events, "one request of 10 under batch_max_events = 100")

	logFrom := len(a.logs.String())
	writeConfig(t, a.dir, a.socket, other.URL(), `forwarder.batch_max_events = 3`, `listen.socket_mode = "0600"`)
	a.opsSighup()
	var reload map[string]any
	require.Eventually(t, func() bool {
		for _, l := range opsLogLines(a.logs.String()[logFrom:]) {
			if l["message"] == "configuration reloaded" {
				reload = l
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no \"configuration reloaded\" log line")
	require.Equal(t, []string{"[forwarder]"}, opsStrings(reload["applied"]))
	require.ElementsMatch(t, []string{"[posthog]", "[listen]"}, opsStrings(reload["needs_restart"]))
	require.Equal(t, a.cfgPath, reload["config"])

	ids = a.opsSend("hup-after", 10, nil)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids), "[posthog] host needs a restart: events still go to the old host")
	total := 0
	for _, r := range up.Requests()[reqsBefore:] {
		require.LessOrEqual(t, r.Events, 3, "the new batch_max_events is used")
		if r.Accepted {
			total += r.Events
		}
	}
	require.Equal(t, 10, total)
	require.Empty(t, other.Requests(), "nothing goes to the new host before a restart")
	fi, err := os.Stat(a.socket)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o660), fi.Mode().Perm(), "socket_mode needs a restart")
	require.Equal(t, 200, a.do(http.MethodGet, "/healthz", nil, nil).status)
}

// A reload that raises the level to warn must still say what it did: the
// "configuration reloaded" line is logged at info after the new level is
// set, so it is swallowed (see the report).
func TestOpsSIGHUPLogLevelDebugToWarn(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `forwarder.batch_max_events = 100`)

	// probe makes the agent log one debug line (a refused request) and then
	// one warn line (dropping the empty dead-letter bucket), and returns the
	// log lines in between; the pipe keeps their order.
	probe := func() []map[string]any {
		from := len(a.logs.String())
		require.Equal(t, 400, a.do(http.MethodPost, "/batch/", []byte(`{"api_key":"phc_x","batch":[{"event":`), nil).status)
		require.Equal(t, 200, a.do(http.MethodPost, "/hogrelay/v1/spool/dead-letters/drop", nil, nil).status)
		var lines []map[string]any
		require.Eventually(t, func() bool {
			lines = opsLogLines(a.logs.String()[from:])
			for _, l := range lines {
				if l["message"] == "dead letters dropped by operator request" {
					return true
				}
			}
			return false
		}, 10*time.Second, 20*time.Millisecond)
		return lines
	}
	levels := func(lines []map[string]any) []string {
		var out []string
		for _, l := range lines {
			out = append(out, fmt.Sprint(l["level"]))
		}
		return out
	}
	require.Contains(t, levels(probe()), "debug", "debug lines appear at level debug")

	logFrom := len(a.logs.String())
	writeConfig(t, a.dir, a.socket, up.URL(), `log.level = "warn"`, `forwarder.batch_max_events = 4`)
	a.opsSighup()
	// The level is set before the forwarder options, so a batch of the new
	// size proves both were applied.
	applied := false
	for i := 0; i < 50 && !applied; i++ {
		ids := a.opsSend(fmt.Sprintf("hup-level-%d", i), 8, nil)
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
		reqs := up.Requests()
		applied = reqs[len(reqs)-1].Events <= 4
		if !applied {
			time.Sleep(100 * time.Millisecond)
		}
	}
	require.True(t, applied, "the new batch_max_events was never used")

	lines := probe()
	require.NotContains(t, levels(lines), "debug", "no debug lines after the reload to warn")
	require.NotContains(t, levels(lines), "info")

	require.Contains(t, a.logs.String()[logFrom:], "configuration reloaded",
		"BUG (agent/agent.go Agent.Reload): the reload summary is logged at info after the level was raised to warn, so the operator never sees what was applied")
}

func TestOpsSIGHUPWithBrokenConfigIsRefusedAndAgentKeepsRunning(t *testing.T) {
	cases := []struct {
		name    string
		write   func(a *agentProc)
		mention []string
	}{
		{"value out of range", func(a *agentProc) {
			writeConfig(t, a.dir, a.socket, a.up.URL(), `forwarder.batch_max_events = 0`)
		}, []string{"[forwarder] batch_max_events", "out of range"}},
		{"unknown key", func(a *agentProc) {
			writeConfig(t, a.dir, a.socket, a.up.URL(), `forwarder.batch_max_evnts = 5`)
		}, []string{"unknown key forwarder.batch_max_evnts"}},
		{"bad level", func(a *agentProc) {
			writeConfig(t, a.dir, a.socket, a.up.URL(), `log.level = "loud"`)
		}, []string{"[log] level", `\"loud\"`}},
		{"not TOML", func(a *agentProc) {
			require.NoError(t, writeFile(a.cfgPath, "[forwarder\nbatch_max_events = 5\n"))
		}, nil},
		{"file removed", func(a *agentProc) {
			require.NoError(t, os.Remove(a.cfgPath))
		}, []string{"no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t)
			a := startAgent(t, up, `forwarder.batch_max_events = 2`)
			logFrom := len(a.logs.String())
			c.write(a)
			a.opsSighup()
			var refused string
			require.Eventually(t, func() bool {
				for _, l := range strings.Split(a.logs.String()[logFrom:], "\n") {
					if strings.Contains(l, "configuration reload refused") {
						refused = l
						return true
					}
				}
				return false
			}, 10*time.Second, 20*time.Millisecond, "no refusal logged")
			require.Contains(t, refused, `"level":"error"`)
			require.Contains(t, refused, a.cfgPath, "the refusal names the file")
			for _, m := range c.mention {
				require.Contains(t, refused, m)
			}
			require.NotContains(t, a.logs.String()[logFrom:], "configuration reloaded")

			// Still running, on the old configuration.
			require.True(t, a.Running())
			require.Equal(t, 200, a.do(http.MethodGet, "/readyz", nil, nil).status)
			ids := a.opsSend("hup-broken", 6, nil)
			require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
			for _, r := range up.Requests() {
				require.LessOrEqual(t, r.Events, 2, "the old batch_max_events still applies")
			}
		})
	}
}

// After a reload that changes [posthog] host (needs a restart), status must
// keep reporting the host events actually go to, and a second reload must
// still say the change needs a restart.
func TestOpsSIGHUPStatusKeepsReportingTheRunningHost(t *testing.T) {
	up := newUpstream(t)
	other := newUpstream(t)
	a := startAgent(t, up)
	writeConfig(t, a.dir, a.socket, other.URL())
	reloads := func() []map[string]any {
		var out []map[string]any
		for _, l := range opsLogLines(a.logs.String()) {
			if l["message"] == "configuration reloaded" {
				out = append(out, l)
			}
		}
		return out
	}
	for i := 1; i <= 2; i++ {
		a.opsSighup()
		require.Eventually(t, func() bool { return len(reloads()) == i }, 10*time.Second, 20*time.Millisecond)
	}
	ids := a.opsSend("hup-host", 2, nil)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids), "events still go to the old host")
	require.Empty(t, other.Requests())
	require.Equal(t, []string{"[posthog]"}, opsStrings(reloads()[0]["needs_restart"]))

	assert.Equal(t, []string{"[posthog]"}, opsStrings(reloads()[1]["needs_restart"]),
		"BUG (agent/agent.go Agent.Reload): a second SIGHUP no longer says the unapplied [posthog] change needs a restart")
	assert.Equal(t, up.URL(), a.status()["posthog_host"],
		"BUG (agent/agent.go Agent.Reload): status reports the new [posthog] host although the forwarder still sends to the old one until a restart")
}

// ---------------------------------------------------------------- dev

func TestOpsDevModeBannerCommandsWorkAndCtrlCExitsCleanly(t *testing.T) {
	dir, err := os.MkdirTemp("", "hrdev")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })

	cmd := exec.Command(binary, "dev", "--http", "", "--socket", "d.sock")
	cmd.Dir = dir
	stdout := &testlog.Buffer{}
	stderr := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", stdout.String(), tail(stderr.String(), 40))
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops everything.") },
		60*time.Second, 20*time.Millisecond, "dev mode never printed its banner")
	banner := stdout.String()

	field := func(label string) string {
		m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(label) + `:\s+(\S+)`).FindStringSubmatch(banner)
		require.NotNil(t, m, "no %q in the banner:\n%s", label, banner)
		return m[1]
	}
	require.Equal(t, "d.sock", field("socket"))
	require.Equal(t, "-", field("http"), "--http \"\" means no TCP listener")
	require.True(t, strings.HasPrefix(field("local PostHog"), "http://127.0.0.1:"))
	dataDir := field("data dir")
	_, err = os.Stat(dataDir)
	require.NoError(t, err)
	sock := filepath.Join(dir, "d.sock")

	received := func() int { return strings.Count(stdout.String(), "received 1 event(s)") }
	waitReceived := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool { return received() >= n }, 30*time.Second, 20*time.Millisecond,
			"the embedded upstream did not print %d \"received 1 event(s)\" lines", n)
	}

	var lines []string
	for _, l := range strings.Split(banner, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	find := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("no line starting %q in the banner:\n%s", prefix, banner)
		return -1
	}

	t.Run("curl", func(t *testing.T) {
		i := find("curl --unix-socket ")
		f := strings.Fields(lines[i])
		require.Equal(t, "d.sock", f[2])
		require.Equal(t, "http://localhost/batch/", f[3])
		require.Contains(t, lines[i], "-H 'Content-Type: application/json'")
		d := lines[i+1]
		require.True(t, strings.HasPrefix(d, "-d '") && strings.HasSuffix(d, "'"), "curl's -d line: %q", d)
		body := d[len("-d '") : len(d)-1]
		require.True(t, json.Valid([]byte(body)), body)

		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var dl net.Dialer
			return dl.DialContext(ctx, "unix", filepath.Join(dir, f[2]))
		}}}
		resp, err := c.Post(f[3], "application/json", strings.NewReader(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(b))
		require.JSONEq(t, `{"status":1}`, string(b))
		waitReceived(1)
	})
	t.Run("capture", func(t *testing.T) {
		f := strings.Fields(lines[find(binary+" capture ")])
		require.Equal(t, binary, f[0], "the banner names the running binary")
		out, errOut, code := runIn(t, dir, f[1:]...)
		require.Zero(t, code, errOut)
		require.Regexp(t, `^[0-9a-f-]{36}\s*$`, out, "capture prints the event's uuid")
		waitReceived(2)
	})
	t.Run("flags get", func(t *testing.T) {
		f := strings.Fields(lines[find(binary+" flags get ")])
		out, errOut, code := runIn(t, dir, f[1:]...)
		require.Zero(t, code, errOut)
		require.Contains(t, []string{"control", "red", "green"}, strings.TrimSpace(out), "a variant of the sample flag")
		waitReceived(3) // its $feature_flag_called event
	})
	require.Regexp(t, `\[local posthog\] /batch/? 200: received 1 event\(s\)`, stdout.String())

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		require.NoError(t, err, "dev exits 0 on Ctrl-C; stderr:\n%s", tail(stderr.String(), 20))
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not exit within 30s of SIGINT")
	}
	_, err = os.Stat(sock)
	require.True(t, os.IsNotExist(err), "the socket is removed")
	_, err = os.Stat(dataDir)
	require.True(t, os.IsNotExist(err), "the temporary data dir is removed")
}

// ---------------------------------------------------------------- exit codes

func TestOpsExitCodes(t *testing.T) {
	up := newUpstream(t)
	up.SetFlagDefinitions(fakeposthog.SampleFlagDefinitions)
	a := startAgent(t, up)
	require.Eventually(t, func() bool {
		fl, _ := a.status()["flags"].(map[string]any)
		return fl != nil && fl["flag_count"] == 5.0
	}, 20*time.Second, 20*time.Millisecond, "flag definitions never loaded")

	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string
	}{
		{"enabled: matching person property", []string{"flags", "enabled", "internal-tools", "--distinct-id", "u1", "--person-property", "email=ann@example.com"}, 0, ""},
		{"enabled: other person property", []string{"flags", "enabled", "internal-tools", "--distinct-id", "u1", "--person-property", "email=ann@elsewhere.org"}, 1, ""},
		{"enabled: a variant counts as on", []string{"flags", "enabled", "checkout-button", "--distinct-id", "u1"}, 0, ""},
		{"enabled: unknown flag is off", []string{"flags", "enabled", "no-such-flag", "--distinct-id", "u1", "--local-only"}, 1, ""},
		{"get prints the value", []string{"flags", "get", "internal-tools", "--distinct-id", "u1", "--person-property", "email=ann@example.com"}, 0, "true"},
		{"status", []string{"status"}, 0, "version"},
		{"check-config", []string{"check-config"}, 0, "is valid"},
		{"flags needs a subcommand", []string{"flags"}, 1, ""},
		{"enabled needs --distinct-id", []string{"flags", "enabled", "internal-tools"}, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := a.cli(c.args...)
			require.Equal(t, c.code, code, "stdout %q stderr %q", out, errOut)
			if c.stdout != "" {
				require.Contains(t, out, c.stdout)
			}
		})
	}

	t.Run("unknown command", func(t *testing.T) {
		_, errOut, code := runIn(t, "", "frobnicate")
		require.Equal(t, 2, code)
		require.Contains(t, errOut, `unknown command "frobnicate"`)
	})

	missing := filepath.Join(a.dir, "missing.sock")
	missingCfg := filepath.Join(t.TempDir(), "missing.toml")
	for _, args := range [][]string{
		{"status", "--socket", missing},
		{"status", "--json", "--socket", missing},
		{"flags", "enabled", "internal-tools", "--distinct-id", "u1", "--socket", missing},
		{"flags", "list", "--socket", missing},
		{"capture", "--distinct-id", "u", "--event", "e", "--socket", missing},
	} {
		t.Run("missing socket: "+args[0]+" "+args[1], func(t *testing.T) {
			_, errOut, code := runIn(t, "", append(args, "--config", missingCfg)...)
			require.NotZero(t, code)
			require.Contains(t, errOut, missing, "the message names the socket")
			require.Contains(t, errOut, "does not exist")
		})
	}
	t.Run("missing socket named by --config", func(t *testing.T) {
		cfg := writeConfig(t, t.TempDir(), missing, up.URL())
		_, errOut, code := runIn(t, "", "status", "--config", cfg)
		require.NotZero(t, code)
		require.Contains(t, errOut, missing)
	})
	t.Run("no config and no socket", func(t *testing.T) {
		_, errOut, code := runIn(t, "", "status", "--config", missingCfg)
		require.NotZero(t, code)
		require.Contains(t, errOut, missingCfg)
		require.Contains(t, errOut, "--socket")
	})
}
