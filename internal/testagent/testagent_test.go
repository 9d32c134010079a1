package testagent

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

func TestWriteConfigAppliesOverridesInOrder(t *testing.T) {
	dir := Dir(t)
	path := WriteConfig(t, dir, "https://eu.i.posthog.com",
		`forwarder.batch_max_events = 7`, `log.level = "debug"`, `log.level = "warn"`, `posthog.api_key = ""`)
	cfg, err := config.Load(path)
	require.NoError(t, err)
	require.Equal(t, Socket(dir), cfg.Listen.Socket)
	require.Equal(t, "https://eu.i.posthog.com", cfg.PostHog.Host)
	require.Equal(t, 7, cfg.Forwarder.BatchMaxEvents)
	require.Equal(t, "warn", cfg.Log.Level, "the later override wins")
	require.Empty(t, cfg.PostHog.APIKey.Reveal())
	require.Equal(t, PersonalKey, cfg.PostHog.PersonalAPIKey.Reveal())
	require.Less(t, len(Socket(dir)), 108, "short enough for a unix socket")
}

func TestStartServesUntilStop(t *testing.T) {
	up, err := fakeposthog.New(fakeposthog.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	a := Start(t, up.URL())
	resp, err := UnixClient(a.Socket).Get("http://hogrelay/readyz")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NotEmpty(t, a.Logs.Lines("hogrelay is ready"), "the agent's logs are kept")

	require.NoError(t, a.Stop())
	_, err = UnixClient(a.Socket).Get("http://hogrelay/readyz")
	require.Error(t, err, "nothing serves after Stop")
	require.NoError(t, a.Stop(), "Stop is idempotent")
}
