package config

import (
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
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

// badConfigs maps each testdata/*.bad.toml to the exact error Load must
// give for it (Prometheus' expectedErrors): one file per Validate branch and
// per decoder failure, so a reworded or lost rule shows up here. A new rule
// in validate.go gets its file here too: `go test -coverprofile=c.out
// ./config && go tool cover -func=c.out | grep validate.go` shows 100%.
var badConfigs = map[string]string{
	"unknown_key":                      `unknown key spool.max_byte (see config.example.toml for every key)`,
	"unknown_section":                  `unknown key spoool, spoool.max_bytes (see config.example.toml for every key)`,
	"wrong_type":                       `line 1: data_dir: incompatible types: TOML value has type int64; destination has type string`,
	"bad_size":                         `line 2: [spool] max_bytes: "2 gigs" is not a size (use e.g. "2GiB", "512MiB" or a number of bytes)`,
	"bad_duration":                     `line 2: [forwarder] request_timeout: "soon" is not a duration (use e.g. "30s" or "5m")`,
	"syntax":                           `line 2: expected '.' or ']' to end table name, but got '\n' instead`,
	"section_as_value":                 `line 1: [forwarder]: type mismatch for config.ForwarderConfig: expected table but found int64`,
	"negative_size":                    `line 2: [spool] max_bytes: -1 is negative`,
	"bad_socket_mode_text":             `line 2: [listen] socket_mode: "rw" is not an octal file mode (use e.g. "0660")`,
	"empty_data_dir":                   `data_dir: must not be empty`,
	"host_without_scheme":              `[posthog] host: "us.i.posthog.com" is not an http(s) URL with a scheme (use e.g. "https://us.i.posthog.com")`,
	"host_with_query":                  `[posthog] host: "https://us.i.posthog.com/?x=1" must not have a query or fragment`,
	"personal_key_as_api_key":          `[posthog] api_key: is a personal API key (phx_...); put the project API key (phc_...) here and the personal key in personal_api_key`,
	"api_key_too_long":                 `[posthog] api_key: token is 74 characters long (at most 64)`,
	"project_key_as_personal_key":      `[posthog] personal_api_key: is a project API key (phc_...); use a personal API key (phx_...) or a project secret key (phs_...)`,
	"no_listener":                      `[listen]: neither socket nor http is set; producers could not reach the agent`,
	"socket_path_too_long":             `[listen] socket: "/run/` + strings.Repeat("s", 110) + `.sock" is 120 bytes long; unix socket paths are limited to 107 bytes`,
	"socket_mode_not_permission":       `[listen] socket_mode: 1777 is not a permission mode (use e.g. "0660")`,
	"http_not_host_port":               `[listen] http: "8787" is not host:port (use e.g. "127.0.0.1:8787")`,
	"http_not_loopback":                `[listen] http: "0.0.0.0:8787" is not a loopback address; the TCP listener has no authentication and must stay on 127.0.0.1 or ::1`,
	"bad_log_level":                    `[log] level: "loud" is not a log level (trace, debug, info, warn, error)`,
	"bad_log_format":                   `[log] format: "xml" is not a log format (auto, json, console)`,
	"bad_allowed_token":                `[ingest] allowed_tokens: entry 1: token is a personal API key (phx_...), not a project API key`,
	"max_event_bytes_out_of_range":     `[ingest] max_event_bytes: 4MiB is out of range (1KiB to 2MiB; PostHog drops events over ~1MB)`,
	"tiny_spool":                       `[spool] max_bytes: 10B is too small (at least 1MiB)`,
	"bad_when_full":                    `line 2: [spool] when_full: "panic" is not "reject" or "drop_oldest"`,
	"batch_max_events_out_of_range":    `[forwarder] batch_max_events: 0 is out of range (1 to 10000)`,
	"batch_too_big":                    `[forwarder] batch_max_bytes: 64MiB is out of range (at least [ingest] max_event_bytes, at most 20MiB, PostHog's /batch limit)`,
	"max_in_flight_out_of_range":       `[forwarder] max_in_flight: 0 is out of range (1 to 256; 1 sends one batch at a time in strict order)`,
	"zero_request_timeout":             `[forwarder] request_timeout: must be a positive duration (use e.g. "30s")`,
	"zero_backoff_initial":             `[forwarder] backoff_initial: must be a positive duration (use e.g. "30s")`,
	"negative_backoff_max":             `[forwarder] backoff_max: must be a positive duration (use e.g. "30s")`,
	"zero_auth_retry_interval":         `[forwarder] auth_retry_interval: must be a positive duration (use e.g. "30s")`,
	"zero_shutdown_timeout":            `[forwarder] shutdown_timeout: must be a positive duration (use e.g. "30s")`,
	"backoff_max_below_initial":        `[forwarder] backoff_max: 5s is shorter than backoff_initial 10s`,
	"fast_poll":                        `[flags] poll_interval: 10ms is too short (at least 1s; PostHog rate-limits definitions to 600/min per project)`,
	"admin_socket_mode_world":          `[listen] admin_socket_mode: 0666 lets every local user export and drop events; use 0600, or 0660 with admin_socket_group`,
	"admin_socket_path_too_long":       `[listen] admin_socket: "/run/` + strings.Repeat("a", 110) + `.sock" is 120 bytes long; unix socket paths are limited to 107 bytes`,
	"admin_socket_mode_not_permission": `[listen] admin_socket_mode: 1600 is not a permission mode (use e.g. "0600")`,
	"max_connections_out_of_range":     `[listen] max_connections: 8 is out of range (16 to 60000; each listener's limit must stay below the unit's LimitNOFILE=65536)`,
	"tiny_max_decode_bytes":            `[ingest] max_decode_bytes: 64MiB is too small (at least 128MiB: decoding one 20MiB batch takes up to ~85MiB)`,
	"admin_socket_is_producer_socket":  `[listen] admin_socket: "/run/hogrelay/admin.sock" is the producer socket; the admin socket needs its own path`,
	"bad_allowed_origin":               `[listen] allowed_origins: entry 0: "http://localhost:3000/app" is not an origin (use e.g. "http://localhost:3000": scheme, host, optional port)`,
	"short_definitions_key":            `[flags] definitions_keys: entry 0 is shorter than 8 characters; use a long random key`,
	"remote_timeout_out_of_range":      `[flags] remote_timeout: 2h0m0s is out of range (100ms to 1m; keep it below the SDKs' own 3s so they get the agent's answer)`,
	"answer_cache_no_entries":          `[flags] answer_cache_max_entries: must be at least 1`,
	"answer_cache_tiny":                `[flags] answer_cache_max_bytes: 1KiB is too small (at least 64KiB)`,
	"answer_cache_short_age":           `[flags] answer_cache_max_age: 1s is too short (at least 1m)`,
}

func TestLoadRefusesBadFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.bad.toml")
	require.NoError(t, err)
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".bad.toml"))
	}
	require.ElementsMatch(t, names, slices.Collect(maps.Keys(badConfigs)), "every testdata/*.bad.toml needs its expected error, and every expected error its file")

	for name, want := range badConfigs {
		t.Run(name, func(t *testing.T) {
			path := "testdata/" + name + ".bad.toml"
			_, err := Load(path)
			require.Error(t, err)
			require.Equal(t, "config: "+path+": "+want, err.Error())
			var ce *Error
			require.ErrorAs(t, err, &ce)
			require.Equal(t, path, ce.File)
			require.NotEmpty(t, ce.Problem)
			require.NotContains(t, ce.Problem, ce.Key+":", "the key is not repeated in the problem")
		})
	}
}

// Callers (check-config, reload) branch on the fields, not on the text.
func TestErrorFields(t *testing.T) {
	_, err := Load("testdata/tiny_spool.bad.toml")
	var ce *Error
	require.ErrorAs(t, err, &ce)
	require.Equal(t, Error{File: "testdata/tiny_spool.bad.toml", Key: "[spool] max_bytes", Problem: "10B is too small (at least 1MiB)"}, *ce)

	_, err = Load("testdata/bad_size.bad.toml")
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 2, ce.Line)
	require.Equal(t, "[spool] max_bytes", ce.Key)

	cfg := Default()
	cfg.DataDir = ""
	require.EqualError(t, cfg.Validate(), "config: (defaults): data_dir: must not be empty")
	require.NoError(t, func() error { c := Default(); return c.Validate() }())
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("/nonexistent/hogrelay.toml")
	require.ErrorContains(t, err, "/nonexistent/hogrelay.toml")
	require.EqualError(t, err, "config: /nonexistent/hogrelay.toml: cannot open: no such file or directory")
	require.ErrorIs(t, err, fs.ErrNotExist)
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

func TestByteSizeHuman(t *testing.T) {
	for in, want := range map[ByteSize]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB",
		5 << 20: "5.0 MiB", 2 << 30: "2.0 GiB", 3<<30 + 512<<20: "3.5 GiB",
	} {
		require.Equal(t, want, in.Human(), "%d bytes", int64(in))
	}
}

// Warnings are for valid settings that are probably wrong; they never stop
// the agent.
func TestWarnings(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"https host and a key", func(c *Config) {}, nil},
		{"plain http to loopback is a dev setup", func(c *Config) { c.PostHog.Host = "http://127.0.0.1:8000" }, nil},
		{"plain http to another machine", func(c *Config) { c.PostHog.Host = "http://posthog.internal" }, []string{`[posthog] host: "http://posthog.internal" is plain http to another machine`}},
		{"no api_key", func(c *Config) { c.PostHog.APIKey = "" }, []string{"[posthog] api_key is empty"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.PostHog.APIKey = "phc_x"
			tc.change(&c)
			require.NoError(t, c.Validate())
			got := c.Warnings()
			require.Len(t, got, len(tc.want))
			for i, w := range tc.want {
				require.True(t, strings.HasPrefix(got[i], w), "%q does not start with %q", got[i], w)
			}
		})
	}
}
