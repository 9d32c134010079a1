package e2e

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testagent"
)

// notifySocket stands in for systemd's $NOTIFY_SOCKET: it keeps every
// datagram the agent sends.
type notifySocket struct {
	mu    sync.Mutex
	grams []string
}

func listenNotify(t *testing.T) (string, *notifySocket) {
	t.Helper()
	path := filepath.Join(testagent.Dir(t), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	ns := &notifySocket{}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ns.mu.Lock()
			ns.grams = append(ns.grams, string(buf[:n]))
			ns.mu.Unlock()
		}
	}()
	return path, ns
}

// lastStatus is the text of the latest STATUS= the agent sent.
func (ns *notifySocket) lastStatus() string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	for i := len(ns.grams) - 1; i >= 0; i-- {
		for _, l := range strings.Split(ns.grams[i], "\n") {
			if s, ok := strings.CutPrefix(l, "STATUS="); ok {
				return s
			}
		}
	}
	return ""
}

func (ns *notifySocket) all() string {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	return strings.Join(ns.grams, "\n")
}

// systemctl status shows what the agent is doing (STATUS=): spool depth,
// the forwarder's state, and a refused reload until a reload succeeds.
func TestSystemdStatusShowsSpoolForwarderAndARefusedReload(t *testing.T) {
	sock, ns := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, `forwarder.backoff_initial = "4s"`, `forwarder.backoff_max = "8s"`)
	require.Contains(t, ns.all(), "READY=1")

	a.opsSend("sd-status", 5, nil)
	require.Eventually(t, func() bool {
		s := ns.lastStatus()
		return strings.Contains(s, "spool: 5 events") && strings.Contains(s, "forwarder: backing_off")
	}, 20*time.Second, 50*time.Millisecond, "STATUS= never showed the spool and the forwarder; last: %q", ns.lastStatus())
	require.NotContains(t, ns.all(), projectKey, "no key in what systemd shows")

	// A broken file on SIGHUP: refused, shown at once, the agent keeps running.
	good, err := os.ReadFile(a.ConfigPath)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(a.ConfigPath, append(good, []byte("\n[spool]\nmax_bytes = \"lots\"\n")...), 0o600))
	a.opsSighup()
	require.Eventually(t, func() bool { return strings.Contains(ns.lastStatus(), "reload refused at ") }, 10*time.Second, 20*time.Millisecond,
		"a refused reload is not in STATUS=; last: %q", ns.lastStatus())
	require.Contains(t, ns.lastStatus(), "max_bytes", "the refusal names the key")
	require.Contains(t, ns.lastStatus(), "spool: 5 events", "and the rest of the line stays")
	// (--socket: the CLI cannot read the broken file either.)
	out, errOut, code := runIn(t, "", "status", "--json", "--socket", a.Socket)
	require.Zero(t, code, errOut)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	require.Contains(t, st["reload_refused"].(map[string]any)["error"], "max_bytes")
	out, _, code = runIn(t, "", "status", "--socket", a.Socket)
	require.Zero(t, code)
	require.Contains(t, out, "reload refused")
	require.True(t, a.Running())

	// Fixed: the next reload clears it.
	require.NoError(t, os.WriteFile(a.ConfigPath, good, 0o600))
	a.opsSighup()
	require.Eventually(t, func() bool {
		s := ns.lastStatus()
		return strings.HasPrefix(s, "spool: ") && !strings.Contains(s, "reload refused")
	}, 10*time.Second, 20*time.Millisecond, "a good reload should clear the refusal; last: %q", ns.lastStatus())
	require.NotContains(t, opsCLIJSON(t, a, "status", "--json"), "reload_refused")
}
