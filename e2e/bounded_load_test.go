package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

var (
	plainOnce sync.Once
	plainBin  string
	plainErr  error
)

// plainBinary is hogrelay built without -race (whose shadow memory would
// swamp any memory figure), once per run. HOGRELAY_E2E_PLAIN_BINARY runs
// the memory tests against another build (e.g. the code before a fix).
func plainBinary(t *testing.T) string {
	t.Helper()
	plainOnce.Do(func() {
		if b := os.Getenv("HOGRELAY_E2E_PLAIN_BINARY"); b != "" {
			plainBin = b
			return
		}
		// Next to the test binary, in the directory TestMain removes; a
		// directory of its own when that binary came from elsewhere.
		dir := filepath.Dir(binary)
		if os.Getenv("HOGRELAY_E2E_BINARY") != "" {
			d, err := os.MkdirTemp("", "hogrelay-plain-")
			if err != nil {
				plainErr = err
				return
			}
			dir = d
		}
		plainBin = filepath.Join(dir, "hogrelay-norace")
		out, err := exec.Command("go", "build", "-o", plainBin, "../cmd/hogrelay").CombinedOutput()
		if err != nil {
			plainErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, plainErr)
	return plainBin
}

// procStatus reads one "Key: value kB" field of /proc/PID/status, in bytes.
func procStatus(t *testing.T, pid int, key string) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			require.NoError(t, err, line)
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return 0
}

// bigBatch is a /batch body of about size bytes of valid events.
func bigBatch(t *testing.T, prefix string, size int) []byte {
	t.Helper()
	pad := strings.Repeat("x", 10_000)
	n := size / (len(pad) + 300)
	evs, _ := mkEvents(prefix, n)
	for _, ev := range evs {
		ev["properties"].(map[string]any)["pad"] = pad
	}
	b, err := json.Marshal(batchBody(evs))
	require.NoError(t, err)
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	require.NoError(t, err)
	_, err = zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// Twenty 20 MiB bodies and twenty gzip bodies that inflate to 20 MiB, all
// at once: the decode budget keeps peak memory under 1 GiB, and every
// request is stored or told to retry (503 + Retry-After), never lost.
func TestMemoryStaysBoundedUnderLargeConcurrentBodies(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503}) // keep the forwarder's work out of the figure
	a := startAgentCmd(t, up, []string{plainBinary(t)}, `log.level = "info"`, `forwarder.backoff_initial = "1m"`, `forwarder.backoff_max = "5m"`)
	plain := bigBatch(t, "big", 20<<20-4096)
	zipped := gzipped(t, plain)
	t.Logf("bodies: %d bytes plain, %d bytes gzipped (inflating to %d)", len(plain), len(zipped), len(plain))
	nEvents := bytes.Count(plain, []byte(`"uuid"`))

	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, retried := 0, 0
	send := func(body []byte, gz bool) {
		defer wg.Done()
		for attempt := 0; attempt < 200; attempt++ {
			req, err := http.NewRequest(http.MethodPost, "http://hogrelay/batch/", bytes.NewReader(body))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/json")
			if gz {
				req.Header.Set("Content-Encoding", "gzip")
			}
			resp, err := a.HTTP.Do(req)
			if err != nil {
				// Refused before its body was read, the connection is
				// closed under the writer; SDKs retry that like a 503.
				mu.Lock()
				retried++
				mu.Unlock()
				time.Sleep(200 * time.Millisecond)
				continue
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode == 200:
				mu.Lock()
				stored++
				mu.Unlock()
				return
			case resp.StatusCode == 503 && resp.Header.Get("Retry-After") != "":
				mu.Lock()
				retried++
				mu.Unlock()
				time.Sleep(200 * time.Millisecond)
			default:
				t.Errorf("answer %d: %s", resp.StatusCode, msg)
				return
			}
		}
		t.Error("a request was never stored")
	}
	for i := 0; i < 20; i++ {
		wg.Add(2)
		go send(plain, false)
		go send(zipped, true)
	}
	wg.Wait()
	hwm := procStatus(t, a.Cmd.Process.Pid, "VmHWM")
	t.Logf("40 concurrent 20 MiB requests: %d stored, %d times told to retry; VmHWM %d MiB", stored, retried, hwm>>20)
	require.Equal(t, 40, stored)
	require.Less(t, hwm, int64(1<<30), "peak RSS must stay under 1 GiB (README: 2 x max_decode_bytes + 256MiB)")
	require.EqualValues(t, 40*nEvents, a.spoolStat("pending_events"), "every acknowledged event is in the spool")
}

// Connections that send a body one byte at a time are cut off once they
// fall below the minimum rate, and no listener holds more connections than
// max_connections, so trickling clients cannot use up the agent's file
// descriptors, and a producer still gets through.
func TestSlowBodiesAreCutOffAndConnectionsBounded(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up, `listen.max_connections = 16`)
	pid := a.Cmd.Process.Pid
	fds := func() int {
		ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		require.NoError(t, err)
		return len(ents)
	}
	before := fds()

	const slow = 30
	closed := make(chan time.Duration, slow)
	start := time.Now()
	for i := 0; i < slow; i++ {
		c, err := net.Dial("unix", a.Socket)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		_, err = fmt.Fprintf(c, "POST /batch/ HTTP/1.1\r\nHost: hogrelay\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		require.NoError(t, err)
		go func() {
			done := make(chan struct{})
			go func() { // one byte every 2s, until the agent hangs up
				for {
					select {
					case <-done:
						return
					case <-time.After(2 * time.Second):
						if _, err := c.Write([]byte(" ")); err != nil {
							return
						}
					}
				}
			}()
			_, _ = io.Copy(io.Discard, c) // returns when the agent closes the connection
			close(done)
			closed <- time.Since(start)
		}()
	}
	time.Sleep(3 * time.Second)
	open := fds()
	t.Logf("descriptors: %d before, %d with %d trickling clients (max_connections = 16)", before, open, slow)
	require.LessOrEqual(t, open-before, 16+4, "more connections accepted than max_connections (+ upstream connections)")

	// A producer queued behind them is served once slots free up.
	evs, ids := mkEvents("behind-slow", 2)
	ans := a.postJSON("/batch/", batchBody(evs))
	require.Equal(t, 200, ans.status, ans.body)
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 30*time.Second), ids))

	deadline := time.After(60 * time.Second)
	for i := 0; i < slow; i++ {
		select {
		case d := <-closed:
			t.Logf("slow connection %d closed after %s", i, d.Round(100*time.Millisecond))
		case <-deadline:
			t.Fatalf("%d of %d trickling connections were still open after 60s", slow-i, slow)
		}
	}
}

// Every distinct path under /e/ and /batch/ is served by the same route; the
// metrics must not grow a series (and memory) per path.
func TestMetricLabelsComeFromRoutesNotPaths(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	for i := 0; i < 200; i++ {
		path := fmt.Sprintf("/e/%d-%s", i, strings.Repeat("p", 20_000))
		if i%2 == 1 {
			path = "/batch/" + path[3:]
		}
		evs, _ := mkEvents(fmt.Sprintf("path-%d", i), 1)
		body, _ := json.Marshal(batchBody(evs))
		// Whatever the answer (these paths are not capture routes), it is
		// counted under the route's name.
		ans := a.do(http.MethodPost, path, body, map[string]string{"Content-Type": "application/json"})
		require.NotZero(t, ans.status)
	}
	metrics := a.do(http.MethodGet, "/metrics", nil, nil)
	require.Equal(t, 200, metrics.status)
	series := 0
	sc := bufio.NewScanner(strings.NewReader(metrics.body))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Text()
		require.Less(t, len(line), 1000, "a metric line carries a raw path: %.200s…", line)
		if strings.HasPrefix(line, "hogrelay_ingest_requests_total{") || strings.HasPrefix(line, "hogrelay_ingest_events_total{") {
			series++
		}
	}
	require.NoError(t, sc.Err())
	require.LessOrEqual(t, series, 4, "200 distinct paths made %d ingest series", series)
	require.Contains(t, metrics.body, `endpoint="/e"`)
	require.Contains(t, metrics.body, `endpoint="/batch"`)
}

// When accept fails (here: out of file descriptors), the HTTP server's
// complaint is a JSON log line, once per burst, not plain text every few
// milliseconds.
func TestAcceptErrorsAreLoggedOncePerBurstAsJSON(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	up := newUpstream(t)
	a := startAgentCmd(t, up, []string{prlimit, "--nofile=48:48", binary})
	var conns []net.Conn
	for i := 0; i < 60; i++ {
		c, err := net.Dial("unix", a.Socket)
		require.NoError(t, err)
		conns = append(conns, c)
	}
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	require.Eventually(t, func() bool { return strings.Contains(a.Logs.String(), "too many open files") },
		10*time.Second, 50*time.Millisecond, "the agent never ran out of descriptors")
	time.Sleep(3 * time.Second) // the server retries accept every few ms to 1s meanwhile
	lines, accept := 0, 0
	for _, line := range strings.Split(strings.TrimSpace(a.Logs.String()), "\n") {
		lines++
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), "a log line is not JSON: %q", line)
		if strings.Contains(line, "Accept error") || strings.Contains(line, "accept") && strings.Contains(line, "too many open files") {
			accept++
			require.Equal(t, "warn", m["level"], line)
		}
	}
	t.Logf("%d log lines, %d about accept errors", lines, accept)
	require.Equal(t, 1, accept, "one line per burst")
}

// Each connection may hold at most 64 KiB of request line and headers
// (Go's default is 1 MiB: max_connections of them would be gigabytes).
func TestOversizedHeadersAreRefused(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)
	ans := a.do(http.MethodPost, "/e/?"+strings.Repeat("q", 100<<10), oneEventBody(t, "long-url"), map[string]string{"Content-Type": "application/json"})
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, ans.status, ans.body)
	ans = a.do(http.MethodPost, "/batch/", oneEventBody(t, "long-header"), map[string]string{"Content-Type": "application/json", "X-Pad": strings.Repeat("h", 100<<10)})
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, ans.status, ans.body)
	ans = a.do(http.MethodPost, "/batch/", oneEventBody(t, "normal"), map[string]string{"Content-Type": "application/json"})
	require.Equal(t, 200, ans.status, ans.body)
}
