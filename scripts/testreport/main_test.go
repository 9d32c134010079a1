package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// A stream as `go test -json` writes it for a package with a pass, a skip,
// a failing subtest, and a second package that fails to build.
const stream = `{"Action":"start","Package":"ex/a"}
{"Action":"run","Package":"ex/a","Test":"TestOK"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}
{"Action":"output","Package":"ex/a","Test":"TestOK","Output":"    a_test.go:9: chatter of a passing test\n"}
{"Action":"pass","Package":"ex/a","Test":"TestOK"}
{"Action":"run","Package":"ex/a","Test":"TestNode"}
{"Action":"output","Package":"ex/a","Test":"TestNode","Output":"=== RUN   TestNode\n"}
{"Action":"output","Package":"ex/a","Test":"TestNode","Output":"    sdk_test.go:261: skipping: node is not installed\n"}
{"Action":"output","Package":"ex/a","Test":"TestNode","Output":"--- SKIP: TestNode (0.00s)\n"}
{"Action":"skip","Package":"ex/a","Test":"TestNode"}
{"Action":"run","Package":"ex/a","Test":"TestBad"}
{"Action":"run","Package":"ex/a","Test":"TestBad/case"}
{"Action":"output","Package":"ex/a","Test":"TestBad/case","Output":"    a_test.go:20: expected 1, got 2\n"}
{"Action":"fail","Package":"ex/a","Test":"TestBad/case"}
{"Action":"fail","Package":"ex/a","Test":"TestBad"}
{"Action":"output","Package":"ex/a","Output":"FAIL\n"}
{"Action":"output","Package":"ex/a","Output":"FAIL\tex/a\t0.01s\n"}
{"Action":"fail","Package":"ex/a"}
{"ImportPath":"ex/b","Action":"build-output","Output":"b/b.go:3:1: syntax error\n"}
{"ImportPath":"ex/b","Action":"build-fail"}
{"Action":"output","Package":"ex/c","Output":"ok  \tex/c\t0.02s\n"}
{"Action":"pass","Package":"ex/c"}
`

func TestReportShowsFailuresSkipsAndTotals(t *testing.T) {
	var out bytes.Buffer
	r := newReport(&out)
	require.NoError(t, r.read(strings.NewReader(stream)))
	require.False(t, r.finish(), "a failed test fails the run")
	got := out.String()
	require.Contains(t, got, "a_test.go:20: expected 1, got 2", "a failure's output is shown")
	require.NotContains(t, got, "chatter of a passing test", "a passing test's output is not")
	require.Contains(t, got, "FAIL\tex/a\t0.01s")
	require.Contains(t, got, "ok  \tex/c\t0.02s")
	require.Contains(t, got, "b/b.go:3:1: syntax error", "build errors are shown")
	require.Contains(t, got, "skipped tests (1):\n  ex/a TestNode: sdk_test.go:261: skipping: node is not installed\n")
	require.True(t, strings.HasSuffix(got, "\n1 passed, 2 failed, 1 skipped\n"), got)
}

func TestReportShowsTheOutputOfATestThatNeverEnded(t *testing.T) {
	var out bytes.Buffer
	r := newReport(&out)
	require.NoError(t, r.read(strings.NewReader(`{"Action":"run","Package":"p","Test":"TestHang"}
{"Action":"output","Package":"p","Test":"TestHang","Output":"    h_test.go:5: waiting for the agent\n"}
{"Action":"output","Package":"p","Output":"panic: test timed out after 20m0s\n"}
{"Action":"fail","Package":"p"}
`)))
	require.False(t, r.finish())
	require.Contains(t, out.String(), "panic: test timed out")
	require.Contains(t, out.String(), "waiting for the agent")
}

func TestReportPassesAGreenRun(t *testing.T) {
	var out bytes.Buffer
	r := newReport(&out)
	require.NoError(t, r.read(strings.NewReader(`{"Action":"run","Package":"p","Test":"TestA"}
{"Action":"pass","Package":"p","Test":"TestA"}
{"Action":"output","Package":"p","Output":"ok  \tp\t0.1s\n"}
{"Action":"pass","Package":"p"}
`)))
	require.True(t, r.finish())
	require.Equal(t, "ok  \tp\t0.1s\n\n1 passed, 0 failed, 0 skipped\n", out.String())
}
