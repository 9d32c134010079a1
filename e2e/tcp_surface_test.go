package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// tcpAddr is the agent's loopback TCP listener (host:port), from its status.
func (a *agentProc) tcpAddr() string {
	a.t.Helper()
	ls, _ := a.status()["listeners"].([]any)
	for _, l := range ls {
		if s, _ := l.(string); strings.HasPrefix(s, "tcp:") {
			return strings.TrimPrefix(s, "tcp:")
		}
	}
	a.t.Fatalf("the agent reports no tcp listener: %v", ls)
	return ""
}

// tcpDo sends one request to the agent's TCP listener.
func (a *agentProc) tcpDo(method, path string, body []byte, header map[string]string) answer {
	a.t.Helper()
	return doWith(a.t, &http.Client{Timeout: 30 * time.Second}, "http://"+a.tcpAddr(), method, path, body, header)
}

func oneEventBody(t *testing.T, name string) []byte {
	t.Helper()
	evs, _ := mkEvents(name, 1)
	b, err := json.Marshal(batchBody(evs))
	require.NoError(t, err)
	return b
}

// A web page the user visits can make the browser send requests to
// 127.0.0.1 (text/plain and form POSTs need no CORS preflight), or rebind
// its own name to 127.0.0.1. None of that may store an event or reach
// anything but capture, flags and health; SDKs that send neither Origin
// nor a foreign Host keep working.
func TestTCPListenerRefusesBrowserRequests(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503}) // keep what is stored countable
	a := startAgent(t, up, `listen.http = "127.0.0.1:0"`, `listen.allowed_origins = ["http://localhost:3000"]`)
	_, port, err := net.SplitHostPort(a.tcpAddr())
	require.NoError(t, err)

	form := "data=" + base64.StdEncoding.EncodeToString(oneEventBody(t, "form"))
	cases := []struct {
		name         string
		method, path string
		body         string
		header       map[string]string
		status       int
		bodyHas      string
		stored       bool
	}{
		{"sdk without Origin", "POST", "/batch/", "json", map[string]string{"Content-Type": "application/json"}, 200, `{"status":1}`, true},
		{"Host localhost", "POST", "/e/", "json", map[string]string{"Host": "localhost:" + port}, 200, "", true},
		{"Host [::1]", "POST", "/batch/", "json", map[string]string{"Host": "[::1]:" + port}, 200, "", true},
		{"allowed Origin", "POST", "/batch/", "json", map[string]string{"Origin": "http://localhost:3000", "Content-Type": "text/plain"}, 200, "", true},

		{"rebinding Host", "POST", "/batch/", "json", map[string]string{"Host": "evil.example:" + port, "Content-Type": "application/json"}, 403, "not a loopback name", false},
		{"rebinding Host on flags", "POST", "/flags/?v=2", `{"token":"` + projectKey + `","distinct_id":"d"}`, map[string]string{"Host": "evil.example"}, 403, "DNS rebinding", false},
		{"text/plain from a page", "POST", "/batch/", "json", map[string]string{"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403, "allowed_origins", false},
		{"form from a page", "POST", "/e/", form, map[string]string{"Origin": "http://evil.example", "Content-Type": "application/x-www-form-urlencoded"}, 403, "allowed_origins", false},
		{"sandboxed page (Origin null)", "POST", "/batch/", "json", map[string]string{"Origin": "null", "Content-Type": "text/plain"}, 403, "allowed_origins", false},
		{"preflight from a page", "OPTIONS", "/batch/", "", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}, 403, "allowed_origins", false},
		{"<img> GET from a page", "GET", "/e/?data=" + url.QueryEscape(base64.StdEncoding.EncodeToString(oneEventBody(t, "img"))), "", map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, 403, "Sec-Fetch-Site", false},

		{"status is socket-only", "GET", "/hogrelay/v1/status", "", nil, 403, "not served on the TCP listener", false},
		{"metrics are socket-only", "GET", "/metrics", "", nil, 403, "not served on the TCP listener", false},
		{"export is admin-only", "GET", "/hogrelay/v1/spool/export", "", nil, 403, "admin socket", false},
		{"text/plain drop is admin-only", "POST", "/hogrelay/v1/spool/dead-letters/drop", "x", map[string]string{"Content-Type": "text/plain"}, 403, "admin socket", false},
		{"compact is admin-only", "POST", "/hogrelay/v1/spool/compact", "", nil, 403, "admin socket", false},
		{"retry is admin-only", "POST", "/hogrelay/v1/forwarder/retry", "", nil, 403, "admin socket", false},
		{"health stays", "GET", "/healthz", "", nil, 200, "ok", false},
	}
	stored := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := []byte(c.body)
			if c.body == "json" {
				body = oneEventBody(t, "tcp-"+c.name)
			}
			ans := a.tcpDo(c.method, c.path, body, c.header)
			require.Equal(t, c.status, ans.status, ans.body)
			require.Contains(t, ans.body, c.bodyHas)
			if c.stored {
				stored++
			}
			if origin := c.header["Origin"]; origin != "" && c.status == 200 {
				require.Equal(t, origin, ans.header.Get("Access-Control-Allow-Origin"))
			}
			require.EqualValues(t, stored, a.spoolStat("pending_events"), "events stored so far")
		})
	}
}
