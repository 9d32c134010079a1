package agent

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/api"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/flags"
	"github.com/hogrelay/hogrelay/forwarder"
)

// config.Default() writes each default as a literal (config cannot import
// the packages: api imports config), and each package keeps its own
// fallback for a zero option. The agent wires one into the other, so this
// pins them together: changing a default in one place only fails here.
func TestConfigDefaultsAreThePackagesDefaults(t *testing.T) {
	d := config.Default()
	require.Equal(t, forwarder.DefaultMaxInFlight, d.Forwarder.MaxInFlight, "[forwarder] max_in_flight")
	require.EqualValues(t, api.DefaultDecodeBudget, d.Ingest.MaxDecodeBytes, "[ingest] max_decode_bytes")
	require.Equal(t, flags.DefaultPollInterval, d.Flags.PollInterval.D(), "[flags] poll_interval")
	require.Equal(t, flags.DefaultAnswerCacheEntries, d.Flags.AnswerCacheMaxEntries, "[flags] answer_cache_max_entries")
	require.EqualValues(t, flags.DefaultAnswerCacheBytes, d.Flags.AnswerCacheMaxBytes, "[flags] answer_cache_max_bytes")
	require.Equal(t, flags.DefaultAnswerCacheAge, d.Flags.AnswerCacheMaxAge.D(), "[flags] answer_cache_max_age")
}
