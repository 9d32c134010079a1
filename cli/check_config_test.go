package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCheckConfigWarnsWhenAPIKeyIsEmpty(t *testing.T) {
	dir := t.TempDir()
	write := func(body string) string {
		p := filepath.Join(dir, "c.toml")
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	base := "data_dir = \"" + dir + "\"\n[listen]\nsocket = \"" + filepath.Join(dir, "s.sock") + "\"\n"

	p := write(base + "[posthog]\napi_key = \"phc_abc\"\n")
	out, errOut, code := runCLI(t, nil, "check-config", "--config", p)
	require.Zero(t, code, errOut)
	require.Contains(t, out, "configuration file "+p+" is valid")
	require.Empty(t, errOut, "nothing to warn about")

	t.Setenv("HOGRELAY_API_KEY", "")
	p = write(base)
	out, errOut, code = runCLI(t, nil, "check-config", "--config", p)
	require.Zero(t, code, "an empty api_key is valid")
	require.Contains(t, out, "is valid")
	require.Contains(t, errOut, "warning: [posthog] api_key is empty")
	require.Contains(t, errOut, "every producer must send its project token")
	require.Contains(t, errOut, "--token")
	require.Contains(t, errOut, "401")

	_, errOut, code = runCLI(t, nil, "check-config", "--config", write("[spool]\nmax_bytes = \"lots\"\n"))
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "max_bytes")
}
