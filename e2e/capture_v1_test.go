package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCaptureV1ReachesUpstream sends a gzipped Capture v1 batch (as
// posthog-node does with POSTHOG_CAPTURE_MODE=v1) to the real agent and
// checks that its events reach PostHog's v0 /batch/ with their uuid, the
// skew-corrected timestamp and the v1 fields moved into properties.
func TestCaptureV1ReachesUpstream(t *testing.T) {
	up := newUpstream(t)
	a := startAgent(t, up)

	u1, u2, u3 := "01890a5d-ac96-774b-bcce-b302099a80a1", "01890a5d-ac96-774b-bcce-b302099a80a2", "01890a5d-ac96-774b-bcce-b302099a80a3"
	// The client's clock is 1h ahead: the agent must take that off.
	clientNow := time.Now().UTC().Add(time.Hour)
	ts := clientNow.Add(-10 * time.Second)
	body, err := json.Marshal(map[string]any{
		"created_at": clientNow.Format(time.RFC3339Nano),
		"batch": []map[string]any{
			{"event": "v1_one", "uuid": u1, "distinct_id": "user-1", "timestamp": ts.Format(time.RFC3339Nano),
				"session_id": "sess-1", "window_id": "win-1",
				"options":    map[string]any{"process_person_profile": false},
				"properties": map[string]any{"plan": "pro", "$set": map[string]any{"email": "a@example.com"}}},
			{"event": "v1_two", "uuid": u2, "distinct_id": "user-2", "timestamp": "2020-01-01T00:00:00Z",
				"options": map[string]any{"disable_skew_correction": true}},
			{"event": "", "uuid": u3, "distinct_id": "user-3", "timestamp": ts.Format(time.RFC3339Nano)},
		},
	})
	require.NoError(t, err)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(body)
	require.NoError(t, zw.Close())

	ans := a.do("POST", "/i/v1/analytics/events", gz.Bytes(), map[string]string{
		"Authorization":             "Bearer phc_v1e2e",
		"Content-Type":              "application/json",
		"Content-Encoding":          "gzip",
		"PostHog-Sdk-Info":          "posthog-go/1.17.0",
		"PostHog-Attempt":           "1",
		"PostHog-Request-Timestamp": clientNow.Format(time.RFC3339Nano),
	})
	require.Equal(t, 200, ans.status, ans.body)
	require.JSONEq(t, `{"results":{"`+u1+`":{"result":"ok"},"`+u2+`":{"result":"ok"},"`+u3+`":{"result":"drop","details":"missing_event_name"}}}`, ans.body)

	require.NoError(t, up.WaitForUUIDs(waitCtx(t, 20*time.Second), []string{u1, u2}))
	byUUID := map[string]int{}
	evs := up.Events()
	for i, e := range evs {
		byUUID[e.UUID] = i
	}
	require.NotContains(t, byUUID, u3, "a dropped event must not be forwarded")

	one := evs[byUUID[u1]]
	require.Equal(t, "v1_one", one.Event)
	require.Equal(t, "phc_v1e2e", one.Token)
	require.Equal(t, "user-1", one.DistinctID)
	got, err := time.Parse(time.RFC3339Nano, one.Timestamp)
	require.NoError(t, err)
	require.WithinDuration(t, ts.Add(-time.Hour), got, 5*time.Second, "skew corrected")
	require.Equal(t, "sess-1", one.Properties["$session_id"])
	require.Equal(t, "win-1", one.Properties["$window_id"])
	require.Equal(t, false, one.Properties["$process_person_profile"])
	require.Equal(t, "pro", one.Properties["plan"])
	require.Equal(t, map[string]any{"email": "a@example.com"}, one.Properties["$set"])
	require.Equal(t, "posthog-go", one.Properties["$lib"])
	require.Equal(t, "1.17.0", one.Properties["$lib_version"])
	require.False(t, strings.Contains(string(one.Raw), `"sent_at"`))

	two := evs[byUUID[u2]]
	require.Equal(t, "2020-01-01T00:00:00.000Z", two.Timestamp, "disable_skew_correction keeps the timestamp")
	require.Equal(t, true, two.Properties["$ignore_sent_at"])

	// A request-level refusal answers v1's error shape.
	ans = a.do("POST", "/i/v1/analytics/events/", body, map[string]string{"Content-Type": "application/json"})
	require.Equal(t, 401, ans.status, ans.body)
	require.Contains(t, ans.body, `"error":"missing_authorization"`)
}
