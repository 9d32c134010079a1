package e2e

// Helpers for the operator-tooling tests (status, metrics, spool tools,
// SIGHUP, dev mode). Each is prefixed with ops so it cannot collide with
// other files of the package.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

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
