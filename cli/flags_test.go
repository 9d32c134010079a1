package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// flagsLoaded waits until the agent holds the fake PostHog's sample flags.
func (a *testAgent) flagsLoaded() {
	a.t.Helper()
	require.Eventually(a.t, func() bool {
		out, _, code := a.cli("flags", "list", "--json")
		var l struct {
			Cache struct {
				FlagCount int `json:"flag_count"`
			} `json:"cache"`
		}
		return code == 0 && json.Unmarshal([]byte(out), &l) == nil && l.Cache.FlagCount == 5
	}, 20*time.Second, 20*time.Millisecond, "flag definitions never loaded")
}

func TestFlagsCommands(t *testing.T) {
	a := startAgent(t)
	a.flagsLoaded()
	ann := []string{"--distinct-id", "u1", "--person-property", "email=ann@example.com", "--no-called-event"}

	out, errOut, code := a.cli(append([]string{"flags", "get", "internal-tools"}, ann...)...)
	require.Zero(t, code, errOut)
	require.Equal(t, "true\n", out)

	_, _, code = a.cli(append([]string{"flags", "enabled", "internal-tools"}, ann...)...)
	require.Zero(t, code, "on")
	_, _, code = a.cli("flags", "enabled", "internal-tools", "--distinct-id", "u1", "--person-property", "email=bob@other.org")
	require.Equal(t, 1, code, "off")

	out, errOut, code = a.cli(append([]string{"flags", "all"}, ann...)...)
	require.Zero(t, code, errOut)
	var all map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &all), out)
	require.Contains(t, out, "internal-tools")

	out, errOut, code = a.cli("flags", "list")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "KEY")
	require.Contains(t, out, "checkout-button")

	out, errOut, code = a.cli("flags", "reload")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "reloaded: 5 flags")
}

func TestFlagsCommandsNeedADistinctID(t *testing.T) {
	for _, sub := range [][]string{{"get", "k"}, {"enabled", "k"}, {"all"}} {
		_, errOut, code := runCLI(t, nil, append([]string{"flags"}, sub...)...)
		require.Equal(t, 1, code)
		require.Contains(t, errOut, "flags "+sub[0]+" needs --distinct-id")
	}
}

func TestFlagsGetSaysWhenTheAgentCannotBeAsked(t *testing.T) {
	_, errOut, code := runCLI(t, nil, "flags", "get", "k", "--distinct-id", "u", "--socket", "/nonexistent/h.sock")
	require.Equal(t, 3, code, "3, not 1 (off)")
	require.Contains(t, errOut, "/nonexistent/h.sock does not exist")
}
