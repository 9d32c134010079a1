package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// A proxy that redirects POST /batch/ (http:// to https://, an old host) must
// not eat events: Go's client would follow a 301/302 as a GET, and a 2xx to
// that GET used to count as delivered while PostHog received nothing. A 3xx
// is a failure: kept, retried, and reported with the Location and the key to
// fix.
func TestRedirectedCaptureIsKeptAndRetriedNotFollowed(t *testing.T) {
	// Where the redirect points: answers anything with 200, as a landing page
	// would, and counts who came.
	var landed atomic.Int64
	landing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		landed.Add(1)
		_, _ = w.Write([]byte(`{"status":1}`))
	}))
	t.Cleanup(landing.Close)

	up := newUpstream(t)
	up.Script(
		fakeposthog.Response{Status: http.StatusMovedPermanently, Location: landing.URL + "/batch/"},
		fakeposthog.Response{Status: http.StatusFound, Location: landing.URL + "/batch/"},
	)
	a := startAgent(t, up)
	var all []string
	for b := 0; b < 4; b++ {
		evs, ids := mkEvents("redirect-"+string(rune('a'+b)), 250)
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		all = append(all, ids...)
	}

	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), all), "every acknowledged event reaches PostHog after the redirects")
	require.Zero(t, landed.Load(), "the redirect must never be followed")
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 10*time.Second, 20*time.Millisecond)
	require.Zero(t, a.spoolStat("dead_letter_events"))

	reqs := up.Requests()
	require.GreaterOrEqual(t, len(reqs), 3)
	require.Equal(t, 301, reqs[0].Status)
	require.Equal(t, 302, reqs[1].Status)
	require.Equal(t, reqs[0].UUIDs[0], reqs[1].UUIDs[0], "the redirected batch is kept and retried, head first")

	logs := a.Logs.String()
	require.Contains(t, logs, landing.URL+"/batch/", "the log names where PostHog was redirected to")
	require.Contains(t, logs, "[posthog] host", "the log says which key to fix")
	var warned bool
	for _, l := range strings.Split(logs, "\n") {
		warned = warned || (strings.Contains(l, `"level":"error"`) || strings.Contains(l, `"level":"warn"`)) && strings.Contains(l, "redirect")
	}
	require.True(t, warned, "a redirect is logged above debug")
}

// check-config warns (and still passes) when the host is plain http to a
// machine that is not this one; loopback and https stay quiet.
func TestCheckConfigWarnsAboutPlainHTTPHost(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		host string
		warn bool
	}{
		{"http://eu.posthog.example.com", true},
		{"http://10.1.2.3:8000", true},
		{"https://eu.i.posthog.com", false},
		{"http://127.0.0.1:8000", false},
		{"http://localhost:8000", false},
		{"http://[::1]:8000", false},
	} {
		path := writeConfig(t, dir, dir+"/s.sock", tc.host)
		stdout, stderr, code := runIn(t, "", "check-config", "--config", path)
		require.Zero(t, code, "%s: a warning is not an error: %s", tc.host, stderr)
		require.Contains(t, stdout, "is valid", tc.host)
		if tc.warn {
			require.Contains(t, stderr, "warning: ", tc.host)
			require.Contains(t, stderr, "[posthog] host", tc.host)
			require.Contains(t, stderr, tc.host)
			require.Contains(t, stderr, "https://", tc.host)
		} else {
			require.NotContains(t, stderr, "warning", tc.host)
		}
	}
}
