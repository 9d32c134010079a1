package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDiff(t *testing.T) {
	cases := []struct {
		name   string
		change func(c *Config)
		want   []string
	}{
		{"nothing", func(c *Config) {}, nil},
		{"only the file path", func(c *Config) { c.Path = "/elsewhere.toml" }, nil},
		{"an empty list is no list", func(c *Config) { c.Ingest.AllowedTokens = nil }, nil},
		{"top-level key", func(c *Config) { c.DataDir = "/srv/hogrelay" }, []string{"data_dir"}},
		{"shutdown_timeout", func(c *Config) { c.Forwarder.ShutdownTimeout = Duration(time.Minute) }, []string{"[forwarder] shutdown_timeout"}},
		{"a secret, compared not printed", func(c *Config) { c.PostHog.APIKey = "phc_other" }, []string{"[posthog] api_key"}},
		{"a list entry", func(c *Config) { c.Ingest.AllowedTokens = []string{"phc_a"} }, []string{"[ingest] allowed_tokens"}},
		{"a bool", func(c *Config) { c.Flags.OnlyEvaluateLocally = true }, []string{"[flags] only_evaluate_locally"}},
		{"several, in file order", func(c *Config) {
			c.Flags.PollInterval = Duration(time.Minute)
			c.Log.Level = "debug"
			c.PostHog.Host = "https://eu.i.posthog.com"
			c.Spool.CompactAbove = 1 << 30
			c.Listen.SocketMode = 0o600
		}, []string{"[posthog] host", "[listen] socket_mode", "[log] level", "[spool] compact_above", "[flags] poll_interval"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			old := Default()
			old.Path = "/etc/hogrelay/config.toml"
			next := old
			next.Ingest.AllowedTokens = append([]string{}, old.Ingest.AllowedTokens...)
			tc.change(&next)
			var got []string
			for _, ch := range Diff(old, next) {
				got = append(got, ch.String())
			}
			require.Equal(t, tc.want, got)
			require.Empty(t, Diff(next, next), "a config does not differ from itself")
		})
	}
}

func TestChangeNames(t *testing.T) {
	require.Equal(t, "[forwarder]", Change{Section: "forwarder", Key: "shutdown_timeout"}.SectionName())
	require.Equal(t, "data_dir", Change{Key: "data_dir"}.SectionName())
	require.Equal(t, "data_dir", Change{Key: "data_dir"}.String())
}

// Take moves exactly one key: what a reload applied, and nothing else.
func TestTakeCopiesOneKey(t *testing.T) {
	old, next := Default(), Default()
	next.Forwarder.ShutdownTimeout = Duration(time.Minute)
	next.Forwarder.BatchMaxEvents = 7
	next.DataDir = "/srv"
	run := old
	run.Take(next, Change{Section: "forwarder", Key: "shutdown_timeout"})
	run.Take(next, Change{Key: "data_dir"})
	require.Equal(t, Duration(time.Minute), run.Forwarder.ShutdownTimeout)
	require.Equal(t, "/srv", run.DataDir)
	require.Equal(t, old.Forwarder.BatchMaxEvents, run.Forwarder.BatchMaxEvents)
	require.Equal(t, Default().Forwarder.ShutdownTimeout, old.Forwarder.ShutdownTimeout, "the source config is not modified")
	var got []string
	for _, ch := range Diff(old, run) {
		got = append(got, ch.String())
	}
	require.Equal(t, []string{"data_dir", "[forwarder] shutdown_timeout"}, got)
}

func TestKeysAreTheTOMLKeys(t *testing.T) {
	keys := Keys()
	require.Contains(t, keys, Change{Key: "data_dir"})
	require.Contains(t, keys, Change{Section: "forwarder", Key: "shutdown_timeout"})
	require.NotContains(t, keys, Change{Key: "Path"})
	require.NotContains(t, keys, Change{Key: ""})
}
