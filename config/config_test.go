package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The example file documents every key with its default; if the two drift
// apart an operator copying the example gets surprises.
func TestExampleFileMatchesDefaults(t *testing.T) {
	cfg, err := Load("../config.example.toml")
	require.NoError(t, err)
	want := Default()
	want.Path = "../config.example.toml"
	require.Equal(t, want, cfg)
}

func TestLoadRefusesBadFiles(t *testing.T) {
	cases := []struct {
		name, body, wantErr string
	}{
		{"unknown key", "[spool]\nmax_byte = \"1GiB\"\n", `unknown key spool.max_byte`},
		{"unknown section", "[spoool]\nmax_bytes = \"1GiB\"\n", `unknown key spoool`},
		{"wrong type", "data_dir = 3\n", `line 1 (last key "data_dir"): incompatible types`},
		{"bad size", "[spool]\nmax_bytes = \"2 gigs\"\n", `spool.max_bytes"): "2 gigs" is not a size`},
		{"bad duration", "[forwarder]\nrequest_timeout = \"soon\"\n", `"soon" is not a duration`},
		{"syntax", "[spool\n", `line 2: expected '.' or ']'`},
		{"host without scheme", "[posthog]\nhost = \"us.i.posthog.com\"\n", `[posthog] host: "us.i.posthog.com" is not an http(s) URL with a scheme`},
		{"personal key as api_key", "[posthog]\napi_key = \"phx_abc\"\n", `[posthog] api_key: is a personal API key`},
		{"project key as personal key", "[posthog]\npersonal_api_key = \"phc_abc\"\n", `[posthog] personal_api_key: is a project API key`},
		{"non-loopback http", "[listen]\nhttp = \"0.0.0.0:8787\"\n", `[listen] http: "0.0.0.0:8787" is not a loopback address`},
		{"bad socket mode", "[listen]\nsocket_mode = \"rw\"\n", `"rw" is not an octal file mode`},
		{"socket path too long", "[listen]\nsocket = \"/run/" + strings.Repeat("s", 110) + ".sock\"\n", `[listen] socket: "/run/sss`},
		{"bad level", "[log]\nlevel = \"loud\"\n", `[log] level: "loud" is not one of`},
		{"bad policy", "[spool]\nwhen_full = \"panic\"\n", `[spool] when_full: "panic" is not "reject" or "drop_oldest"`},
		{"tiny spool", "[spool]\nmax_bytes = 10\n", `[spool] max_bytes: 10B is too small`},
		{"batch too big", "[forwarder]\nbatch_max_bytes = \"64MiB\"\n", `[forwarder] batch_max_bytes: 64MiB is out of range`},
		{"zero timeout", "[forwarder]\nrequest_timeout = \"0s\"\n", `[forwarder] request_timeout: must be a positive duration`},
		{"fast poll", "[flags]\npoll_interval = \"10ms\"\n", `[flags] poll_interval: 10ms is too short`},
		{"bad allowed token", "[ingest]\nallowed_tokens = [\"phx_personal\"]\n", `[ingest] allowed_tokens: entry 0: token is a personal API key`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bad.toml")
			require.NoError(t, os.WriteFile(path, []byte(tc.body), 0o600))
			_, err := Load(path)
			require.Error(t, err)
			require.Contains(t, err.Error(), path, "error must name the file")
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/hogrelay.toml")
	require.ErrorContains(t, err, "/nonexistent/hogrelay.toml")
}

func TestSecretsFromEnvironmentAndNeverPrinted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.toml")
	require.NoError(t, os.WriteFile(path, []byte("[posthog]\napi_key = \"phc_fromfile\"\n"), 0o600))
	t.Setenv(EnvAPIKey, "phc_fromenv")
	t.Setenv(EnvPersonalAPIKey, "phx_secretpersonal")
	cfg, err := Load(path)
	require.NoError(t, err)
	require.Equal(t, "phc_fromenv", cfg.PostHog.APIKey.Reveal())
	require.Equal(t, "phx_secretpersonal", cfg.PostHog.PersonalAPIKey.Reveal())
	for _, s := range []string{
		cfg.PostHog.APIKey.String(),
		fmtSprint(cfg),
	} {
		require.NotContains(t, s, "phc_fromenv")
		require.NotContains(t, s, "phx_secretpersonal")
	}
}

func TestByteSizes(t *testing.T) {
	for in, want := range map[string]ByteSize{
		"1024": 1024, "64MiB": 64 << 20, "2GiB": 2 << 30, "1MB": 1_000_000, "1.5KiB": 1536, "10 B": 10,
	} {
		got, err := ParseByteSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "x", "-1", "GiB"} {
		_, err := ParseByteSize(in)
		require.Error(t, err, in)
	}
}
