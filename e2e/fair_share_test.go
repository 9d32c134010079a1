package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hogrelay/hogrelay/internal/fakeposthog"
)

// One project sending small gzip bodies that inflate to megabytes cannot
// take a nearly full spool from another: under reject the other keeps
// storing, under drop_oldest none of its events are deleted. The share
// counts stored bytes, not the few kilobytes on the wire.
func TestOneProjectCannotTakeTheSpool(t *testing.T) {
	for _, policy := range []string{"reject", "drop_oldest"} {
		t.Run(policy, func(t *testing.T) {
			up := newUpstream(t)
			up.SetDefault(fakeposthog.Response{Status: 503}) // PostHog is down: the spool fills
			a := startAgent(t, up, `spool.max_bytes = "16MiB"`, `spool.when_full = "`+policy+`"`,
				`forwarder.backoff_initial = "1m"`, `forwarder.backoff_max = "5m"`)
			quiet := func(prefix string) []string {
				evs, ids := mkEvents(prefix, 100)
				ans := a.postJSON("/batch/", map[string]any{"api_key": "phc_quietproject", "batch": evs})
				require.Equal(t, 200, ans.status, ans.body)
				return ids
			}
			ids := quiet("quiet-before")

			filler := bigBatch(t, "filler", 1<<20)
			filler = []byte(strings.Replace(string(filler), `"api_key":"`+projectKey+`"`, `"api_key":"phc_fillerproject"`, 1))
			zipped := gzipped(t, filler)
			wire, refused := 0, 0
			for i := 0; i < 40; i++ {
				ans := a.do(http.MethodPost, "/batch/", zipped, map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
				wire += len(zipped)
				switch ans.status {
				case 200:
				case 503:
					refused++
					require.Contains(t, ans.body, "fair share", "refused for its share, not because the spool is full")
					require.NotEmpty(t, ans.header.Get("Retry-After"))
				default:
					t.Fatalf("filler got %d: %s", ans.status, ans.body)
				}
			}
			t.Logf("filler: 40 requests, %d KiB on the wire inflating to %d MiB; %d refused", wire>>10, 40*len(filler)>>20, refused)
			if policy == "reject" {
				require.Greater(t, refused, 0)
			}
			ids = append(ids, quiet("quiet-after")...)

			out, errOut, code := a.cli("spool", "export")
			require.Zero(t, code, errOut)
			kept := map[string]bool{}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var l struct {
					Event struct {
						UUID string `json:"uuid"`
					} `json:"event"`
				}
				require.NoError(t, json.Unmarshal([]byte(line), &l))
				kept[l.Event.UUID] = true
			}
			for _, id := range ids {
				require.True(t, kept[id], "the quiet project's event %s is gone", id)
			}
			require.LessOrEqual(t, a.spoolStat("pending_bytes"), float64(16<<20))
		})
	}
}
