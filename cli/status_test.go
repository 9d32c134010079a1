package cli

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStatus(t *testing.T) {
	a := startAgent(t)
	out, errOut, code := a.cli("status")
	require.Zero(t, code, errOut)
	require.Contains(t, out, "version")
	require.Contains(t, out, "unix:"+a.Socket)
	require.Contains(t, out, "forwarder")

	out, errOut, code = a.cli("status", "--json")
	require.Zero(t, code, errOut)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Equal(t, "test", st["version"])
	require.NotContains(t, out, testProjectKey, "no key in the status")
}
