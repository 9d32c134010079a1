package e2e

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// An unmodified posthog-node opted into Capture v1 delivers through the
// agent: it posts /i/v1/analytics/events, the agent spools and forwards to
// PostHog's /batch/.
func TestSDKPosthogNodeCaptureV1(t *testing.T) {
	dir, node := sdkRequireNode(t)
	up := newUpstream(t)
	a := startAgent(t, up, `listen.http = "127.0.0.1:0"`)
	var uuids []string
	for i := 0; i < 5; i++ {
		uuids = append(uuids, fmt.Sprintf("0194a000-0000-7000-8000-%012d", i))
	}
	cmd := exec.Command(node, append([]string{filepath.Join(dir, "capture_v1.mjs"), sdkAgentURL(a), projectKey}, uuids...)...)
	cmd.Dir = dir
	cmd.Env = append(cmd.Environ(), "POSTHOG_CAPTURE_MODE=v1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "node: %s", out)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), uuids))

	metrics := a.do("GET", "/metrics", nil, nil).body
	require.Contains(t, metrics, `hogrelay_http_captured_events_total{endpoint="/i/v1/analytics/events"} 5`, "the SDK used Capture v1")
	for _, e := range up.Events() {
		require.Equal(t, "v1_event", e.Event)
		require.Equal(t, "sess-1", e.Properties["$session_id"])
		require.Equal(t, "posthog-node", e.Properties["$lib"])
	}
}
