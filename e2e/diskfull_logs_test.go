package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// A full disk refuses every request; the log says so once per burst with a
// count, not once per request (1,480 lines in 0.77 s in the field).
func TestDiskFullWarningsAreRateLimited(t *testing.T) {
	disk := smallDisk(t, "8m")
	up := newUpstream(t)
	up.SetDefault(fakeposthog.Response{Status: 503})
	a := startAgent(t, up, fmt.Sprintf("data_dir = %q", filepath.Join(disk, "data")))
	fill(t, filepath.Join(disk, "filler"))
	blob := strings.Repeat("z", 20_000)
	refused := 0
	for i := 0; i < 200; i++ {
		evs, _ := mkEvents(fmt.Sprintf("burst%03d", i), 5)
		for _, e := range evs {
			e["properties"].(map[string]any)["blob"] = blob
		}
		if a.postJSON("/batch/", batchBody(evs)).status == 503 {
			refused++
		}
	}
	require.Greater(t, refused, 150, "the disk is full")
	logs := a.Logs.String()
	commitLines := strings.Count(logs, "spool commit failed")
	refusalLines := strings.Count(logs, `"events not stored`)
	require.Positive(t, commitLines)
	require.LessOrEqual(t, commitLines, 5, "commit failures: one line per burst")
	require.LessOrEqual(t, refusalLines, 5, "refusals: one line per burst")
	require.Contains(t, logs, "suppressed_since_last")
	_ = os.Remove(filepath.Join(disk, "filler"))
}
