package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// Whoever may write the producer socket sends events and reads flags; only
// an administrator may read every project's events back or destroy them.
func TestProducerSocketCannotAdminister(t *testing.T) {
	up := flagUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503}) // events stay spooled
	a := startAgent(t, up)
	evs, ids := mkEvents("payroll_viewed", 3)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)

	admin := []struct{ method, path string }{
		{"GET", "/hogrelay/v1/spool/export"},
		{"GET", "/hogrelay/v1/spool/export?dead_letters=1"},
		{"GET", "/hogrelay/v1/spool/dead-letters"},
		{"POST", "/hogrelay/v1/spool/dead-letters/requeue"},
		{"POST", "/hogrelay/v1/spool/dead-letters/drop"},
		{"POST", "/hogrelay/v1/spool/compact"},
		{"POST", "/hogrelay/v1/forwarder/retry"},
		{"POST", "/hogrelay/v1/flags/reload"},
	}
	for _, c := range admin {
		t.Run("producer socket refuses "+c.path, func(t *testing.T) {
			ans := doWith(t, a.HTTP, "http://hogrelay", c.method, c.path, nil, nil)
			require.Equal(t, http.StatusForbidden, ans.status, ans.body)
			require.Contains(t, ans.body, "admin socket")
			require.NotContains(t, ans.body, ids[0], "no event leaks in the refusal")
		})
	}
	for _, p := range []string{"/hogrelay/v1/status", "/hogrelay/v1/spool/stats", "/hogrelay/v1/flags", "/metrics", "/healthz"} {
		t.Run("producer socket still serves "+p, func(t *testing.T) {
			ans := doWith(t, a.HTTP, "http://hogrelay", "GET", p, nil, nil)
			require.Equal(t, 200, ans.status, ans.body)
		})
	}
	require.EqualValues(t, 3, a.spoolStat("pending_events"), "nothing was dropped through the producer socket")

	t.Run("admin socket serves export", func(t *testing.T) {
		ans := doWith(t, a.admin, "http://hogrelay", "GET", "/hogrelay/v1/spool/export", nil, nil)
		require.Equal(t, 200, ans.status, ans.body)
		for _, id := range ids {
			require.Contains(t, ans.body, id)
		}
	})
	t.Run("admin socket refuses a text/plain POST", func(t *testing.T) {
		ans := doWith(t, a.admin, "http://hogrelay", "POST", "/hogrelay/v1/spool/dead-letters/drop", []byte("x"), map[string]string{"Content-Type": "text/plain"})
		require.Equal(t, http.StatusUnsupportedMediaType, ans.status, ans.body)
		ans = doWith(t, a.admin, "http://hogrelay", "POST", "/hogrelay/v1/spool/compact", []byte("a=b"), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
		require.Equal(t, http.StatusUnsupportedMediaType, ans.status, ans.body)
	})
	t.Run("socket modes", func(t *testing.T) {
		for path, mode := range map[string]os.FileMode{a.Socket: 0o660, a.adminSocket: 0o600} {
			fi, err := os.Stat(path)
			require.NoError(t, err)
			require.Equal(t, mode, fi.Mode().Perm(), path)
		}
		st := a.status()
		require.Equal(t, a.adminSocket, st["admin_socket"])
	})
	t.Run("the CLI finds the admin socket from --config and from --socket", func(t *testing.T) {
		out, errOut, code := a.cli("spool", "export")
		require.Zero(t, code, errOut)
		require.Contains(t, out, ids[0])
		out, errOut, code = runIn(t, "", "spool", "export", "--socket", a.Socket, "--config", filepath.Join(a.dir, "none.toml"))
		require.Zero(t, code, errOut)
		require.Contains(t, out, ids[0])
	})
	t.Run("a user who may produce but not administer", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("needs root to run the CLI as another user")
		}
		// nobody may write the producer socket (0666 here) but not the
		// 0600 admin socket, which belongs to the agent's user.
		require.NoError(t, os.Chmod(a.dir, 0o755))
		require.NoError(t, os.Chmod(a.Socket, 0o666))
		bin := filepath.Join(a.dir, "hogrelay") // the test binary's own dir is 0700
		raw, err := os.ReadFile(binary)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(bin, raw, 0o755))
		asNobody := func(args ...string) (string, int) {
			cmd := exec.Command(bin, args...)
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			done := make(chan struct{})
			go func() { _ = cmd.Run(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				t.Fatal("hogrelay did not exit")
			}
			return out.String(), cmd.ProcessState.ExitCode()
		}
		out, code := asNobody("capture", "--socket", a.Socket, "--distinct-id", "u", "--event", "nobody_sends")
		require.Zero(t, code, out)
		for _, args := range [][]string{
			{"spool", "export"},
			{"spool", "dead-letters", "drop"},
			{"spool", "compact"},
		} {
			out, code = asNobody(append(args, "--socket", a.Socket)...)
			require.NotZero(t, code, "hogrelay %v as nobody: %s", args, out)
			require.Contains(t, out, "admin socket", "hogrelay %v", args)
			require.Contains(t, out, "permission denied", "hogrelay %v", args)
			require.NotContains(t, out, ids[0])
		}
		require.EqualValues(t, 4, a.spoolStat("pending_events"))
	})
}

// Flag definitions can hold emails and payloads. On the TCP listener, which
// every local process can reach, only the configured keys read them.
func TestDefinitionsOnTCPNeedAConfiguredKey(t *testing.T) {
	up := flagUpstream(t)
	const sdkKey = "local-sdk-key-0123456789"
	a := startAgent(t, up, `listen.http = "127.0.0.1:0"`, `flags.definitions_keys = ["`+sdkKey+`"]`)
	require.Eventually(t, func() bool {
		return a.do("GET", "/flags/definitions", nil, map[string]string{"Authorization": "Bearer any"}).status == 200
	}, 20*time.Second, 50*time.Millisecond, "definitions never loaded")

	cases := []struct {
		name, auth string
		status     int
	}{
		{"any bearer", "Bearer x", 401},
		{"the project key", "Bearer " + projectKey, 401},
		{"a prefix of the personal key", "Bearer " + personalKey[:len(personalKey)-1], 401},
		{"no bearer", "", 401},
		{"personal_api_key", "Bearer " + personalKey, 200},
		{"a definitions_keys entry", "Bearer " + sdkKey, 200},
	}
	for _, c := range cases {
		for _, path := range []string{"/flags/definitions", "/api/feature_flag/local_evaluation/"} {
			t.Run(c.name+path, func(t *testing.T) {
				h := map[string]string{}
				if c.auth != "" {
					h["Authorization"] = c.auth
				}
				ans := a.tcpDo("GET", path+"?token="+projectKey, nil, h)
				require.Equal(t, c.status, ans.status, ans.body)
				if c.status == 200 {
					require.JSONEq(t, string(fakeposthog.SampleFlagDefinitions), ans.body)
				} else {
					require.NotContains(t, ans.body, "\"filters\"")
					require.NotContains(t, ans.body, personalKey)
					require.NotContains(t, ans.body, sdkKey)
				}
			})
		}
	}
	require.NotContains(t, a.Logs.String(), personalKey)
	require.NotContains(t, a.Logs.String(), sdkKey, "a definitions key never reaches the log")
	out, _, code := a.cli("status", "--json")
	require.Zero(t, code)
	require.NotContains(t, out, sdkKey)
	require.False(t, strings.Contains(out, personalKey))
}
