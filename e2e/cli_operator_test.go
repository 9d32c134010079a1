package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// What a new operator trips on (issue 12, "Operator surface"), driven
// through the built binary.

func TestCLIHelpAndVersionOnEveryLevel(t *testing.T) {
	for _, args := range [][]string{
		{"-h"}, {"--help"}, {"flags", "-h"}, {"flags", "get", "-h"}, {"spool", "-h"}, {"spool", "dead-letters", "-h"},
		{"spool", "dead-letters", "list", "--help"}, {"capture", "-h"}, {"serve", "-h"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, code := runIn(t, "", args...)
			require.Zero(t, code, errOut)
			require.Contains(t, out, "usage: hogrelay")
		})
	}
	out, _, code := runIn(t, "", "flags", "get", "-h")
	require.Zero(t, code)
	require.True(t, strings.HasPrefix(out, "usage: hogrelay flags get KEY"), "the usage line shows the positional argument:\n%s", out)
	out, _, _ = runIn(t, "", "spool", "stats", "-h")
	require.NotContains(t, out, "-dead-letters", "spool stats lists only its own flags")

	v1, _, code := runIn(t, "", "--version")
	require.Zero(t, code)
	v2, _, _ := runIn(t, "", "version")
	require.Equal(t, v2, v1)
	require.True(t, strings.HasPrefix(v1, "hogrelay "), v1)

	_, errOut, code := runIn(t, "", "status", "stray")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, `unexpected argument "stray"`)
}

func TestCLIFindsTheSocketInHOGRELAY_SOCKET(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	// No --socket, and no config at the default path: the variable is used.
	cmd := exec.Command(binary, "status", "--json")
	cmd.Env = append(os.Environ(), "HOGRELAY_SOCKET="+a.Socket)
	out, err := cmd.Output()
	require.NoError(t, err, "status via $HOGRELAY_SOCKET")
	var st map[string]any
	require.NoError(t, json.Unmarshal(out, &st))
	require.Equal(t, []any{"unix:" + a.Socket}, st["listeners"])
}

func TestCLICaptureTokenForAnAgentWithoutAPIKey(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `posthog.api_key = ""`)
	out, errOut, code := a.cli("capture", "--distinct-id", "u1", "--event", "tokened", "--token", "phc_from_the_cli")
	require.Zero(t, code, errOut)
	id := strings.TrimSpace(out)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 20*time.Second), []string{id}))
	for _, ev := range up.Events() {
		if ev.UUID == id {
			require.Equal(t, "phc_from_the_cli", ev.Token)
		}
	}
	out, errOut, code = runIn(t, "", "check-config", "--config", a.ConfigPath)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "is valid")
	require.Contains(t, errOut, "api_key is empty")
	require.Contains(t, errOut, "every producer must send its project token")
}

func TestCLISpoolFileOfARunningAgentSaysLocked(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, `spool.max_bytes = "64MiB"`)
	file := filepath.Join(a.dir, "data", "spool.db")

	_, errOut, code := a.cli("spool", "stats", "--file", file)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "locked")
	require.Contains(t, errOut, file)
	require.NotContains(t, errOut, "socket did not answer", "--file never asks the socket")

	// Stopped: offline stats report the configured bound.
	require.NoError(t, a.stop())
	out, errOut, code := a.cli("spool", "stats")
	require.Zero(t, code, errOut)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.EqualValues(t, 64<<20, st["max_bytes"])
}
