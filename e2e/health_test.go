package e2e

// /healthz and /readyz (and /metrics) on the socket and the loopback TCP listener.

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestOpsHealthAndReadinessOnSocketAndTCP(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `listen.http = "127.0.0.1:0"`)

	listeners := opsStrings(a.status()["listeners"])
	require.Len(t, listeners, 2)
	require.Equal(t, "unix:"+a.Socket, listeners[0])
	require.True(t, strings.HasPrefix(listeners[1], "tcp:127.0.0.1:"), "listeners %v", listeners)
	addr := strings.TrimPrefix(listeners[1], "tcp:")
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.NotEqual(t, "0", port, "port 0 must be resolved to the bound port")

	tcp := &http.Client{Timeout: 10 * time.Second}
	get := map[string]func(path string) (int, string){
		"socket": func(path string) (int, string) {
			ans := a.do(http.MethodGet, path, nil, nil)
			return ans.status, ans.body
		},
		"tcp": func(path string) (int, string) {
			resp, err := tcp.Get("http://" + addr + path)
			require.NoError(t, err)
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		},
	}
	cases := []struct {
		listener, path string
		status         int
		body           string
	}{
		{"socket", "/healthz", 200, "ok"},
		{"socket", "/readyz", 200, "ready"},
		{"tcp", "/healthz", 200, "ok"},
		{"tcp", "/readyz", 200, "ready"},
		{"socket", "/metrics", 200, "hogrelay_spool_events"},
		{"tcp", "/metrics", 403, "not served on the TCP listener"},
	}
	for _, c := range cases {
		t.Run(c.listener+c.path, func(t *testing.T) {
			status, body := get[c.listener](c.path)
			require.Equal(t, c.status, status, body)
			require.Contains(t, body, c.body)
		})
	}

	// The table lists both listeners too.
	out, _, code := a.cli("status")
	require.Zero(t, code)
	require.Contains(t, out, "unix:"+a.Socket)
	require.Contains(t, out, listeners[1])

	// Events taken on TCP are spooled and forwarded like the socket's.
	evs, ids := mkEvents("tcp-ingest", 3)
	body, _ := json.Marshal(batchBody(evs))
	resp, err := tcp.Post("http://"+addr+"/batch/", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
}
