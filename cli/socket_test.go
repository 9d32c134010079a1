package cli

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTheSocketIsFoundByFlagEnvironmentOrConfig(t *testing.T) {
	a := startAgent(t)
	missingCfg := filepath.Join(t.TempDir(), "none.toml")
	env := map[string]string{EnvSocket: a.Socket}

	// $HOGRELAY_SOCKET, with no config file at the default path.
	_, errOut, code := runCLI(t, env, "status")
	require.Zero(t, code, errOut)

	// --socket beats the environment.
	_, errOut, code = runCLI(t, env, "status", "--socket", "/nonexistent/h.sock")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "/nonexistent/h.sock does not exist")

	// An explicit --config beats the environment too.
	_, errOut, code = runCLI(t, map[string]string{EnvSocket: "/nonexistent/h.sock"}, "status", "--config", a.ConfigPath)
	require.Zero(t, code, errOut)

	// Neither: the message names all three ways.
	_, errOut, code = runCLI(t, nil, "status", "--config", missingCfg)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, missingCfg)
	require.Contains(t, errOut, "--socket")
	require.Contains(t, errOut, "$"+EnvSocket)
}
