package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// smallDisk mounts a tmpfs of the given size for the test, or skips saying
// why (mounting needs root, which CI and this project's machines have).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hr-disk")
	require.NoError(t, err)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		os.Remove(dir)
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("umount", "-l", dir).Run()
		os.Remove(dir)
	})
	return dir
}

// A full disk refuses new events with a 503 that names the cause, loses no
// acknowledged event, and recovers once space is freed.
func TestDiskFullRefusesClearlyAndLosesNothing(t *testing.T) {
	disk := smallDisk(t, "24m")
	filler := filepath.Join(disk, "filler")
	require.NoError(t, os.WriteFile(filler, make([]byte, 8<<20), 0o600))

	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, fmt.Sprintf("data_dir = %q", filepath.Join(disk, "data")))

	blob := strings.Repeat("z", 40_000)
	var acked []string
	var refused *answer
	for i := 0; i < 200 && refused == nil; i++ {
		evs, ids := mkEvents(fmt.Sprintf("disk%03d", i), 5)
		for _, e := range evs {
			e["properties"].(map[string]any)["blob"] = blob
		}
		ans := a.postJSON("/batch/", batchBody(evs))
		switch ans.status {
		case 200:
			acked = append(acked, ids...)
		default:
			refused = &ans
		}
	}
	require.NotNil(t, refused, "the disk never filled")
	require.Equal(t, 503, refused.status)
	require.NotEmpty(t, refused.header.Get("Retry-After"))
	require.Contains(t, refused.body, "no space left on device")
	require.NotEmpty(t, acked)
	// The agent's stderr reaches the test through a pipe: wait for the line.
	require.Eventually(t, func() bool { return strings.Contains(a.Logs.String(), "spool commit failed") },
		10*time.Second, 50*time.Millisecond, "the full disk is logged")

	// Space comes back, and so does PostHog: everything acknowledged arrives
	// and the agent takes events again.
	require.NoError(t, os.Remove(filler))
	up.SetDefault(fakeposthog.Response{})
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), acked))
	evs, ids := mkEvents("after-disk", 3)
	require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	require.Eventually(t, func() bool { return a.spoolStat("pending_events") == 0 }, 30*time.Second, 50*time.Millisecond)
}
