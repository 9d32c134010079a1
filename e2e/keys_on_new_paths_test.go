package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// Keys stay out of everything the security paths produce, at trace level:
// definitions refusals on TCP, browser refusals, admin-socket output, the
// fair-share and decode-budget refusals, a reload that changes
// definitions_keys, and the agent's command line.
func TestKeysNeverAppearOnTheSecurityPaths(t *testing.T) {
	up := flagUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	const sdkKey = "local-sdk-key-secret-0123456789"
	const newSDKKey = "rotated-sdk-key-secret-9876543210"
	a := startAgent(t, up, `log.level = "trace"`, `listen.http = "127.0.0.1:0"`, `spool.max_bytes = "16MiB"`,
		`flags.definitions_keys = ["`+sdkKey+`"]`, `forwarder.backoff_initial = "1m"`, `forwarder.backoff_max = "5m"`)
	require.Eventually(t, func() bool {
		return a.do("GET", "/flags/definitions", nil, map[string]string{"Authorization": "Bearer any"}).status == 200
	}, 20*time.Second, 50*time.Millisecond)

	var seen []string
	keep := func(what string, ans answer) {
		seen = append(seen, what+": "+ans.body+fmt.Sprint(ans.header))
	}
	keep("definitions, wrong key", a.tcpDo("GET", "/flags/definitions?token="+projectKey, nil, map[string]string{"Authorization": "Bearer " + personalKey + "x"}))
	keep("definitions, project key", a.tcpDo("GET", "/flags/definitions?token="+projectKey, nil, map[string]string{"Authorization": "Bearer " + projectKey}))
	keep("browser", a.tcpDo("POST", "/batch/", oneEventBody(t, "browser"), map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer " + sdkKey}))
	keep("rebinding", a.tcpDo("GET", "/flags/definitions", nil, map[string]string{"Host": "evil.example", "Authorization": "Bearer " + sdkKey}))
	keep("admin on producer socket", doWith(t, a.HTTP, "http://hogrelay", "GET", "/hogrelay/v1/spool/export", nil, nil))
	// Fill the small spool from one project, with another present, until
	// it is refused its fair share.
	evs, _ := mkEvents("other-project", 1)
	require.Equal(t, 200, a.postJSON("/batch/", map[string]any{"api_key": "phc_otherproject", "batch": evs}).status)
	big := bigBatch(t, "fill", 1<<20)
	fair := false
	for i := 0; i < 24 && !fair; i++ {
		ans := a.do("POST", "/batch/", big, map[string]string{"Content-Type": "application/json"})
		fair = fair || strings.Contains(ans.body, "fair share")
		keep("fill", ans)
	}
	require.True(t, fair, "the filler was refused its fair share")
	keep("over the bound", a.do("POST", "/batch/", bigBatch(t, "huge", 21<<20), map[string]string{"Content-Type": "application/json"}))
	out, errOut, _ := a.cli("spool", "export")
	seen = append(seen, out, errOut)
	out, errOut, _ = a.cli("spool", "dead-letters", "list")
	seen = append(seen, out, errOut)
	out, errOut, _ = a.cli("status", "--json")
	seen = append(seen, out, errOut)

	// Rotate the SDK key by SIGHUP: the reload names the key, not its value.
	writeConfig(t, a.dir, a.Socket, up.URL(), `log.level = "trace"`, `listen.http = "127.0.0.1:0"`, `spool.max_bytes = "16MiB"`,
		`flags.definitions_keys = ["`+newSDKKey+`"]`, `forwarder.backoff_initial = "1m"`, `forwarder.backoff_max = "5m"`)
	require.NoError(t, a.Signal(syscall.SIGHUP))
	require.Eventually(t, func() bool { return strings.Contains(a.Logs.String(), "configuration reloaded") }, 10*time.Second, 20*time.Millisecond)
	require.Contains(t, a.Logs.String(), "definitions_keys")
	require.Equal(t, 200, a.tcpDo("GET", "/flags/definitions", nil, map[string]string{"Authorization": "Bearer " + newSDKKey}).status, "the rotated key applies live")
	require.Equal(t, 401, a.tcpDo("GET", "/flags/definitions", nil, map[string]string{"Authorization": "Bearer " + sdkKey}).status, "the old key no longer opens them")

	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", a.Cmd.Process.Pid))
	require.NoError(t, err)
	seen = append(seen, a.Logs.String(), string(cmdline), a.do(http.MethodGet, "/metrics", nil, nil).body)
	for _, where := range seen {
		for _, key := range []string{projectKey, personalKey, sdkKey, newSDKKey} {
			require.NotContains(t, where, key)
		}
	}
}
