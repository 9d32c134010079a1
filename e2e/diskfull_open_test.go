package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// fill writes to path until the filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.ErrorContains(t, err, "no space left on device")
			return
		}
	}
}

// startUnready starts the binary and waits until its socket answers
// /healthz, ready or not.
func (a *agentProc) startUnready() {
	a.t.Helper()
	require.NoError(a.t, a.Process.StartUnready(), "agent did not answer /healthz")
}

func (a *agentProc) readyz() (int, string) {
	resp, err := a.HTTP.Get("http://hogrelay/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Starting on a full filesystem is not damage: the agent stays up, says not
// ready with the cause on /readyz, refuses events with 503 + Retry-After,
// never moves a spool file aside, and opens the spool once there is room.
// A new spool on a full disk cannot even be created; an existing one may
// open (bbolt reuses its free pages) and must then simply work.
func TestDiskFullAtStartKeepsTheSpoolAndWaitsForRoom(t *testing.T) {
	t.Run("new spool", func(t *testing.T) {
		disk := smallDisk(t, "8m")
		up := newUpstream(t)
		filler := filepath.Join(disk, "filler")
		fill(t, filler)
		a := newAgentProc(t, up, []string{binary}, fmt.Sprintf("data_dir = %q", disk))
		a.startUnready()
		require.Eventually(t, func() bool {
			code, body := a.readyz()
			return code == http.StatusServiceUnavailable && strings.Contains(body, "no space left on device")
		}, 10*time.Second, 50*time.Millisecond, "readyz says not ready and why")
		evs, ids := mkEvents("fullnew", 3)
		ans := a.postJSON("/batch/", batchBody(evs))
		require.Equal(t, 503, ans.status, ans.body)
		require.NotEmpty(t, ans.header.Get("Retry-After"))
		require.Contains(t, ans.body, "no space left on device")
		time.Sleep(time.Second)
		require.True(t, a.Running(), "still up, waiting for room")
		aside, _ := filepath.Glob(filepath.Join(disk, "spool.db.corrupt-*"))
		require.Empty(t, aside, "a full disk is not damage")

		require.NoError(t, os.Remove(filler))
		require.Eventually(t, func() bool { code, _ := a.readyz(); return code == 200 }, 60*time.Second, 100*time.Millisecond)
		require.Contains(t, a.Logs.String(), "no space left on device")
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))
	})

	t.Run("existing spool", func(t *testing.T) {
		disk := smallDisk(t, "16m")
		up := newUpstream(t)
		up.SetDefault(fakeposthog.Response{Status: 503})
		a := startAgent(t, up, fmt.Sprintf("data_dir = %q", filepath.Join(disk, "data")))
		evs, acked := mkEvents("fullstart", 200)
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
		require.NoError(t, a.stop())
		spoolPath := filepath.Join(disk, "data", "spool.db")
		filler := filepath.Join(disk, "filler")
		fill(t, filler)

		a.startUnready()
		time.Sleep(time.Second)
		require.True(t, a.Running(), "still up")
		_, err := os.Stat(spoolPath)
		require.NoError(t, err, "the spool keeps its name")
		aside, _ := filepath.Glob(spoolPath + ".corrupt-*")
		require.Empty(t, aside, "a full disk is not damage")

		require.NoError(t, os.Remove(filler))
		up.SetDefault(fakeposthog.Response{})
		require.Eventually(t, func() bool { code, _ := a.readyz(); return code == 200 }, 60*time.Second, 100*time.Millisecond)
		require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), acked))
	})
}
