package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// max_bytes bounds the spool file on disk, not only the events' bytes: the
// file used to grow in bbolt's 16 MiB steps (67 MB for a 50 MiB bound), and
// a compaction's leftover copy after a crash was counted nowhere.
func TestSpoolFileStaysWithinMaxBytes(t *testing.T) {
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, `spool.max_bytes = "2MiB"`)
	var acked []string
	refused := false
	for i := 0; i < 200 && !refused; i++ {
		evs, ids := mkEvents(fmt.Sprintf("bound%03d", i), 100)
		ans := a.postJSON("/batch/", batchBody(evs))
		if ans.status == 200 {
			acked = append(acked, ids...)
			continue
		}
		require.Equal(t, 503, ans.status, ans.body)
		require.Contains(t, ans.body, "spool is full")
		refused = true
	}
	require.True(t, refused, "the bound was reached")
	spoolPath := filepath.Join(a.dir, "data", "spool.db")
	fi, err := os.Stat(spoolPath)
	require.NoError(t, err)
	require.LessOrEqual(t, fi.Size(), int64(2<<20), "the file is within max_bytes")

	// A compaction's leftover copy is removed at start.
	require.NoError(t, a.stop())
	leftover := spoolPath + ".compact"
	require.NoError(t, os.WriteFile(leftover, make([]byte, 1<<20), 0o600))
	up.SetDefault(fakeposthog.Response{})
	a.start()
	_, err = os.Stat(leftover)
	require.True(t, os.IsNotExist(err), "the leftover is gone")
	require.Contains(t, a.Logs.String(), "removed a compaction's leftover copy")
	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 60*time.Second), acked))
}
