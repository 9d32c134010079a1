package api

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCaptureV1Answers(t *testing.T) {
	h, sp := newHandler(t, 1<<20)
	ev := func(uuid, extra string) string {
		return `{"event":"e","uuid":"` + uuid + `","distinct_id":"d","timestamp":"2026-03-19T14:29:58Z"` + extra + `}`
	}
	batch := func(evs ...string) string {
		return `{"created_at":"2026-03-19T14:30:00Z","batch":[` + strings.Join(evs, ",") + `]}`
	}
	u1, u2 := "01890a5d-ac96-774b-bcce-b302099a8057", "01890a5d-ac96-774b-bcce-b302099a8058"
	big := `,"properties":{"x":"` + strings.Repeat("y", 600_000) + `"}`
	cases := []struct {
		name, method, path, auth, body string
		status                         int
		want                           string // JSON the answer must equal (200) or its "error" (others)
		retryAfter                     string
	}{
		{"stored", "POST", "/i/v1/analytics/events", "Bearer phc_a", batch(ev(u1, "")), 200, `{"results":{"` + u1 + `":{"result":"ok"}}}`, ""},
		{"trailing slash, one dropped", "POST", "/i/v1/analytics/events/", "Bearer phc_a", batch(ev(u1, ""), ev(u2, `,"properties":[]`)), 200,
			`{"results":{"` + u1 + `":{"result":"ok"},"` + u2 + `":{"result":"drop","details":"malformed_event_properties"}}}`, ""},
		{"all dropped", "POST", "/i/v1/analytics/events", "Bearer phc_a", batch(ev(u2, `,"properties":[]`)), 200,
			`{"results":{"` + u2 + `":{"result":"drop","details":"malformed_event_properties"}}}`, ""},
		{"no auth", "POST", "/i/v1/analytics/events", "", batch(ev(u1, "")), 401, "missing_authorization", ""},
		{"empty batch", "POST", "/i/v1/analytics/events", "Bearer phc_a", batch(), 400, "empty_batch", ""},
		{"wrong method", "GET", "/i/v1/analytics/events", "Bearer phc_a", "", 405, "method_not_allowed", ""},
		{"body over the limit", "POST", "/i/v1/analytics/events", "Bearer phc_a", strings.Repeat(" ", 21<<20), 413, "payload_too_large", ""},
		{"spool full", "POST", "/i/v1/analytics/events", "Bearer phc_a", batch(ev(u1, big), ev(u2, big)), 503, "service_unavailable", "5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			require.Equal(t, tc.status, rec.Code, rec.Body.String())
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			require.Equal(t, tc.retryAfter, rec.Header().Get("Retry-After"))
			if tc.status == 200 {
				require.JSONEq(t, tc.want, rec.Body.String())
				return
			}
			var e struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
			require.Equal(t, tc.want, e.Error)
			require.NotEmpty(t, e.ErrorDescription)
		})
	}
	st, err := sp.Stats()
	require.NoError(t, err)
	require.EqualValues(t, 2, st.PendingEvents, "only the two ok events were stored")
}
