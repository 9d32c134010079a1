package e2e

// The CLI's exit codes, and its messages when the agent cannot be reached.

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

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
