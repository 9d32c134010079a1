// Package e2e tests hogrelay from outside, as an operator would: the real
// binary, its real unix socket, and a fake PostHog upstream that fails the
// ways the real one and real networks do.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testagent"
)

var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "hogrelay-e2e-")
	if err != nil {
		panic(err)
	}
	if b := os.Getenv("HOGRELAY_E2E_BINARY"); b != "" {
		// Run the tests against another build (e.g. the old code, to see a
		// new test fail before its fix).
		binary = b
	} else if binary, err = testagent.Build("..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The binary is built with -race, whose exit pauses a second by default;
	// every CLI call would pay it.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	projectKey  = testagent.ProjectKey
	personalKey = testagent.PersonalKey
)

// agentProc is the built binary serving one test's config, with the test's
// fake PostHog.
type agentProc struct {
	*testagent.Process // Socket, ConfigPath, Logs, HTTP, Cmd (the current run)
	t                  *testing.T
	dir                string
	up                 *fakeposthog.Server
	// admin talks to the admin socket (admin.sock next to socket), where
	// do sends the admin calls (see adminPath).
	adminSocket string
	admin       *http.Client
}

// unixClient is an HTTP client that dials one unix socket.
func unixClient(socket string) *http.Client { return testagent.UnixClient(socket) }

// adminPath is true for the /hogrelay/v1/ calls the agent serves on its
// admin socket only (everything but status, spool stats, flags list and
// evaluate), so tests that administer reach the right socket.
func adminPath(path string) bool {
	path, _, _ = strings.Cut(path, "?")
	switch path {
	case "/hogrelay/v1/status", "/hogrelay/v1/spool/stats", "/hogrelay/v1/flags", "/hogrelay/v1/flags/evaluate":
		return false
	}
	return strings.HasPrefix(path, "/hogrelay/")
}

func newUpstream(t *testing.T) *fakeposthog.Server {
	t.Helper()
	up, err := fakeposthog.New(fakeposthog.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	return up
}

// e2eDefaults make failures and retries quick and every log line visible.
var e2eDefaults = []string{
	`log.level = "debug"`,
	`forwarder.backoff_initial = "50ms"`, `forwarder.backoff_max = "500ms"`,
	`forwarder.auth_retry_interval = "500ms"`, `forwarder.shutdown_timeout = "2s"`,
}

// writeConfig writes a config for this test's data dir, socket and
// upstream (testagent.WriteConfig with e2eDefaults). Each override is
// "section.key = value" (TOML value syntax) and replaces or adds that key.
func writeConfig(t *testing.T, dir, socket, host string, overrides ...string) string {
	t.Helper()
	all := append(append(append([]string{}, e2eDefaults...), "listen.socket = "+strconv.Quote(socket)), overrides...)
	return testagent.WriteConfig(t, dir, host, all...)
}

// startAgent writes a config (see writeConfig for overrides) and starts the
// real binary.
func startAgent(t *testing.T, up *fakeposthog.Server, overrides ...string) *agentProc {
	t.Helper()
	return startAgentCmd(t, up, []string{binary}, overrides...)
}

// startAgentCmd is startAgent running argv instead of the test binary: a
// non-race build, or prlimit in front of one. argv's last element is the
// hogrelay binary, which gets "serve --config …".
func startAgentCmd(t *testing.T, up *fakeposthog.Server, argv []string, overrides ...string) *agentProc {
	t.Helper()
	a := newAgentProc(t, up, argv, overrides...)
	a.start()
	return a
}

// newAgentProc is startAgentCmd without the start.
func newAgentProc(t *testing.T, up *fakeposthog.Server, argv []string, overrides ...string) *agentProc {
	t.Helper()
	dir := testagent.Dir(t)
	socket := testagent.Socket(dir)
	a := &agentProc{t: t, dir: dir, up: up}
	a.Process = testagent.NewProcess(t, argv[len(argv)-1], writeConfig(t, dir, socket, up.URL(), overrides...), socket)
	a.Prefix = argv[:len(argv)-1]
	a.adminSocket = filepath.Join(dir, "admin.sock")
	a.admin = unixClient(a.adminSocket)
	return a
}

func tail(s string, n int) string { return testagent.Tail(s, n) }

// start (re)starts the agent and waits until it is ready.
func (a *agentProc) start() {
	a.t.Helper()
	require.NoError(a.t, a.Process.Start(), "agent did not become ready")
}

// kill9 kills the agent without warning.
func (a *agentProc) kill9() {
	a.t.Helper()
	require.NoError(a.t, a.Kill9())
}

// stop sends SIGTERM and returns the exit error.
func (a *agentProc) stop() error {
	a.t.Helper()
	return a.Stop()
}

type answer struct {
	status int
	body   string
	header http.Header
}

// do sends one request: admin calls to the admin socket, the rest to the
// producer socket.
func (a *agentProc) do(method, path string, body []byte, header map[string]string) answer {
	a.t.Helper()
	c := a.HTTP
	if adminPath(path) {
		c = a.admin
	}
	return doWith(a.t, c, "http://hogrelay", method, path, body, header)
}

// doWith sends one request with client c to base+path.
func doWith(t *testing.T, c *http.Client, base, method, path string, body []byte, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: string(b), header: resp.Header}
}

func (a *agentProc) postJSON(path string, v any) answer {
	a.t.Helper()
	b, err := json.Marshal(v)
	require.NoError(a.t, err)
	return a.do(http.MethodPost, path, b, map[string]string{"Content-Type": "application/json"})
}

// cli runs a hogrelay subcommand against this agent.
func (a *agentProc) cli(args ...string) (string, string, int) {
	a.t.Helper()
	return runIn(a.t, "", append(args, "--config", a.ConfigPath)...)
}

// runIn runs the binary in dir ("" = here) and returns its output and exit
// status; a command that hangs fails the test instead of the whole run.
func runIn(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("hogrelay %v did not exit within 60s", args)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func (a *agentProc) status() map[string]any {
	a.t.Helper()
	ans := a.do(http.MethodGet, "/hogrelay/v1/status", nil, nil)
	require.Equal(a.t, 200, ans.status, ans.body)
	var m map[string]any
	require.NoError(a.t, json.Unmarshal([]byte(ans.body), &m))
	return m
}

func (a *agentProc) spoolStat(key string) float64 {
	a.t.Helper()
	return a.status()["spool"].(map[string]any)[key].(float64)
}

// mkEvents builds n events with known uuids and timestamps.
func mkEvents(prefix string, n int) ([]map[string]any, []string) {
	evs := make([]map[string]any, n)
	ids := make([]string, n)
	base := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for i := range evs {
		ids[i] = fmt.Sprintf("0193%04x-%04x-7000-8000-%012d", prefixHash(prefix), i%0xffff, i)
		evs[i] = map[string]any{
			"uuid": ids[i], "event": prefix, "distinct_id": "user-" + prefix,
			"timestamp":  base.Add(time.Duration(i) * time.Millisecond).Format("2006-01-02T15:04:05.000Z"),
			"properties": map[string]any{"i": i, "$lib": "e2e"},
		}
	}
	return evs, ids
}

func batchBody(evs []map[string]any) map[string]any {
	return map[string]any{"api_key": projectKey, "batch": evs}
}

func waitCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func prefixHash(s string) uint16 {
	var h uint16 = 7
	for _, c := range []byte(s) {
		h = h*31 + uint16(c)
	}
	return h
}

func writeFile(path, body string) error { return os.WriteFile(path, []byte(body), 0o600) }
