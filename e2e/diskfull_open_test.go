package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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
	a.cmd = exec.Command(binary, "serve", "--config", a.cfgPath)
	a.cmd.Stdout, a.cmd.Stderr = a.logs, a.logs
	require.NoError(a.t, a.cmd.Start())
	a.exited = make(chan error, 1)
	cmd := a.cmd
	go func() { a.exited <- cmd.Wait() }()
	require.Eventually(a.t, func() bool {
		select {
		case err := <-a.exited:
			a.exited <- err
			return true
		default:
		}
		resp, err := a.http.Get("http://hogrelay/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	}, 20*time.Second, 20*time.Millisecond, "agent did not answer /healthz")
	require.Nil(a.t, a.cmd.ProcessState, "agent exited at start:\n%s", a.logs.String())
}

func (a *agentProc) readyz() (int, string) {
	resp, err := a.http.Get("http://hogrelay/readyz")
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
		dir, err := os.MkdirTemp("", "hr")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		a := &agentProc{t: t, dir: dir, socket: filepath.Join(dir, "s.sock"), up: up, logs: &syncBuffer{}}
		a.cfgPath = writeConfig(t, dir, a.socket, up.URL(), fmt.Sprintf("data_dir = %q", disk))
		a.http = unixClient(a.socket)
		t.Cleanup(func() {
			if a.cmd != nil && a.cmd.ProcessState == nil {
				_ = a.cmd.Process.Kill()
				<-a.exited
			}
			if t.Failed() {
				t.Logf("agent logs:\n%s", tail(a.logs.String(), 60))
			}
		})
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
		require.Nil(t, a.cmd.ProcessState, "still up, waiting for room")
		aside, _ := filepath.Glob(filepath.Join(disk, "spool.db.corrupt-*"))
		require.Empty(t, aside, "a full disk is not damage")

		require.NoError(t, os.Remove(filler))
		require.Eventually(t, func() bool { code, _ := a.readyz(); return code == 200 }, 60*time.Second, 100*time.Millisecond)
		require.Contains(t, a.logs.String(), "no space left on device")
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
		require.Nil(t, a.cmd.ProcessState, "still up")
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
