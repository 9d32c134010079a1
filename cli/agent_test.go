package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/agent"
	"github.com/hogrelay/hogrelay/client"
	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

const testProjectKey = "phc_cli_test_project"

// testAgent is a real agent run in-process against the fake PostHog, so a
// command's test exercises its request, the agent's answer and its output.
type testAgent struct {
	t       *testing.T
	up      *fakeposthog.Server
	cfg     config.Config
	cfgTOML string // path of a config file naming the agent's socket and data_dir
	stop    func()
}

// startAgent runs an agent until the test ends (or stop is called). edit
// changes the default test configuration before start.
func startAgent(t *testing.T, edit func(*config.Config)) *testAgent {
	t.Helper()
	up, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: fakeposthog.SampleFlagDefinitions})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	// Unix socket paths are limited to 107 bytes; t.TempDir's can be longer.
	sockDir, err := os.MkdirTemp("", "hrcli")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(sockDir) })

	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	cfg.Listen.Socket = filepath.Join(sockDir, "a.sock")
	cfg.PostHog.Host = up.URL()
	cfg.PostHog.APIKey = testProjectKey
	cfg.PostHog.PersonalAPIKey = "phx_cli_test_personal"
	cfg.Forwarder.BackoffMax = config.Duration(time.Second)
	if edit != nil {
		edit(&cfg)
	}
	require.NoError(t, cfg.Validate())
	path := filepath.Join(t.TempDir(), "config.toml")
	require.NoError(t, os.WriteFile(path, []byte(`data_dir = "`+cfg.DataDir+`"
[posthog]
host = "`+cfg.PostHog.Host+`"
[listen]
socket = "`+cfg.Listen.Socket+`"
[spool]
max_bytes = `+strconv.FormatInt(int64(cfg.Spool.MaxBytes), 10)+`
`), 0o600))

	log := zerolog.New(zerolog.NewTestWriter(t)).With().Timestamp().Logger()
	a, err := agent.New(cfg, log, "test")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = a.Run(ctx) }()
	var once sync.Once
	ta := &testAgent{t: t, up: up, cfg: cfg, cfgTOML: path, stop: func() { once.Do(func() { cancel(); <-done }) }}
	t.Cleanup(ta.stop)
	c := client.New(cfg.Listen.Socket)
	require.Eventually(t, func() bool {
		return c.Do(context.Background(), http.MethodGet, "/healthz", nil, nil) == nil
	}, 10*time.Second, 10*time.Millisecond, "the agent never answered /healthz")
	return ta
}

// runCLI runs a command the way Main does, with the given environment.
func runCLI(t *testing.T, environ map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return environ[k] }}
	code = run(context.Background(), e, args)
	return out.String(), errOut.String(), code
}

// cli runs a command against this agent (by --config).
func (a *testAgent) cli(args ...string) (stdout, stderr string, code int) {
	a.t.Helper()
	return runCLI(a.t, nil, append(args, "--config", a.cfgTOML)...)
}
