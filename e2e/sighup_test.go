package e2e

// SIGHUP: live settings applied, restart-only ones named, a broken file refused.

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpsSIGHUPAppliesLiveSettingsAndNamesRestartOnes(t *testing.T) {
	up := newUpstream(t)
	other := newUpstream(t)
	a := startAgent(t, up, `forwarder.batch_max_events = 100`)

	ids := a.opsSend("hup-before", 10, nil)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	reqsBefore := len(up.Requests())
	require.Equal(t, 10, up.Requests()[reqsBefore-1].Events, "one request of 10 under batch_max_events = 100")

	logFrom := len(a.Logs.String())
	writeConfig(t, a.dir, a.Socket, other.URL(), `forwarder.batch_max_events = 3`, `listen.socket_mode = "0600"`)
	a.opsSighup()
	var reload map[string]any
	require.Eventually(t, func() bool {
		for _, l := range opsLogLines(a.Logs.String()[logFrom:]) {
			if l["message"] == "configuration reloaded" {
				reload = l
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no \"configuration reloaded\" log line")
	require.Equal(t, []string{"[forwarder]"}, opsStrings(reload["applied"]))
	require.ElementsMatch(t, []string{"[posthog]", "[listen]"}, opsStrings(reload["needs_restart"]))
	require.Equal(t, a.ConfigPath, reload["config"])

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
	fi, err := os.Stat(a.Socket)
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
		from := len(a.Logs.String())
		require.Equal(t, 400, a.do(http.MethodPost, "/batch/", []byte(`{"api_key":"phc_x","batch":[{"event":`), nil).status)
		require.Equal(t, 200, a.do(http.MethodPost, "/hogrelay/v1/spool/dead-letters/drop", nil, nil).status)
		var lines []map[string]any
		require.Eventually(t, func() bool {
			lines = opsLogLines(a.Logs.String()[from:])
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

	logFrom := len(a.Logs.String())
	writeConfig(t, a.dir, a.Socket, up.URL(), `log.level = "warn"`, `forwarder.batch_max_events = 4`)
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

	require.Contains(t, a.Logs.String()[logFrom:], "configuration reloaded",
		"BUG (agent/agent.go Agent.Reload): the reload summary is logged at info after the level was raised to warn, so the operator never sees what was applied")
}

func TestOpsSIGHUPWithBrokenConfigIsRefusedAndAgentKeepsRunning(t *testing.T) {
	cases := []struct {
		name    string
		write   func(a *agentProc)
		mention []string
	}{
		{"value out of range", func(a *agentProc) {
			writeConfig(t, a.dir, a.Socket, a.up.URL(), `forwarder.batch_max_events = 0`)
		}, []string{"[forwarder] batch_max_events", "out of range"}},
		{"unknown key", func(a *agentProc) {
			writeConfig(t, a.dir, a.Socket, a.up.URL(), `forwarder.batch_max_evnts = 5`)
		}, []string{"unknown key forwarder.batch_max_evnts"}},
		{"bad level", func(a *agentProc) {
			writeConfig(t, a.dir, a.Socket, a.up.URL(), `log.level = "loud"`)
		}, []string{"[log] level", `\"loud\"`}},
		{"not TOML", func(a *agentProc) {
			require.NoError(t, writeFile(a.ConfigPath, "[forwarder\nbatch_max_events = 5\n"))
		}, nil},
		{"file removed", func(a *agentProc) {
			require.NoError(t, os.Remove(a.ConfigPath))
		}, []string{"no such file"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			up := newUpstream(t)
			a := startAgent(t, up, `forwarder.batch_max_events = 2`)
			logFrom := len(a.Logs.String())
			c.write(a)
			a.opsSighup()
			var refused string
			require.Eventually(t, func() bool {
				for _, l := range strings.Split(a.Logs.String()[logFrom:], "\n") {
					if strings.Contains(l, "configuration reload refused") {
						refused = l
						return true
					}
				}
				return false
			}, 10*time.Second, 20*time.Millisecond, "no refusal logged")
			require.Contains(t, refused, `"level":"error"`)
			require.Contains(t, refused, a.ConfigPath, "the refusal names the file")
			for _, m := range c.mention {
				require.Contains(t, refused, m)
			}
			require.NotContains(t, a.Logs.String()[logFrom:], "configuration reloaded")

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
	writeConfig(t, a.dir, a.Socket, other.URL())
	reloads := func() []map[string]any {
		var out []map[string]any
		for _, l := range opsLogLines(a.Logs.String()) {
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
