package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/config"
	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testlog"
	"github.com/hogrelay/hogrelay/logging"
)

func testConfig(t *testing.T, up *fakeposthog.Server) config.Config {
	t.Helper()
	// Unix socket paths are limited to 107 bytes; t.TempDir() can be long.
	dir, err := os.MkdirTemp("", "hra")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := config.Default()
	cfg.Path = filepath.Join(dir, "config.toml")
	cfg.DataDir = dir
	cfg.Listen.Socket = filepath.Join(dir, "s.sock")
	cfg.PostHog.Host = up.URL()
	cfg.PostHog.APIKey = "phc_agenttest"
	cfg.Forwarder.BackoffInitial = config.Duration(50 * time.Millisecond)
	cfg.Forwarder.BackoffMax = config.Duration(500 * time.Millisecond)
	require.NoError(t, cfg.Validate())
	return cfg
}

func newUpstream(t *testing.T) *fakeposthog.Server {
	t.Helper()
	up, err := fakeposthog.New(fakeposthog.Options{Logf: t.Logf})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	return up
}

func newAgent(t *testing.T, cfg config.Config) (*Agent, *testlog.Buffer) {
	t.Helper()
	log, logs := testlog.Capture(t)
	a, err := New(cfg, log, "test")
	require.NoError(t, err)
	return a, logs
}

// runAgent runs a until the returned stop is called; stop returns Run's error.
func runAgent(t *testing.T, a *Agent) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	require.Eventually(t, a.isReady, 10*time.Second, 5*time.Millisecond)
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("Run did not return within 60s of its context ending")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// delivered waits until PostHog has every one of ids.
func delivered(t *testing.T, up *fakeposthog.Server, ids []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, up.WaitForUUIDs(ctx, ids))
}

func postBatch(t *testing.T, a *Agent, n int) []string {
	t.Helper()
	var ids, evs []string
	for range n {
		id := uuid.NewString()
		ids = append(ids, id)
		evs = append(evs, `{"event":"e","distinct_id":"d","uuid":"`+id+`"}`)
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/batch/", strings.NewReader(`{"batch":[`+strings.Join(evs, ",")+`]}`))
	req.Header.Set("Content-Type", "application/json")
	a.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	return ids
}

func TestReloadAppliesClaimedKeysAndTheRestNeedRestart(t *testing.T) {
	up := newUpstream(t)
	cfg := testConfig(t, up)
	a, _ := newAgent(t, cfg)

	next := cfg
	next.Forwarder.BatchMaxEvents = 3
	next.Forwarder.ShutdownTimeout = config.Duration(time.Minute)
	next.Spool.CompactAbove = 1 << 30
	next.PostHog.Host = "https://eu.i.posthog.com"
	next.Log.Format = "console"
	next.Flags.OnlyEvaluateLocally = true

	res := a.Reload(next)
	require.Equal(t, []string{"[spool]", "[forwarder]"}, res.Applied)
	require.Equal(t, []string{"[spool] compact_above", "[forwarder] batch_max_events", "[forwarder] shutdown_timeout"}, res.AppliedKeys)
	require.Equal(t, []string{"[posthog]", "[log]", "[flags]"}, res.NeedsRestart)
	require.Equal(t, []string{"[posthog] host", "[log] format", "[flags] only_evaluate_locally"}, res.NeedsRestartKeys)

	run := a.config()
	require.Equal(t, 3, run.Forwarder.BatchMaxEvents)
	require.Equal(t, config.Duration(time.Minute), run.Forwarder.ShutdownTimeout)
	require.Equal(t, up.URL(), run.PostHog.Host, "the running config keeps what needs a restart")
	require.Equal(t, up.URL(), a.Status().PostHogHost)
	require.False(t, run.Flags.OnlyEvaluateLocally)

	// Nothing was applied, so a second reload reports the same restart list.
	res = a.Reload(next)
	require.Empty(t, res.Applied)
	require.Equal(t, []string{"[posthog] host", "[log] format", "[flags] only_evaluate_locally"}, res.NeedsRestartKeys)

	// The forwarder got the new tuning: batches of at most 3.
	stop := runAgent(t, a)
	delivered(t, up, postBatch(t, a, 7))
	require.NoError(t, stop())
	for _, r := range up.Requests() {
		require.LessOrEqual(t, r.Events, 3)
	}
}

func TestReloadOfTheSameConfigChangesNothing(t *testing.T) {
	up := newUpstream(t)
	cfg := testConfig(t, up)
	a, logs := newAgent(t, cfg)
	defer a.closeListeners()
	defer a.spool.Close()
	res := a.Reload(cfg)
	require.Equal(t, ReloadResult{}, res)
	require.Len(t, logs.Lines("configuration reloaded"), 1)
}

// Every claim names a real key, and no key has two owners: a claim with a
// typo would make its key silently "need a restart".
func TestReloadersClaimRealKeysOnce(t *testing.T) {
	up := newUpstream(t)
	a, _ := newAgent(t, testConfig(t, up))
	defer a.closeListeners()
	defer a.spool.Close()
	owners := map[config.Change]int{}
	for _, r := range a.reloaders() {
		for _, c := range r.claims {
			require.Contains(t, config.Keys(), c)
			owners[c]++
		}
	}
	for c, n := range owners {
		require.Equal(t, 1, n, "%s has %d owners", c, n)
	}
}

// The stop phase uses the shutdown_timeout of the running configuration,
// that is the reloaded one, not the one Run started with.
func TestRunUsesTheReloadedShutdownTimeout(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Hang: true})
	cfg := testConfig(t, up)
	cfg.Forwarder.ShutdownTimeout = config.Duration(5 * time.Minute)
	cfg.Forwarder.RequestTimeout = config.Duration(10 * time.Minute)
	a, logs := newAgent(t, cfg)
	stop := runAgent(t, a)
	postBatch(t, a, 2)

	next := cfg
	next.Forwarder.ShutdownTimeout = config.Duration(50 * time.Millisecond)
	a.Reload(next)
	require.NoError(t, stop())
	flush := logs.Lines("forwarding what is spooled before stopping")
	require.Len(t, flush, 1)
	require.Equal(t, "50ms", flush[0]["shutdown_timeout"])
	stopped := logs.Lines("hogrelay stopped")
	require.Len(t, stopped, 1)
	require.EqualValues(t, 2, stopped[0]["events_left_in_spool"])
}

// A clean run: ready, events forwarded, stop closes the spool and removes
// the socket this agent created.
func TestRunForwardsAndStopsCleanly(t *testing.T) {
	up := newUpstream(t)
	cfg := testConfig(t, up)
	a, logs := newAgent(t, cfg)
	stop := runAgent(t, a)
	delivered(t, up, postBatch(t, a, 3))

	require.NoError(t, stop())
	require.False(t, a.isReady())
	_, err := os.Stat(cfg.Listen.Socket)
	require.ErrorIs(t, err, os.ErrNotExist, "the socket is removed at stop")
	_, err = a.spool.Stats()
	require.Error(t, err, "the spool is closed")
	stopped := logs.Lines("hogrelay stopped")
	require.Len(t, stopped, 1)
	require.EqualValues(t, 0, stopped[0]["events_left_in_spool"])
}

// The README lists the keys a SIGHUP applies live; it must name exactly
// the keys the reloaders claim.
func TestREADMEListsTheLiveReloadKeys(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	text := string(raw)
	start := strings.Index(text, "**SIGHUP**")
	require.GreaterOrEqual(t, start, 0)
	para := text[start:]
	para = para[:strings.Index(para, "It logs")]
	var documented []string
	for _, m := range regexp.MustCompile("`(\\[[a-z_]+\\] [a-z_]+)`").FindAllStringSubmatch(para, -1) {
		documented = append(documented, m[1])
	}

	up := newUpstream(t)
	a, _ := newAgent(t, testConfig(t, up))
	defer a.closeListeners()
	defer a.spool.Close()
	var claimed []string
	for _, r := range a.reloaders() {
		for _, c := range r.claims {
			claimed = append(claimed, c.String())
		}
	}
	require.ElementsMatch(t, claimed, documented)
}

// A listener that fails ends Run through the same shutdown path, and Run
// returns the failure naming the listener.
func TestAListenerFailureStopsTheAgentCleanly(t *testing.T) {
	up := newUpstream(t)
	cfg := testConfig(t, up)
	a, logs := newAgent(t, cfg)
	done := make(chan error, 1)
	go func() { done <- a.Run(context.Background()) }()
	require.Eventually(t, a.isReady, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, a.listeners[0].Close())
	select {
	case err := <-done:
		require.ErrorContains(t, err, "listener "+a.addrs[0])
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return after its listener failed")
	}
	require.Len(t, logs.Lines("a listener failed; shutting down"), 1)
	require.Len(t, logs.Lines("hogrelay stopped"), 1)
	_, err := a.spool.Stats()
	require.Error(t, err, "the spool is closed")
}

// The other reloaders take effect: [ingest] allowed_tokens refuses a token
// at once, [log] level and [flags] poll_interval are reported applied.
func TestReloadAppliesIngestLogAndFlagsKeys(t *testing.T) {
	up := newUpstream(t)
	cfg := testConfig(t, up)
	a, _ := newAgent(t, cfg)
	defer a.closeListeners()
	defer a.spool.Close()
	postBatch(t, a, 1)

	next := cfg
	next.Ingest.AllowedTokens = []string{"phc_someoneelse"}
	next.Log.Level = "debug"
	next.Flags.PollInterval = config.Duration(time.Minute)
	res := a.Reload(next)
	require.Equal(t, []string{"[log] level", "[ingest] allowed_tokens", "[flags] poll_interval"}, res.AppliedKeys)
	require.Empty(t, res.NeedsRestartKeys)
	require.Equal(t, time.Minute, a.flags.Status().PollInterval)

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/batch/", strings.NewReader(`{"batch":[{"event":"e","distinct_id":"d"}]}`))
	req.Header.Set("Content-Type", "application/json")
	a.handler.ServeHTTP(rec, req)
	require.Equal(t, http.StatusUnauthorized, rec.Code, "the default token is no longer allowed")
	require.Contains(t, rec.Body.String(), "allowed_tokens")
	require.NoError(t, logging.SetLevel("info"))
}

// Under systemd's watchdog the agent pings at half the interval while the
// spool answers and the forwarder runs.
func TestWatchdogPingsWhileHealthy(t *testing.T) {
	dir, err := os.MkdirTemp("", "hrw")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	t.Setenv("WATCHDOG_PID", "")

	up := newUpstream(t)
	a, _ := newAgent(t, testConfig(t, up))
	stop := runAgent(t, a)
	seen := map[string]bool{}
	buf := make([]byte, 4096)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	for !seen["WATCHDOG=1"] {
		n, err := conn.Read(buf)
		require.NoError(t, err, "no WATCHDOG=1 datagram; got %v", seen)
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			seen[l] = true
		}
	}
	require.True(t, seen["READY=1"], "READY=1 comes first: %v", seen)
	require.NoError(t, stop())
}
