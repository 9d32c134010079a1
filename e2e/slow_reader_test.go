package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// An operator's export piped into a reader that stops reading (`hogrelay
// spool export | (sleep 40)`) used to hold the spool's compaction lock while
// it wrote to the socket: a compaction then waited for it, and every
// producer waited behind the compaction. Now the export holds no lock while
// it writes, so compaction finishes and ingest keeps answering.
func TestSlowExportReaderDoesNotStallCompactionOrIngest(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up)
	blob := strings.Repeat("x", 2000)
	for i := 0; i < 30; i++ {
		evs, _ := mkEvents(fmt.Sprintf("slow%02d", i), 100)
		for _, e := range evs {
			e["properties"].(map[string]any)["blob"] = blob
		}
		require.Equal(t, 200, a.postJSON("/batch/", batchBody(evs)).status)
	}

	// The export's stdout is a pipe nobody reads: it fills, the CLI stops
	// reading the socket, and the agent's writes to it block.
	r, w, err := os.Pipe()
	require.NoError(t, err)
	t.Cleanup(func() { r.Close(); w.Close() })
	export := exec.Command(binary, "spool", "export", "--config", a.ConfigPath)
	export.Stdout = w
	require.NoError(t, export.Start())
	t.Cleanup(func() { _ = export.Process.Kill(); _ = export.Wait() })
	time.Sleep(time.Second)

	compacted := make(chan string, 1)
	compact := exec.Command(binary, "spool", "compact", "--config", a.ConfigPath)
	var compactOut strings.Builder
	compact.Stdout, compact.Stderr = &compactOut, &compactOut
	require.NoError(t, compact.Start())
	t.Cleanup(func() { _ = compact.Process.Kill() })
	go func() {
		err := compact.Wait()
		compacted <- fmt.Sprintf("err %v: %s", err, compactOut.String())
	}()
	time.Sleep(500 * time.Millisecond)

	quick := unixClient(a.Socket)
	quick.Timeout = 10 * time.Second
	evs, ids := mkEvents("slow-after", 3)
	body, err := json.Marshal(batchBody(evs))
	require.NoError(t, err)
	ans := doWith(t, quick, "http://hogrelay", http.MethodPost, "/batch/", body, map[string]string{"Content-Type": "application/json"})
	require.Equal(t, 200, ans.status, ans.body)
	ans = doWith(t, quick, "http://hogrelay", http.MethodGet, "/readyz", nil, nil)
	require.Equal(t, 200, ans.status, ans.body)
	select {
	case res := <-compacted:
		require.True(t, strings.HasPrefix(res, "err <nil>"), res)
	case <-time.After(10 * time.Second):
		t.Fatal("compaction waited behind the stalled export")
	}
	up.SetDefault(fakeposthog.Response{})
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), ids))
}
