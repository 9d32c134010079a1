package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// shutdownMargin is what SIGTERM may take beyond shutdown_timeout: stopping
// the forwarder and the poller and closing the spool (README, "What the
// unit does", says about a second; the rest is slack for a race-built
// binary on a busy machine).
const shutdownMargin = 3 * time.Second

// The worst case for SIGTERM: producers that never finish their requests or
// never read their answers, and a PostHog that never answers. The whole
// stop stays within shutdown_timeout plus a small margin, so systemd's
// TimeoutStopSec never has to SIGKILL the agent, and nothing acknowledged
// is lost.
func TestSIGTERMStaysWithinShutdownTimeoutInTheWorstCase(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Hang: true})
	a := startAgent(t, up, `forwarder.shutdown_timeout = "3s"`, `forwarder.request_timeout = "60s"`)
	evs, ids := mkEvents("budget", 50)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForRequests(waitCtx(t, 10*time.Second), 1), "a /batch/ request hangs at PostHog")

	// A producer that sent half a body and stalls...
	stalled, err := net.Dial("unix", a.Socket)
	require.NoError(t, err)
	defer stalled.Close()
	_, err = stalled.Write([]byte("POST /batch/ HTTP/1.1\r\nHost: hogrelay\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"api_key\":\"" + projectKey + "\",\"batch\":["))
	require.NoError(t, err)
	// ...and one that pipelines requests and never reads an answer.
	deaf, err := net.Dial("unix", a.Socket)
	require.NoError(t, err)
	defer deaf.Close()
	one := `{"api_key":"` + projectKey + `","event":"deaf","distinct_id":"d","properties":{"pad":"` + strings.Repeat("x", 4000) + `"}}`
	req := "POST /i/v0/e/ HTTP/1.1\r\nHost: hogrelay\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(one)) + "\r\n\r\n" + one
	go func() {
		for i := 0; i < 2000; i++ {
			if _, err := deaf.Write([]byte(req)); err != nil {
				return
			}
		}
	}()
	time.Sleep(500 * time.Millisecond) // both are inside the agent now

	start := time.Now()
	require.NoError(t, a.stop(), "a clean stop exits 0")
	took := time.Since(start)
	require.Less(t, took, 3*time.Second+shutdownMargin, "SIGTERM took %s with shutdown_timeout 3s", took)

	up.SetDefault(fakeposthog.Response{})
	a.start()
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids), "the acknowledged events are still there")
}
