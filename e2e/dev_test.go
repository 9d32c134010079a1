package e2e

// `hogrelay dev`: the banner's commands work and Ctrl-C exits cleanly.

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/testlog"
)

func TestOpsDevModeBannerCommandsWorkAndCtrlCExitsCleanly(t *testing.T) {
	dir, err := os.MkdirTemp("", "hrdev")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })

	cmd := exec.Command(binary, "dev", "--http", "", "--socket", "d.sock")
	cmd.Dir = dir
	stdout := &testlog.Buffer{}
	stderr := &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", stdout.String(), tail(stderr.String(), 40))
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops everything.") },
		60*time.Second, 20*time.Millisecond, "dev mode never printed its banner")
	banner := stdout.String()

	field := func(label string) string {
		m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(label) + `:\s+(\S+)`).FindStringSubmatch(banner)
		require.NotNil(t, m, "no %q in the banner:\n%s", label, banner)
		return m[1]
	}
	require.Equal(t, "d.sock", field("socket"))
	require.Equal(t, "-", field("http"), "--http \"\" means no TCP listener")
	require.True(t, strings.HasPrefix(field("local PostHog"), "http://127.0.0.1:"))
	dataDir := field("data dir")
	_, err = os.Stat(dataDir)
	require.NoError(t, err)
	sock := filepath.Join(dir, "d.sock")

	received := func() int { return strings.Count(stdout.String(), "received 1 event(s)") }
	waitReceived := func(n int) {
		t.Helper()
		require.Eventually(t, func() bool { return received() >= n }, 30*time.Second, 20*time.Millisecond,
			"the embedded upstream did not print %d \"received 1 event(s)\" lines", n)
	}

	var lines []string
	for _, l := range strings.Split(banner, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	find := func(prefix string) int {
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("no line starting %q in the banner:\n%s", prefix, banner)
		return -1
	}

	t.Run("curl", func(t *testing.T) {
		i := find("curl --unix-socket ")
		f := strings.Fields(lines[i])
		require.Equal(t, "d.sock", f[2])
		require.Equal(t, "http://localhost/batch/", f[3])
		require.Contains(t, lines[i], "-H 'Content-Type: application/json'")
		d := lines[i+1]
		require.True(t, strings.HasPrefix(d, "-d '") && strings.HasSuffix(d, "'"), "curl's -d line: %q", d)
		body := d[len("-d '") : len(d)-1]
		require.True(t, json.Valid([]byte(body)), body)

		c := unixClient(filepath.Join(dir, f[2]))
		resp, err := c.Post(f[3], "application/json", strings.NewReader(body))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, 200, resp.StatusCode, string(b))
		require.JSONEq(t, `{"status":1}`, string(b))
		waitReceived(1)
	})
	t.Run("capture", func(t *testing.T) {
		f := strings.Fields(lines[find(binary+" capture ")])
		require.Equal(t, binary, f[0], "the banner names the running binary")
		out, errOut, code := runIn(t, dir, f[1:]...)
		require.Zero(t, code, errOut)
		require.Regexp(t, `^[0-9a-f-]{36}\s*$`, out, "capture prints the event's uuid")
		waitReceived(2)
	})
	t.Run("flags get", func(t *testing.T) {
		f := strings.Fields(lines[find(binary+" flags get ")])
		out, errOut, code := runIn(t, dir, f[1:]...)
		require.Zero(t, code, errOut)
		require.Contains(t, []string{"control", "red", "green"}, strings.TrimSpace(out), "a variant of the sample flag")
		waitReceived(3) // its $feature_flag_called event
	})
	require.Regexp(t, `\[local posthog\] /batch/? 200: received 1 event\(s\)`, stdout.String())

	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		require.NoError(t, err, "dev exits 0 on Ctrl-C; stderr:\n%s", tail(stderr.String(), 20))
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not exit within 30s of SIGINT")
	}
	_, err = os.Stat(sock)
	require.True(t, os.IsNotExist(err), "the socket is removed")
	_, err = os.Stat(dataDir)
	require.True(t, os.IsNotExist(err), "the temporary data dir is removed")
}
