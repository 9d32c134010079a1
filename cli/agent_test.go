package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
	"github.com/hogrelay/hogrelay/internal/testagent"
)

const testProjectKey = testagent.ProjectKey

// testAgent is a real agent run in-process against the fake PostHog, so a
// command's test exercises its request, the agent's answer and its output.
type testAgent struct {
	*testagent.Agent
	t  *testing.T
	up *fakeposthog.Server
}

// startAgent runs an agent, serving the sample flags, until the test ends
// (or Stop). Overrides are testagent.WriteConfig's.
func startAgent(t *testing.T, overrides ...string) *testAgent {
	t.Helper()
	up, err := fakeposthog.New(fakeposthog.Options{FlagDefinitions: fakeposthog.SampleFlagDefinitions})
	require.NoError(t, err)
	t.Cleanup(func() { _ = up.Close() })
	a := testagent.Start(t, up.URL(), append([]string{`forwarder.backoff_max = "1s"`}, overrides...)...)
	return &testAgent{Agent: a, t: t, up: up}
}

// runCLI runs a command the way Main does, with the given environment.
func runCLI(t *testing.T, environ map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return environ[k] }}
	code = run(context.Background(), e, args)
	return out.String(), errOut.String(), code
}

// cli runs a command against this agent (by --config).
func (a *testAgent) cli(args ...string) (stdout, stderr string, code int) {
	a.t.Helper()
	return runCLI(a.t, nil, append(args, "--config", a.ConfigPath)...)
}
