package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testlog"
)

// `hogrelay dev --remote`: a project key only, and the banner's flags
// command answers from the stand-in's /flags, as PostHog would.
func TestDevRemoteModeAnswersFlagsFromTheStandIn(t *testing.T) {
	dir, err := os.MkdirTemp("", "hrdevr")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	cmd := exec.Command(binary, "dev", "--remote", "--http", "", "--socket", "d.sock")
	cmd.Dir = dir
	stdout, stderr := &testlog.Buffer{}, &testlog.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", stdout.String(), tail(stderr.String(), 40))
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(stdout.String(), "Ctrl-C stops everything.") },
		60*time.Second, 20*time.Millisecond)
	require.Contains(t, stdout.String(), "remote evaluation")

	// The stand-in evaluates its sample definitions; compare with one that
	// serves the same definitions.
	ref, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: fakeposthog.SampleFlagDefinitions})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ref.Close() })
	for _, id := range []string{"user-1", "user-2", "user-3", "user-4"} {
		out, errOut, code := runIn(t, dir, "flags", "get", "checkout-button", "--socket", filepath.Join(dir, "d.sock"), "--distinct-id", id)
		require.Zero(t, code, errOut)
		require.Equal(t, ref.ExpectedFlags(id)["checkout-button"], strings.TrimSpace(out))
	}
	out, _, code := runIn(t, dir, "flags", "list", "--socket", filepath.Join(dir, "d.sock"))
	require.Zero(t, code)
	require.Contains(t, out, "answers: remote evaluation")
}
