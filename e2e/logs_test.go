package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/testagent"
	"github.com/hogrelay/hogrelay/internal/testlog"
)

// Every log line names its level in one field, "level": the reload line
// too, which is written whatever the level is set to (it used "severity").
func TestReloadLogLineHasTheLevelFieldEveryLineHas(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `log.level = "warn"`)
	from := len(a.Logs.String())
	a.opsSighup()
	var line map[string]any
	require.Eventually(t, func() bool {
		for _, l := range opsLogLines(a.Logs.String()[from:]) {
			if l["message"] == "configuration reloaded" {
				line = l
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no reload line, though it is written at any level")
	require.Equal(t, "info", line["level"])
	require.NotContains(t, line, "severity")
	for _, l := range opsLogLines(a.Logs.String()) {
		require.Contains(t, l, "level", "every line has a level: %v", l)
	}
}

// hogrelay dev logs in the console format; off a terminal (a pipe, a file)
// it carries no colour escape codes.
func TestDevWritesNoColourCodesOffATerminal(t *testing.T) {
	dir := testagent.Dir(t)
	var stdout, stderr testlog.Buffer
	cmd := exec.Command(binary, "dev", "--socket", filepath.Join(dir, "d.sock"), "--http", "", "--log-level", "debug")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NO_COLOR=") // unset-equivalent: the pipe alone must be enough
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(stderr.String(), "hogrelay is ready") }, 20*time.Second, 20*time.Millisecond,
		"dev never logged that it is ready:\n%s", stderr.String())
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("dev did not exit within 30s of SIGINT")
	}
	require.NotContains(t, stderr.String(), "\x1b[", "no ANSI colour codes in piped logs:\n%q", tail(stderr.String(), 5))
	require.Contains(t, stderr.String(), "INF", "still the console format")
}
